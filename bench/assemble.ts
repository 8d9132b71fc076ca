/**
 * The end of a run alone: assembleOutputs (and report.html) from a finished run's parts.
 *
 *   bun bench/assemble.ts RUN_DIR [--out DIR] [--repeats N] [--no-report]
 *
 * RUN_DIR is a finished (unsharded) output directory; its parts are read in place and never
 * changed. The final files are written to --out (default a fresh temporary directory), with
 * run.json's run fields taken from RUN_DIR's run.json. Prints seconds per repeat, the median,
 * and the sha256 of every final file (run.json with its times and finishedAt blanked), so that
 * two versions of the code can be compared byte for byte.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { assembleOutputs } from "../src/run/assemble.ts";
import { PartStore } from "../src/run/store.ts";
import { prewarmParquetThread } from "../src/run/parquet-thread.ts";
import { writeReport } from "../src/report/report.ts";
import { sha256File, sha256Hex } from "../src/output/arrowfile.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    out: { type: "string" },
    repeats: { type: "string", default: "3" },
    "no-report": { type: "boolean", default: false },
  },
});
if (positionals.length !== 1) {
  console.error("usage: bun bench/assemble.ts RUN_DIR [--out DIR] [--repeats N] [--no-report]");
  process.exit(2);
}
const runDir = resolve(positionals[0]);
const store = new PartStore(runDir);
const prev = JSON.parse(readFileSync(join(runDir, "run.json"), "utf8")) as Record<string, unknown>;
const totalParts = Number(prev.totalParts);
const { outputs: _o, counts: _c, ...runInfo } = prev;
const out = resolve(values.out ?? mkdtempSync(join(tmpdir(), "virnuc-bench-assemble-")));

/** run.json without the fields that change from one assembly to the next. */
function stableRunJson(path: string): string {
  const j = JSON.parse(readFileSync(path, "utf8"));
  j.assembleSeconds = 0;
  j.wallSeconds = 0;
  j.counts.finishedAt = "";
  return sha256Hex(JSON.stringify(j));
}

const assembleTimes: number[] = [];
const reportTimes: number[] = [];
const repeats = Math.max(1, Number(values.repeats));
for (let r = 0; r < repeats; r++) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  Bun.gc(true);
  // as in predict, the Parquet thread is started while the parts are computed
  prewarmParquetThread();
  await Bun.sleep(1000);
  const t0 = performance.now();
  await assembleOutputs(out, [{ store, parts: [...Array(totalParts).keys()] }], {
    classify: true,
    keepEmbeddings: false,
    totalParts,
    runInfo: () => ({ ...runInfo, assembleSeconds: (performance.now() - t0) / 1000 }),
  });
  const t1 = performance.now();
  assembleTimes.push((t1 - t0) / 1000);
  if (!values["no-report"]) {
    await writeReport(out);
    reportTimes.push((performance.now() - t1) / 1000);
  }
  console.log(`repeat ${r + 1}: assemble ${assembleTimes[r].toFixed(2)} s${reportTimes.length ? `, report ${reportTimes[r].toFixed(2)} s` : ""}`);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`median: assemble ${median(assembleTimes).toFixed(2)} s${reportTimes.length ? `, report ${median(reportTimes).toFixed(2)} s` : ""}`);
for (const f of readdirSync(out).sort()) {
  if (f.startsWith(".")) continue;
  const p = join(out, f);
  console.log(`${f === "run.json" ? stableRunJson(p) : sha256File(p)}  ${f}`);
}
if (!values.out) rmSync(out, { recursive: true, force: true });
