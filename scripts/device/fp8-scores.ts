/**
 * FP8 against FP16 where the user sees it: `virnuc predict` on the same seeded reads with both
 * precisions (random-weight ESM-2 3B, DNABERT-S and classifier unless given), then per frame the
 * largest and mean |score difference| and how many calls flip (frames, and windows' Is_Virus).
 *
 *   bun scripts/device/fp8-scores.ts [--reads 20000] [--outliers] [--tokenizer FILE] [--out FILE.json]
 *                                    [--esm DIR --dnabert DIR --classifier FILE] [--input FASTA]
 */
import { parseArgs } from "node:util";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { ensureRandomModels } from "../../bench/engine.ts";
import { writeSyntheticFasta } from "../../bench/workload.ts";
import { writeRandomModel } from "../../src/models/random.ts";

const { values: o } = parseArgs({
  options: {
    reads: { type: "string", default: "20000" },
    outliers: { type: "boolean", default: false },
    tokenizer: { type: "string" },
    "work-dir": { type: "string", default: join(tmpdir(), "virnuc-bench") },
    out: { type: "string" },
    esm: { type: "string" },
    dnabert: { type: "string" },
    classifier: { type: "string" },
    input: { type: "string" },
  },
});
const work = o["work-dir"]!;
const models =
  o.esm && o.dnabert ? { esm: o.esm, dna: o.dnabert } : await ensureRandomModels(work, o.tokenizer, { outliers: o.outliers });
let classifier = o.classifier;
if (!classifier) {
  const cls = join(work, "classifier-3328");
  if (!existsSync(join(cls, "model.pth"))) writeRandomModel("classifier", 1, cls);
  classifier = join(cls, "model.pth");
}
const reads = Number(o.reads);
const fasta = o.input ?? join(work, `reads_${reads}_150.fa`);
if (!existsSync(fasta)) await writeSyntheticFasta(fasta, reads, 150, 11);

const table = (file: string) =>
  readFileSync(file, "utf8").trimEnd().split("\n").slice(1).map((l) => l.split("\t"));
const runs: Record<string, { frames: string[][]; windows: string[][] }> = {};
for (const precision of ["fp16", "fp8"]) {
  const dir = join(work, `scores-${precision}`);
  rmSync(dir, { recursive: true, force: true });
  const argv = [process.execPath, "src/cli.ts", "predict", fasta, "-o", dir, "--chunk-size", "300", "--esm", models.esm,
    "--dnabert", models.dna, "--classifier", classifier, "--no-progress", "--no-report", "--precision", precision];
  const p = Bun.spawnSync(argv, { stdout: "inherit", stderr: "inherit", env: process.env });
  if (p.exitCode !== 0) throw new Error(`predict --precision ${precision} failed (exit ${p.exitCode})`);
  runs[precision] = {
    frames: table(join(dir, "prediction_results.txt")),
    windows: table(join(dir, "prediction_results_highestscore.csv")),
  };
}
const a = runs.fp16, b = runs.fp8;
if (a.frames.length !== b.frames.length || a.windows.length !== b.windows.length)
  throw new Error("fp16 and fp8 runs kept different frames or windows");
let maxDiff = 0, sumDiff = 0, over = 0, flips = 0, worst = "";
for (let i = 0; i < a.frames.length; i++) {
  if (a.frames[i][0] !== b.frames[i][0]) throw new Error(`row ${i}: ${a.frames[i][0]} vs ${b.frames[i][0]}`);
  const d = Math.abs(Number(a.frames[i][3]) - Number(b.frames[i][3]));
  sumDiff += d;
  if (d > 0.01) over++;
  if (d > maxDiff) [maxDiff, worst] = [d, a.frames[i][0]];
  if (a.frames[i][1] !== b.frames[i][1]) flips++;
}
let windowFlips = 0;
for (let i = 0; i < a.windows.length; i++) if (a.windows[i][1] !== b.windows[i][1]) windowFlips++;
const summary = {
  input: fasta, esm: models.esm, classifier, reads: o.input ? null : reads, outliers: o.outliers, frames: a.frames.length, windows: a.windows.length,
  max_abs_score_diff: maxDiff, mean_abs_score_diff: sumDiff / a.frames.length, worst_frame: worst,
  frames_over_0_01: over, frame_call_flips: flips, window_call_flips: windowFlips,
  fp16_virus_frames: a.frames.filter((r) => r[1] === "virus").length,
  pass: maxDiff <= 0.01,
};
console.log(`fp8 vs fp16 scores: ${JSON.stringify(summary)}`);
if (o.out) writeFileSync(o.out, JSON.stringify(summary, null, 1));
