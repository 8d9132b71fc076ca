/** Shared by the integration tests: tiny random models, synthetic inputs, running the CLI. */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
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
  const dir = join(tmpdir(), `virnuc-test-models-${process.pid}`);
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
  return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

export const OUTPUT_FILES = [
  "prediction_results.txt",
  "prediction_results_highestscore.csv",
  "predictions.parquet",
  "windows.parquet",
  "sequences.parquet",
];

/** Every output file except run.json (timings differ), as bytes. */
export function outputsOf(dir: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const f of readdirSync(dir)) if (f !== "run.json" && !f.startsWith(".")) out[f] = readFileSync(join(dir, f));
  return out;
}

export function tempDir(name: string): string {
  const d = join(tmpdir(), `virnuc-${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(d, { recursive: true });
  return d;
}
