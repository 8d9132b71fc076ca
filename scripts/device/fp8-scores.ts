/**
 * FP8 against FP16 where the user sees it: `virnuc predict` on the same seeded reads with both
 * precisions (random-weight ESM-2 3B, DNABERT-S and classifier unless given), then per frame the
 * largest and mean |score difference| and how many calls flip (frames, and windows' Is_Virus).
 *
 *   bun scripts/device/fp8-scores.ts [--reads 20000] [--outliers] [--tokenizer FILE] [--out FILE.json]
 *                                    [--esm DIR --dnabert DIR --classifier FILE] [--input FASTA]
 *                                    [--recheck-margin 0.05]
 * A third run, fp8 with --recheck-margin (0: skipped), counts the calls that still differ from fp16's
 * (none expected where fp8 moved no score by the margin) and how many frames it redid.
 */
import { parseArgs } from "node:util";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
    "recheck-margin": { type: "string", default: "0.05" },
  },
});
const work = o["work-dir"]!;
mkdirSync(work, { recursive: true });
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
const runs: Record<string, { frames: string[][]; windows: string[][]; run: Record<string, any> }> = {};
const margin = Number(o["recheck-margin"]);
const variants: [string, string[]][] = [["fp16", ["--precision", "fp16"]], ["fp8", ["--precision", "fp8"]]];
if (margin > 0) variants.push(["fp8-recheck", ["--precision", "fp8", "--recheck-margin", String(margin)]]);
for (const [name, flags] of variants) {
  const dir = join(work, `scores-${name}`);
  rmSync(dir, { recursive: true, force: true });
  const argv = [process.execPath, "src/cli.ts", "predict", fasta, "-o", dir, "--chunk-size", "300", "--esm", models.esm,
    "--dnabert", models.dna, "--classifier", classifier, "--no-progress", "--no-report", ...flags];
  const p = Bun.spawnSync(argv, { stdout: "inherit", stderr: "inherit", env: process.env });
  if (p.exitCode !== 0) throw new Error(`predict ${flags.join(" ")} failed (exit ${p.exitCode})`);
  runs[name] = {
    frames: table(join(dir, "prediction_results.txt")),
    windows: table(join(dir, "prediction_results_highestscore.csv")),
    run: JSON.parse(readFileSync(join(dir, "run.json"), "utf8")),
  };
}
/** Calls that differ from the fp16 run's: frames and windows. */
const flipsAgainstFp16 = (x: { frames: string[][]; windows: string[][] }) => ({
  frames: x.frames.filter((r, i) => r[1] !== runs.fp16.frames[i][1]).length,
  windows: x.windows.filter((r, i) => r[1] !== runs.fp16.windows[i][1]).length,
});
const a = runs.fp16, b = runs.fp8;
if (a.frames.length !== b.frames.length || a.windows.length !== b.windows.length)
  throw new Error("fp16 and fp8 runs kept different frames or windows");
let maxDiff = 0, sumDiff = 0, over = 0, worst = "";
for (let i = 0; i < a.frames.length; i++) {
  if (a.frames[i][0] !== b.frames[i][0]) throw new Error(`row ${i}: ${a.frames[i][0]} vs ${b.frames[i][0]}`);
  const d = Math.abs(Number(a.frames[i][3]) - Number(b.frames[i][3]));
  sumDiff += d;
  if (d > 0.01) over++;
  if (d > maxDiff) [maxDiff, worst] = [d, a.frames[i][0]];
}
const fp8Flips = flipsAgainstFp16(b);
const summary = {
  input: fasta, esm: models.esm, classifier, reads: o.input ? null : reads, outliers: o.outliers, frames: a.frames.length, windows: a.windows.length,
  max_abs_score_diff: maxDiff, mean_abs_score_diff: sumDiff / a.frames.length, worst_frame: worst,
  frames_over_0_01: over, frame_call_flips: fp8Flips.frames, window_call_flips: fp8Flips.windows,
  fp16_virus_frames: a.frames.filter((r) => r[1] === "virus").length,
  wall_s: { fp16: runs.fp16.run.wallSeconds, fp8: runs.fp8.run.wallSeconds, fp8_recheck: runs["fp8-recheck"]?.run.wallSeconds ?? null },
  recheck: runs["fp8-recheck"]
    ? {
        margin,
        frames_redone: runs["fp8-recheck"].run.summary?.recheckFrames ?? null,
        seconds: runs["fp8-recheck"].run.summary?.recheckSeconds ?? null,
        call_flips_vs_fp16: flipsAgainstFp16(runs["fp8-recheck"]),
      }
    : null,
  pass: maxDiff <= 0.01,
};
console.log(`fp8 vs fp16 scores: ${JSON.stringify(summary)}`);
if (o.out) writeFileSync(o.out, JSON.stringify(summary, null, 1));
