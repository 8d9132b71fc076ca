/** The test run's own checks (test/preload.ts): isolated caches, and a failure when a test leaves files behind. */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./helpers.ts";

// subprocesses and heavy checks on a busy machine take longer than the 5 s default (bunfig has no such key)
setDefaultTimeout(120_000);

const dir = mkdtempSync(join(tmpdir(), "virnuc-preload-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("test run isolation", () => {
  test("caches and TMPDIR point into the run's own root, never the user's", () => {
    const root = process.env.VIRNUC_TEST_ROOT!;
    expect(root).toBeTruthy();
    expect(tmpdir().startsWith(root)).toBe(true);
    for (const k of ["VIRNUC_HOME", "HF_HOME", "TORCH_HOME"]) expect(process.env[k]!.startsWith(root)).toBe(true);
    expect(process.env.HF_HUB_CACHE).toBeUndefined();
    expect(process.env.VIRNUC_HOME!.startsWith(join(homedir(), ".cache"))).toBe(false);
  });

  /** Runs `bun test` on one file as a fresh run (its own preload and root). */
  function runTests(name: string, body: string) {
    const file = join(dir, `${name}.test.ts`);
    writeFileSync(file, `import { test, expect } from "bun:test";\nimport { mkdtempSync, mkdirSync } from "node:fs";\nimport { tmpdir } from "node:os";\nimport { join } from "node:path";\n${body}\n`);
    const env: Record<string, string | undefined> = { ...process.env };
    delete env.VIRNUC_TEST_ROOT;
    const p = Bun.spawnSync([process.execPath, "test", file], { cwd: ROOT, env, stdout: "pipe", stderr: "pipe" });
    return { code: p.exitCode, out: p.stdout.toString() + p.stderr.toString() };
  }

  test("a test that leaves a temporary directory behind fails the run, naming it", () => {
    const r = runTests("leaves", `test("leaves a dir", () => { mkdtempSync(join(tmpdir(), "virnuc-forgotten-")); expect(1).toBe(1); });`);
    expect(r.out).toMatch(/tests left 1 temporary entries behind \(remove them in afterAll\): virnuc-forgotten-\w+/);
    expect(r.code).not.toBe(0);
    // the run's root is removed all the same
    expect(r.out).not.toMatch(/ENOTEMPTY/);
  });

  test("a test that cleans up passes", () => {
    const r = runTests("clean", `import { rmSync } from "node:fs";\ntest("tidy", () => { const d = mkdtempSync(join(tmpdir(), "virnuc-tidy-")); rmSync(d, { recursive: true }); expect(1).toBe(1); });`);
    expect(r.out).not.toMatch(/left .* behind/);
    expect(r.code).toBe(0);
  });

  test("a subprocess that hashed files into the user's cache fails the run", () => {
    // the nested run's "user cache" is this run's temporary VIRNUC_HOME (its startup environment)
    const home = process.env.VIRNUC_HOME!;
    const r = runTests(
      "cache",
      `import { writeFileSync } from "node:fs";\ntest("writes", () => { mkdirSync(${JSON.stringify(home)}, { recursive: true }); writeFileSync(join(${JSON.stringify(home)}, "file-hashes.json"), JSON.stringify({ [process.env.VIRNUC_TEST_ROOT + "/models/esm/model.safetensors"]: {} })); expect(1).toBe(1); });`,
    );
    expect(r.out).toMatch(/a subprocess of the tests wrote to .*file-hashes\.json: give every Bun\.spawn\/spawnSync env: process\.env/);
    expect(r.code).not.toBe(0);
  });

  test("no test run root is left in the parent TMPDIR by a finished run", () => {
    const r = runTests("roots", `test("x", () => { expect(tmpdir()).toContain("virnuc-test-run-"); console.log("ROOT=" + process.env.VIRNUC_TEST_ROOT); });`);
    expect(r.code).toBe(0);
    const root = /ROOT=(\S+)/.exec(r.out)![1];
    expect(existsSync(root)).toBe(false);
  });
});
