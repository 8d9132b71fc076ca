/**
 * Scale machinery on the CPU backend: resume after kill -9 at random moments, corrupted parts,
 * refusals, worker subprocesses (with a crash), shards and merge. Every run's outputs must be
 * byte-identical to one uninterrupted single-process run.
 */
import { describe, expect, test, beforeAll, afterAll, setDefaultTimeout } from "bun:test";
import { readdirSync, truncateSync, appendFileSync, existsSync, readFileSync, writeFileSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { CLI, ROOT, modelArgs, outputsOf, runCli, syntheticFasta, removeTempDirs, tempDir, tinyModels } from "./helpers.ts";

// subprocesses and heavy checks on a busy machine take longer than the 5 s default (bunfig has no such key)
setDefaultTimeout(120_000);

afterAll(removeTempDirs);

/** The parts a run dealt to its workers (VIRNUC_TEST_WIRE_LOG): index, records or descriptor, JSON size. */
function wireLog(path: string): { part: number; kind: string; bytes: number }[] {
  return readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((l) => l.split("\t"))
    .map(([part, kind, bytes]) => ({ part: Number(part), kind, bytes: Number(bytes) }));
}

let reads: string;
let baseline: Record<string, Buffer>;
// --no-report: these tests are about parts, resume and shards; the report is tested in src/report.
const common = () => ["--chunk-size", "300", "--window-reads", "40", "--no-progress", "--no-report", ...modelArgs()];

beforeAll(() => {
  tinyModels();
  reads = join(tempDir("scale"), "reads.fa");
  syntheticFasta(reads, 400, 150, 21);
  const d = tempDir("baseline");
  const r = runCli(["predict", reads, "-o", d, ...common()]);
  expect(r.code).toBe(0);
  baseline = outputsOf(d);
  expect(Object.keys(baseline).sort()).toEqual(
    ["prediction_results.txt", "prediction_results_highestscore.csv", "predictions.parquet", "sequences.parquet", "sequences.tsv", "windows.parquet"].sort(),
  );
}, 120_000);

describe("resume", () => {
  test("kill -9 at random moments, then --resume: identical outputs", async () => {
    const d = tempDir("killed");
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    let killed = 0;
    const done = () => {
      try {
        return readdirSync(join(d, ".virnuc", "parts")).filter((f) => f.endsWith(".json")).length;
      } catch {
        return 0;
      }
    };
    for (let attempt = 0; attempt < 4; attempt++) {
      // Kill when a random number of further parts has finished, plus a random few ms:
      // lands anywhere in a part's compute, its file writes, or between them.
      const target = done() + 1 + Math.floor(rnd() * 3);
      const args = [CLI, "predict", reads, "-o", d, ...common(), ...(attempt > 0 ? ["--resume"] : [])];
      const p = Bun.spawn([process.execPath, ...args], { cwd: ROOT, env: process.env, stdout: "ignore", stderr: "ignore" });
      while (p.exitCode === null && done() < target) await Bun.sleep(5);
      await Bun.sleep(rnd() * 60);
      p.kill(9);
      const code = await p.exited;
      if (code === 0) break;
      expect(p.signalCode).toBe("SIGKILL");
      killed++;
    }
    expect(killed).toBeGreaterThan(0);
    // Finish whatever is left.
    const r = runCli(["predict", reads, "-o", d, ...common(), "--resume"]);
    expect(r.code).toBe(0);
    expect(outputsOf(d)).toEqual(baseline);
  }, 120_000);

  test("a truncated or corrupted part is detected and redone", () => {
    const d = tempDir("corrupt");
    expect(runCli(["predict", reads, "-o", d, ...common()]).code).toBe(0);
    const parts = join(d, ".virnuc", "parts");
    const files = readdirSync(parts).filter((f) => f.endsWith(".arrow")).sort();
    truncateSync(join(parts, files[0]), 10);
    appendFileSync(join(parts, files[7]), "x"); // wrong size
    const r = runCli(["predict", reads, "-o", d, ...common(), "--resume"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/part 0 is incomplete or corrupt: redoing it/);
    expect(outputsOf(d)).toEqual(baseline);
  }, 120_000);

  test("--resume refuses a changed input or a changed model", () => {
    const d = tempDir("refuse");
    expect(runCli(["predict", reads, "-o", d, ...common()]).code).toBe(0);
    const other = join(tempDir("other"), "reads.fa");
    syntheticFasta(other, 400, 150, 22);
    let r = runCli(["predict", other, "-o", d, ...common(), "--resume"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--resume refused: the input/);
    const m = tinyModels();
    const cls2 = tempDir("cls2");
    const { writeRandomModel } = require("../src/models/random.ts");
    writeRandomModel("tiny-classifier", 99, cls2);
    const args = modelArgs().map((a) => (a === m.classifier ? join(cls2, "model.pth") : a));
    r = runCli(["predict", reads, "-o", d, "--chunk-size", "300", "--window-reads", "40", "--no-progress", ...args, "--resume"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--resume refused: the classifier model changed/);
  }, 120_000);
});

describe("workers and shards", () => {
  test("--workers 3 gives the same outputs, also when a worker dies mid-run", () => {
    const d = tempDir("workers");
    const marker = join(tempDir("marker"), "crashed");
    const wire = join(tempDir("wire"), "log");
    const r = runCli(["predict", reads, "-o", d, ...common(), "--workers", "3"], { env: { VIRNUC_TEST_CRASH_ONCE: `${marker}:5`, VIRNUC_TEST_WIRE_LOG: wire } });
    expect(r.code).toBe(0);
    expect(existsSync(marker)).toBe(true);
    expect(r.stderr).toMatch(/restarting it/);
    expect(outputsOf(d)).toEqual(baseline);
    // A plain FASTA is indexed: every part (the redone one too) went out as a descriptor, no records.
    const dealt = wireLog(wire);
    expect(dealt.filter((x) => x.part === 5).length).toBe(2);
    expect(new Set(dealt.map((x) => x.part)).size).toBe(10);
    expect(dealt.every((x) => x.kind === "ref" && x.bytes < 1000)).toBe(true);
  }, 120_000);

  test("--workers 2 on FASTQ: workers read their parts; a gzip input still sends records", () => {
    const fq = join(tempDir("fastq"), "reads.fq");
    const recs = readFileSync(reads, "latin1").split(">").slice(1).map((r) => r.split("\n"));
    writeFileSync(fq, recs.map(([head, ...seq]) => `@${head}\n${seq.join("")}\n+\n${"I".repeat(seq.join("").length)}\n`).join(""));
    const d = tempDir("workers-fq");
    const wire = join(tempDir("wire"), "log");
    const r = runCli(["predict", fq, "-o", d, ...common(), "--workers", "2"], { env: { VIRNUC_TEST_WIRE_LOG: wire } });
    expect(r.code).toBe(0);
    expect(outputsOf(d)).toEqual(baseline);
    const dealt = wireLog(wire);
    expect(dealt.map((x) => x.part).sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
    expect(dealt.every((x) => x.kind === "ref" && x.bytes < 1000)).toBe(true);
    expect(existsSync(fq + ".virnuc-idx")).toBe(true);
    // run.json records the input's sha256 (from the index: the parent did not read the records).
    const sha = createHash("sha256").update(readFileSync(fq)).digest("hex");
    expect(JSON.parse(readFileSync(join(d, "run.json"), "utf8")).inputs).toEqual([{ path: fq, bytes: statSync(fq).size, sha256: sha }]);

    const gz = join(tempDir("gz"), "reads.fa.gz");
    writeFileSync(gz, gzipSync(readFileSync(reads)));
    const dz = tempDir("workers-gz");
    const wz = join(tempDir("wire"), "log");
    const rz = runCli(["predict", gz, "-o", dz, ...common(), "--workers", "2"], { env: { VIRNUC_TEST_WIRE_LOG: wz } });
    expect(rz.code).toBe(0);
    expect(outputsOf(dz)).toEqual(baseline);
    const sent = wireLog(wz);
    expect(sent.length).toBe(10);
    // 40 reads of 150 bases a part: the records are on the wire.
    expect(sent.every((x) => x.kind === "records" && x.bytes > 40 * 150)).toBe(true);
    expect(existsSync(gz + ".virnuc-idx")).toBe(false);
  }, 120_000);

  test("--shard i/N then merge equals one run; merge refuses gaps and overlaps", () => {
    const s0 = tempDir("s0");
    const s1 = tempDir("s1");
    expect(runCli(["predict", reads, "-o", s0, ...common(), "--shard", "0/2"]).code).toBe(0);
    expect(runCli(["predict", reads, "-o", s1, ...common(), "--shard", "1/2"]).code).toBe(0);
    const m = tempDir("merged");
    const r = runCli(["merge", s0, s1, "-o", m]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(outputsOf(m)).toEqual(baseline);
    const gap = runCli(["merge", s0, "-o", tempDir("gap")]);
    expect(gap.code).not.toBe(0);
    expect(gap.stderr).toMatch(/parts are missing/);
    const overlap = runCli(["merge", s0, s1, s0, "-o", tempDir("overlap")]);
    expect(overlap.code).not.toBe(0);
    expect(overlap.stderr).toMatch(/shards overlap/);
  }, 120_000);
});
