/** `virnuc predict` / `embed` end to end on the CPU backend with tiny random models. */
import { describe, expect, test, beforeAll, afterAll, setDefaultTimeout } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tableFromIPC } from "apache-arrow";
import { DuckDBInstance } from "@duckdb/node-api";
import { REFERENCE, modelArgs, runCli, removeTempDirs, tempDir, tinyModels, outputsOf, syntheticFasta } from "./helpers.ts";

// subprocesses and heavy checks on a busy machine take longer than the 5 s default (bunfig has no such key)
setDefaultTimeout(120_000);

afterAll(removeTempDirs);

const FIX = join(REFERENCE, "virnucpro");

async function duck(sql: string): Promise<unknown[][]> {
  const db = await DuckDBInstance.create(":memory:");
  const c = await db.connect();
  return (await c.runAndReadAll(sql)).getRows() as unknown[][];
}

describe("predict", () => {
  let out: string;
  beforeAll(() => {
    tinyModels();
    out = tempDir("predict");
    const r = runCli(["predict", join(FIX, "test_with_orfs.fa"), join(FIX, "test_sequences.fa"), "-o", out, "--chunk-size", "300", "--save-embeddings", "--no-progress", ...modelArgs()]);
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
  }, 60_000);

  test("writes every output file", () => {
    for (const f of ["prediction_results.txt", "prediction_results_highestscore.csv", "predictions.parquet", "windows.parquet", "sequences.parquet", "sequences.tsv", "embeddings.arrow", "run.json"])
      expect(existsSync(join(out, f))).toBe(true);
  });

  test("compat text rows are the frames of `virnuc frames`, in pipeline order", () => {
    const fr = tempDir("frames");
    const r = runCli(["frames", join(FIX, "test_with_orfs.fa"), join(FIX, "test_sequences.fa"), "-o", fr, "--chunk-size", "300"]);
    expect(r.code).toBe(0);
    const ids = readFileSync(join(fr, "identified_protein.faa"), "utf8").split("\n").filter((l) => l.startsWith(">")).map((l) => l.slice(1));
    const lines = readFileSync(join(out, "prediction_results.txt"), "utf8").trimEnd().split("\n");
    expect(lines[0]).toBe("Sequence_ID\tPrediction\tscore1\tscore2");
    expect(lines.slice(1).map((l) => l.split("\t")[0])).toEqual(ids);
    for (const l of lines.slice(1)) {
      const [, label, s1, s2] = l.split("\t");
      expect(Math.abs(Number(s1) + Number(s2) - 1)).toBeLessThan(1e-5);
      expect(label).toBe(Number(s2) > Number(s1) ? "virus" : "others");
    }
    const csv = readFileSync(join(out, "prediction_results_highestscore.csv"), "utf8").trimEnd().split("\n");
    expect(csv[0]).toBe("Modified_ID\tIs_Virus");
    expect(new Set(csv.slice(1).map((l) => l.split("\t")[0]))).toEqual(new Set(ids.map((i) => i.slice(0, -2))));
  });

  test("Parquet files open in DuckDB with the spec's columns and consistent counts", async () => {
    const p = (f: string) => join(out, f);
    const [[nPred]] = await duck(`select count(*)::INT from '${p("predictions.parquet")}'`);
    const lines = readFileSync(p("prediction_results.txt"), "utf8").trimEnd().split("\n").length - 1;
    expect(nPred).toBe(lines);
    const cols = (await duck(`describe select * from '${p("predictions.parquet")}'`)).map((r) => r[0]);
    expect(cols).toEqual(["frame_id", "window_id", "sequence_id", "record_index", "window_index", "window_start", "window_end", "frame", "protein_length", "score_others", "score_virus", "prediction"]);
    const [[nSeq]] = await duck(`select count(*)::INT from '${p("sequences.parquet")}'`);
    expect(nSeq).toBe(2 + 100); // records of both inputs
    // windows include those with no frame (null call); frames per window add up
    const [[sumFrames, nullCalls]] = await duck(`select sum(n_frames)::INT, count(*) filter (where is_virus is null)::INT from '${p("windows.parquet")}'`);
    expect(sumFrames).toBe(lines);
    expect(nullCalls as number).toBeGreaterThan(0);
    const bad = await duck(
      `select w.window_id from '${p("windows.parquet")}' w join (select window_id, max(score_virus) mv, max(score_others) mo from '${p("predictions.parquet")}' group by 1) f using (window_id) where w.is_virus <> (f.mv >= f.mo)`,
    );
    expect(bad).toEqual([]);
    const seq = await duck(`select sequence_id, length::INT, n_windows::INT from '${p("sequences.parquet")}' order by sequence_id limit 1`);
    expect(seq[0][0]).toBeDefined();
  });

  test("embeddings.arrow holds one row per frame, DNABERT-S and ESM-2 widths", () => {
    const t = tableFromIPC(readFileSync(join(out, "embeddings.arrow")));
    const lines = readFileSync(join(out, "prediction_results.txt"), "utf8").trimEnd().split("\n").length - 1;
    expect(t.numRows).toBe(lines);
    expect(t.schema.fields.map((f) => f.name)).toEqual(["frame_id", "record_index", "dnabert", "esm"]);
    const row = t.get(0)!.toJSON() as { dnabert: { length: number }; esm: { length: number } };
    expect(row.dnabert.length).toBe(128);
    expect(row.esm.length).toBe(128);
  });

  test("run.json records models with hashes, counts and throughput", () => {
    const run = JSON.parse(readFileSync(join(out, "run.json"), "utf8"));
    expect(run.command).toBe("predict");
    expect(run.models.files.esm[0].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(run.counts.totalRecords).toBe(102);
    expect(run.summary.esm.tokens).toBeGreaterThan(0);
    expect(run.summary.esm.packingEfficiency).toBeGreaterThan(0);
    // The wall time split: setup (incl. the model load) + parts + final files, up to run.json.
    expect(run.setupSeconds).toBeGreaterThanOrEqual(run.modelLoadSeconds);
    expect(run.assembleSeconds).toBeGreaterThan(0);
    const parts = run.setupSeconds + run.computeSeconds + run.assembleSeconds;
    expect(Math.abs(parts - run.wallSeconds)).toBeLessThan(0.05);
  });

  test("outputs do not depend on part size or token budget (batch independence)", () => {
    const reads = join(tempDir("reads"), "r.fa");
    syntheticFasta(reads, 300, 150, 9);
    const a = tempDir("pa");
    const b = tempDir("pb");
    expect(runCli(["predict", reads, "-o", a, "--chunk-size", "300", "--no-progress", ...modelArgs()]).code).toBe(0);
    expect(runCli(["predict", reads, "-o", b, "--chunk-size", "300", "--no-progress", "--window-reads", "37", "--token-budget", "300", ...modelArgs()]).code).toBe(0);
    expect(outputsOf(b)).toEqual(outputsOf(a));
  }, 60_000);

  test("gzip input gives the same outputs; --log-json writes one telemetry line per part", () => {
    const dir = tempDir("gz");
    const plain = join(dir, "r.fa");
    syntheticFasta(plain, 120, 150, 4);
    const gz = join(dir, "r.fa.data"); // detected by magic bytes, not by name
    writeFileSync(gz, Bun.gzipSync(readFileSync(plain)));
    const a = tempDir("gza");
    const b = tempDir("gzb");
    const log = join(dir, "log.jsonl");
    expect(runCli(["predict", plain, "-o", a, "--chunk-size", "300", "--no-progress", "--window-reads", "50", ...modelArgs()]).code).toBe(0);
    expect(runCli(["predict", gz, "-o", b, "--chunk-size", "300", "--no-progress", "--window-reads", "50", "--log-json", log, ...modelArgs()]).code).toBe(0);
    expect(outputsOf(b)).toEqual(outputsOf(a));
    const lines = readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.part)).toEqual([0, 1, 2]);
    expect(lines.reduce((n, l) => n + l.reads, 0)).toBe(120);
    for (const l of lines) {
      expect(l.esm_tokens).toBeGreaterThan(0);
      expect(l.esm_packing_efficiency).toBeGreaterThan(0);
      expect(typeof l.device_wait_for_host_s).toBe("number");
      expect(typeof l.tokens_per_s).toBe("number");
    }
  }, 60_000);

  test("embed writes the features only", () => {
    const d = tempDir("embed");
    const r = runCli(["embed", join(FIX, "test_with_orfs.fa"), "-o", d, "--no-progress", "--embeddings-dtype", "float16", ...modelArgs().filter((a, i, all) => a !== "--classifier" && all[i - 1] !== "--classifier")]);
    expect(r.code).toBe(0);
    expect(existsSync(join(d, "embeddings.arrow"))).toBe(true);
    expect(existsSync(join(d, "prediction_results.txt"))).toBe(false);
    expect(existsSync(join(d, "frames.parquet"))).toBe(true);
    const t = tableFromIPC(readFileSync(join(d, "embeddings.arrow")));
    expect(t.numRows).toBe(4);
    expect(String(t.schema.fields[2].type)).toContain("Float16");
  }, 60_000);
});

describe("predict: bad input and options", () => {
  const cases: [string, () => string[], RegExp][] = [
    ["missing -o", () => ["predict", join(FIX, "test_with_orfs.fa")], /-o DIR is required/],
    ["missing input", () => ["predict", "/nonexistent.fa", "-o", tempDir("x")], /does not exist/],
    ["text before the first header", () => {
      const f = join(tempDir("bad"), "bad.fa");
      writeFileSync(f, "ACGT\n>r1\nACGT\n");
      return ["predict", f, "-o", tempDir("x"), "--no-progress", ...modelArgs()];
    }, /bad\.fa:1: text before the first '>'/],
    ["bad chunk size", () => ["predict", join(FIX, "test_with_orfs.fa"), "-o", tempDir("x"), "--chunk-size", "0"], /--chunk-size 0: expected a whole number from 1/],
    ["bad shard", () => ["predict", join(FIX, "test_with_orfs.fa"), "-o", tempDir("x"), "--shard", "3/2"], /--shard 3\/2/],
    ["unknown device", () => ["predict", join(FIX, "test_with_orfs.fa"), "-o", tempDir("x"), "--device", "tpu"], /--device tpu/],
    ["unknown embeddings format", () => ["embed", join(FIX, "test_with_orfs.fa"), "-o", tempDir("x"), "--embeddings-format", "csv"], /--embeddings-format csv: expected arrow or parquet/],
  ];
  for (const [name, args, re] of cases)
    test(name, () => {
      const r = runCli(args());
      expect(r.code).not.toBe(0);
      const lines = r.stderr.trim().split("\n").filter((l) => l.startsWith("virnuc: error"));
      expect(lines.length).toBe(1);
      expect(lines[0]).toMatch(re);
      expect(r.stderr).not.toContain("    at ");
    }, 60_000);

  test("a second run into the same directory asks for --resume or --force", () => {
    const d = tempDir("again");
    const args = ["predict", join(FIX, "test_with_orfs.fa"), "-o", d, "--no-progress", ...modelArgs()];
    expect(runCli(args).code).toBe(0);
    const r = runCli(args);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--resume.*--force/);
    expect(runCli([...args, "--force"]).code).toBe(0);
  }, 60_000);
});
