/**
 * A worker run (`--workers N`, whose workers read their parts of plain and BGZF inputs through a
 * record index) reports the same about its inputs as a single-process run: each input's sha256
 * in run.json (BGZF included: the file's bytes as stored) and the reader's warnings (duplicate
 * ids and protein-like records counted over all inputs, not per input).
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { bgzfCompress } from "../src/fasta/bgzf.ts";
import { REFERENCE, modelArgs, outputsOf, removeTempDirs, runCli, tempDir, tinyModels } from "./helpers.ts";

// Each test runs the CLI (and its worker subprocesses): far more than Bun's 5 s default on a busy machine.
setDefaultTimeout(120_000);
afterAll(removeTempDirs);

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

describe("in-process and --workers 2 runs on two inputs that share ids", () => {
  const work = tempDir("workers-inputs");
  const fasta = readFileSync(join(REFERENCE, "virnucpro/test_sequences.fa"), "latin1");
  const records = fasta.split(">").slice(1).map((r) => `>${r}`);
  // a: 40 reference records and a protein-like one, as BGZF (small blocks); b: plain, 30 records
  // of which 12 repeat ids of a, 2 protein-like records and an empty one.
  const a = join(work, "a.fa.gz");
  const b = join(work, "b.fa");
  const aText = records.slice(0, 40).join("") + ">prot_a1\nMKEFLLPQEFILPQ\n";
  const bText = records.slice(28, 58).join("") + ">prot_b1\nMEEFLLPQ\n>empty_b\n>prot_b2\nEFILPQQ\n";
  const runs: Record<string, { dir: string; code: number | null; stderr: string; wire: string }> = {};

  beforeAll(() => {
    tinyModels();
    writeFileSync(a, bgzfCompress(Buffer.from(aText, "latin1"), 2000));
    writeFileSync(b, bText, "latin1");
    for (const [name, extra] of [
      ["single", []],
      ["workers", ["--workers", "2"]],
    ] as const) {
      const dir = join(work, name);
      const wire = join(work, `${name}.wire`);
      writeFileSync(wire, "");
      const args = ["predict", a, b, "-o", dir, "--chunk-size", "300", "--window-reads", "8", "--no-progress", ...modelArgs(), ...extra];
      const r = runCli(args, { env: { VIRNUC_TEST_WIRE_LOG: wire } });
      runs[name] = { dir, code: r.code, stderr: r.stderr, wire: readFileSync(wire, "utf8") };
    }
  }, 240_000);

  const runJson = (name: string) => JSON.parse(readFileSync(join(runs[name].dir, "run.json"), "utf8"));

  test("both runs succeed with the same outputs; the workers read their parts through the index", () => {
    for (const name of ["single", "workers"]) expect([name, runs[name].code, runs[name].stderr.includes("error")]).toEqual([name, 0, false]);
    expect(outputsOf(runs.workers.dir)).toEqual(outputsOf(runs.single.dir));
    const dealt = runs.workers.wire.trim().split("\n").map((l) => l.split("\t")[1]);
    expect(dealt.length).toBe(10); // 73 records in parts of 8
    expect(new Set(dealt)).toEqual(new Set(["ref"]));
  });

  test("run.json gives each input's sha256, the BGZF input's of its bytes as stored", () => {
    const want = [
      [a, sha256(a)],
      [b, sha256(b)],
    ];
    for (const name of ["single", "workers"]) {
      const inputs = runJson(name).inputs as { path: string; sha256?: string }[];
      expect([name, inputs.map((i) => [i.path, i.sha256])]).toEqual([name, want]);
    }
  });

  test("the same warnings, counted over both inputs, in both runs", () => {
    const single = runJson("single").warnings as string[];
    expect(runJson("workers").warnings).toEqual(single);
    expect(single).toEqual([
      expect.stringMatching(/a\.fa\.gz:81: record 'prot_a1' looks like protein/),
      `${b}:63: record 'empty_b' has no sequence: skipped`,
      `12 record(s) repeat an id seen before (first: 'test_seq_28' at ${b}:1); every record is processed and kept: ids are not unique keys (record_index is)`,
      `3 records in all look like protein (first: 'prot_a1' at ${a}:81)`,
    ]);
    // The warnings are printed once each, too.
    for (const name of ["single", "workers"])
      expect([name, runs[name].stderr.split("\n").filter((l) => l.startsWith("virnuc: warning: ")).map((l) => l.slice(17))]).toEqual([name, single]);
  });

  test("--resume with workers: finished parts are checked by reading them, and the warnings stay those of the whole inputs", () => {
    const r = runCli(["predict", a, b, "-o", runs.workers.dir, "--chunk-size", "300", "--window-reads", "8", "--no-progress", "--resume", "--workers", "2", ...modelArgs()]);
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const json = runJson("workers");
    expect(json.resumedParts).toBe(10);
    expect(json.warnings).toEqual(runJson("single").warnings);
  });
});
