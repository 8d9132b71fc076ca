import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

// subprocesses and heavy checks on a busy machine take longer than the 5 s default (bunfig has no such key)
setDefaultTimeout(120_000);

const TOKENIZER = "test/fixtures/reference/dnabert-s/tokenizer.json";
const tmp = mkdtempSync(join(tmpdir(), "virnuc-tokenize-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(args: string[], stdin: string, env: Record<string, string> = {}) {
  const p = Bun.spawnSync(["bun", "src/cli.ts", "tokenize", ...args], {
    stdin: new TextEncoder().encode(stdin),
    env: { ...process.env, ...env },
  });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

const VECTORS: [string, string][] = [
  ["ACGTAGCATCGGATCTATCTATCGACACTTGGTTATCGATCTACGAGCATCTCGTTAGC", "1 5 194 32 757 1239 2092 294 24 359 88 93 32 75 77 19 2"],
  ["ACGTNNACGT", "1 5 6 1049 0 0 5 6 1049 2"],
  ["acgt", "1 0 0 0 0 2"],
  ["ACG TAC", "1 5 3206 14 6 2"],
];

describe("virnuc tokenize", () => {
  test("dnabert from stdin: models.md vectors, CRLF, an empty line, no final newline", () => {
    const input = VECTORS.map(([s]) => s).join("\r\n") + "\n\n" + VECTORS[0][0];
    const r = run(["--model", "dnabert", "--tokenizer", TOKENIZER], input);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toBe([...VECTORS.map(([, ids]) => ids), "1 2", VECTORS[0][1]].join("\n") + "\n");
  });

  test("dnabert from a file; `-` reads stdin", () => {
    const file = join(tmp, "reads.txt");
    writeFileSync(file, VECTORS.map(([s]) => s).join("\n") + "\n");
    const want = VECTORS.map(([, ids]) => ids).join("\n") + "\n";
    expect(run(["--model", "dnabert", "--tokenizer", TOKENIZER, file], "").out).toBe(want);
    expect(run(["--model", "dnabert", "--tokenizer", TOKENIZER, "-"], VECTORS.map(([s]) => s).join("\n")).out).toBe(want);
  });

  test("dnabert without --tokenizer finds tokenizer.json in the resolved model directory", () => {
    const dir = join(tmp, "dnabert-s");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    symlinkSync(resolve(TOKENIZER), join(dir, "tokenizer.json"));
    const r = run(["--model", "dnabert", "--dnabert", dir], "ACGTNNACGT\n");
    expect(r.err).toBe("");
    expect(r.out).toBe("1 5 6 1049 0 0 5 6 1049 2\n");
  });

  test("esm: <cls> residues <eos>, one line per input line", () => {
    const r = run(["--model", "esm"], "MKLV\nmk\n\nMK LV\n");
    expect(r.code).toBe(0);
    expect(r.out).toBe("0 20 15 4 7 2\n0 3 2\n0 2\n0 20 15 4 7 2\n");
  });

  test("empty input gives empty output", () => {
    const r = run(["--model", "esm"], "");
    expect(r.code).toBe(0);
    expect(r.out).toBe("");
  });

  test("user errors are one line and exit non-zero", () => {
    const noModel = run([], "ACGT\n");
    expect(noModel.code).not.toBe(0);
    expect(noModel.err).toBe("virnuc: error: tokenize: --model is required (esm or dnabert)\n");
    const badModel = run(["--model", "bert"], "ACGT\n");
    expect(badModel.code).not.toBe(0);
    expect(badModel.err).toMatch(/^virnuc: error: tokenize: unknown --model bert/);
    const missing = run(["--model", "esm", join(tmp, "nope.txt")], "");
    expect(missing.code).not.toBe(0);
    expect(missing.err).toMatch(/^virnuc: error: tokenize: cannot read .*nope\.txt: no such file\n$/);
    const badTok = run(["--model", "dnabert", "--tokenizer", join(tmp, "none.json")], "ACGT\n");
    expect(badTok.code).not.toBe(0);
    expect(badTok.err).toMatch(/^virnuc: error: cannot read tokenizer .*none\.json: no such file\n$/);
  });
});
