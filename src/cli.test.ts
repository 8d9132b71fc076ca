/** The command line answers: every command's and sub-action's --help, --version, exit codes, the `virnuc` bin. */
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import pkg from "../package.json" with { type: "json" };

// Every test runs the CLI as a subprocess: more than Bun's 5 s default on a busy machine.
setDefaultTimeout(120_000);

const ROOT = resolve(import.meta.dir, "..");
const CLI = join(ROOT, "src/cli.ts");

function virnuc(args: string[], opts: { direct?: boolean } = {}) {
  const cmd = opts.direct ? [CLI, ...args] : [process.execPath, CLI, ...args];
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` };
  const p = Bun.spawnSync(cmd, { cwd: ROOT, env, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

/** The names under "Commands:" of a help text. */
function commandsOf(help: string): string[] {
  const m = /\nCommands:\n([\s\S]*?)\n\n/.exec(help);
  expect(m).not.toBeNull();
  return m![1].split("\n").map((l) => l.trim().split(/\s+/)[0]);
}

describe("--help answers everywhere", () => {
  const top = virnuc(["--help"]);

  test("virnuc --help lists the commands and exits 0", () => {
    expect(top.code).toBe(0);
    expect(top.stdout).toContain("$ virnuc <command> [options]");
    expect(commandsOf(top.stdout)).toEqual(expect.arrayContaining(["predict", "embed", "merge", "frames", "tokenize", "models", "bench"]));
  });

  test("every command, and every sub-action of models and bench, has its own usage and options", () => {
    const walked: string[] = [];
    for (const cmd of commandsOf(top.stdout)) {
      const h = virnuc([cmd, "--help"]);
      expect([cmd, h.code, h.stderr]).toEqual([cmd, 0, ""]);
      expect(h.stdout).toContain("-h, --help");
      walked.push(cmd);
      if (h.stdout.includes("\nCommands:\n")) {
        expect(h.stdout).toContain(`$ virnuc ${cmd} `);
        for (const action of commandsOf(h.stdout)) {
          const a = virnuc([cmd, action, "--help"]);
          expect([cmd, action, a.code, a.stderr]).toEqual([cmd, action, 0, ""]);
          expect(a.stdout).toContain(`$ virnuc ${cmd} ${action}`);
          expect(a.stdout).toContain("Options:");
          walked.push(`${cmd} ${action}`);
        }
      } else expect(h.stdout).toContain(`$ virnuc ${cmd}`);
    }
    expect(walked).toEqual(
      expect.arrayContaining(["models pull", "models random", "models list", "models resolve", "models inspect", "models verify", "bench host", "bench engine", "bench e2e"]),
    );
  }, 120_000);

  test("option help is specific: models pull shows --endpoint, bench engine --budgets, predict -o", () => {
    expect(virnuc(["models", "pull", "--help"]).stdout).toContain("--endpoint <url>");
    expect(virnuc(["bench", "engine", "--help"]).stdout).toContain("--budgets <list>");
    expect(virnuc(["predict", "--help"]).stdout).toContain("-o, --output <dir>");
  });
});

describe("--version, exit codes, the bin", () => {
  test("--version names virnuc, libvirnuc's build and the Bun running", () => {
    const v = virnuc(["--version"]);
    expect(v.code).toBe(0);
    const lines = v.stdout.trim().split("\n");
    expect(lines[0]).toStartWith(`virnuc ${pkg.version}`);
    expect(lines[1]).toStartWith("libvirnuc: ");
    expect(lines[2]).toStartWith(`bun ${Bun.version} `);
    expect(v.stdout).not.toContain("bun-v");
  });

  const usage: [string, string[], RegExp][] = [
    ["unknown command", ["nope"], /^virnuc: error: unknown command 'nope'/],
    ["unknown action", ["models", "nope"], /^virnuc: error: unknown action 'nope' \(see virnuc models --help\)/],
    ["unknown option", ["frames", "x.fa", "--bogus"], /^virnuc: error: Unknown option `--bogus`/],
    ["missing argument", ["frames"], /^virnuc: error: missing required args/],
    ["missing -o", ["predict", "x.fa"], /^virnuc: error: predict: -o DIR is required/],
    ["a benchmark's unknown flag", ["bench", "host", "--bogus"], /^virnuc: error: Unknown option '--bogus'/],
  ];
  for (const [name, args, want] of usage)
    test(`usage error exits 2 with one line: ${name}`, () => {
      const r = virnuc(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(want);
      expect(r.stderr.trim().split("\n").length).toBe(1);
    });

  test("an error (not usage) exits 1 with one line", () => {
    const r = virnuc(["frames", "/nonexistent.fa", "-o", "/tmp/never-written"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("virnuc: error: input /nonexistent.fa does not exist\n");
  });

  test("package.json bin: src/cli.ts, with a shebang and the run bit; it runs directly", () => {
    expect(pkg.bin.virnuc).toBe("src/cli.ts");
    expect(readFileSync(CLI, "utf8").split("\n")[0]).toBe("#!/usr/bin/env bun");
    expect(statSync(CLI).mode & 0o111).toBe(0o111);
    const gitMode = Bun.spawnSync(["git", "ls-files", "-s", "src/cli.ts"], { cwd: ROOT }).stdout.toString();
    if (gitMode) expect(gitMode).toStartWith("100755");
    const r = virnuc(["--version"], { direct: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith("virnuc ");
  });
});
