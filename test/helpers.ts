/** Shared by the integration tests: tiny random models, synthetic inputs, running the CLI. */
import { afterAll, beforeAll } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { tmpdir } from "node:os";
import { writeRandomModel } from "../src/models/random.ts";
import { syntheticReads } from "../bench/workload.ts";

export const ROOT = resolve(import.meta.dir, "..");
/** Reference data kept in the repository (test/fixtures/reference/PROVENANCE.md says where each file comes from). */
export const REFERENCE = resolve(ROOT, "test/fixtures/reference");
export const CLI = join(ROOT, "src/cli.ts");

let models: { esm: string; dnabert: string; classifier: string } | null = null;

/** Tiny random ESM-2 / DNABERT-S (with the real DNABERT-S tokenizer) / classifier, made once per process. */
export function tinyModels(): { esm: string; dnabert: string; classifier: string } {
  if (models) return models;
  // made once per test run: under the run's root (test/preload.ts), removed with it
  const root = process.env.VIRNUC_TEST_ROOT;
  const dir = root ? join(root, "models") : join(tmpdir(), `virnuc-test-models-${process.pid}`);
  if (!root) process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  const esm = join(dir, "esm");
  const dnabert = join(dir, "dnabert");
  const cls = join(dir, "classifier");
  if (!existsSync(join(cls, "model.pth"))) {
    mkdirSync(dir, { recursive: true });
    writeRandomModel("tiny-esm", 5, esm);
    writeRandomModel("tiny-dnabert", 6, dnabert, { tokenizer: join(REFERENCE, "dnabert-s/tokenizer.json") });
    writeRandomModel("tiny-classifier", 7, cls);
  }
  models = { esm, dnabert, classifier: join(cls, "model.pth") };
  return models;
}

export function modelArgs(m = tinyModels()): string[] {
  return ["--esm", m.esm, "--dnabert", m.dnabert, "--classifier", m.classifier, "--device", "cpu", "--threads", "1"];
}

/** Seeded reads with realistic open reading frames (the benchmarks' workload), as a FASTA file. */
export function syntheticFasta(path: string, n: number, length: number, seed: number): void {
  const out: string[] = [];
  for (const r of syntheticReads(n, length, seed)) out.push(`>${r.id} synthetic\n${r.seq}\n`);
  writeFileSync(path, out.join(""));
}

export function runCli(args: string[], opts: { env?: Record<string, string> } = {}) {
  const p = Bun.spawnSync([process.execPath, CLI, ...args], { cwd: ROOT, env: { ...process.env, ...opts.env }, stdout: "pipe", stderr: "pipe" });
  const r = { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
  reportCrash(`virnuc ${args.join(" ")}`, p.exitCode, p.signalCode == null ? null : String(p.signalCode), r.stderr);
  return r;
}

/** A crashed Bun (panic, abort, a fatal signal) in a CLI subprocess: echoed, since tests only see the exit code. */
export function reportCrash(what: string, code: number | null, signal: string | null, stderr: string): void {
  const crashed = /panic\(|Bun has crashed|Segmentation fault|abort\(\) called|AddressSanitizer/.test(stderr) || (signal !== null && signal !== "SIGKILL");
  if (crashed) console.error(`[crash] ${what}: exit ${code}, signal ${signal}\n${stderr}`);
}

export const OUTPUT_FILES = [
  "prediction_results.txt",
  "prediction_results_highestscore.csv",
  "predictions.parquet",
  "windows.parquet",
  "sequences.parquet",
];

/** Every output file except run.json and report.html (timings differ), as bytes. */
export function outputsOf(dir: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const f of readdirSync(dir)) if (f !== "run.json" && f !== "report.html" && !f.startsWith(".")) out[f] = readFileSync(join(dir, f));
  return out;
}

const made: string[] = [];

/** A fresh temporary directory; the test file removes it with `afterAll(removeTempDirs)`. */
export function tempDir(name: string): string {
  const d = mkdtempSync(join(tmpdir(), `virnuc-${name}-`));
  made.push(d);
  return d;
}

/** Removes every directory tempDir() has made so far. */
export function removeTempDirs(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/**
 * An in-memory DuckDB for the describe block that calls this (opened in beforeAll, closed in
 * afterAll); returns the query function: SQL in, rows out.
 */
export function duckdbQueries(): (sql: string) => Promise<unknown[][]> {
  type Conn = { runAndReadAll(sql: string): Promise<{ getRows(): unknown[][] }>; closeSync(): void };
  let conn: Conn | null = null;
  let db: { closeSync(): void } | null = null;
  beforeAll(async () => {
    const { DuckDBInstance } = await import("@duckdb/node-api");
    const instance = await DuckDBInstance.create(":memory:");
    db = instance;
    conn = (await instance.connect()) as unknown as Conn;
  });
  afterAll(() => {
    conn?.closeSync();
    db?.closeSync();
  });
  return async (sql: string) => {
    if (!conn) throw new Error("duckdbQueries: used outside its describe block's tests");
    return (await conn.runAndReadAll(sql)).getRows();
  };
}
