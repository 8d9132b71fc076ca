/**
 * Synthetic finished output directories for the report tests: the three Parquet tables (built
 * with the pipeline's own batch builders, so they follow its derived-column rules) and a run.json
 * shaped like predict's, with per-part telemetry and warnings.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Schema } from "apache-arrow";
import { writeParquet } from "../output/parquet.ts";
import { writeRunJson } from "../output/runjson.ts";
import { lcg } from "../output/testdata.ts";
import { frameIsVirus, windowIsVirus } from "../classify/calls.ts";
import { predictionsBatch, predictionsSchema, sequencesBatch, sequencesSchema, windowsBatch, windowsSchema } from "../output/schema.ts";

export interface SampleSpec {
  records: number;
  seed?: number;
  /** every k-th record is long: `longWindows` windows (default: none) */
  longEvery?: number;
  longWindows?: number;
  rowGroupSize?: number;
  /** per-part telemetry entries in run.json (default 4) */
  parts?: number;
  warnings?: string[];
  chunk?: number;
}

/** The columns as plain arrays, for computing expected values independently. */
export interface SampleTables {
  seq: { id: string[]; length: number[]; nWindows: number[]; nViral: number[]; maxV: number[] };
  win: { seqRow: number[]; start: number[]; end: number[]; nFrames: number[]; maxO: number[]; maxV: number[] };
  frame: { win: number[]; o: number[]; v: number[] };
}

export function sampleTables(spec: SampleSpec): SampleTables {
  const rnd = lcg(spec.seed ?? 1);
  const chunk = spec.chunk ?? 300;
  const t: SampleTables = {
    seq: { id: [], length: [], nWindows: [], nViral: [], maxV: [] },
    win: { seqRow: [], start: [], end: [], nFrames: [], maxO: [], maxV: [] },
    frame: { win: [], o: [], v: [] },
  };
  for (let r = 0; r < spec.records; r++) {
    const long = spec.longEvery && r % spec.longEvery === 0;
    const nWin = long ? spec.longWindows ?? 1000 : 1 + Math.floor(rnd() * 4);
    // a "viral" record has high scores over a stretch of its windows
    const viral = rnd() < 0.3;
    const hotFrom = Math.floor(rnd() * nWin);
    const hotTo = hotFrom + Math.max(1, Math.floor(nWin * 0.4));
    let nViral = 0;
    let seqMax = NaN;
    for (let k = 0; k < nWin; k++) {
      const wi = t.win.start.length;
      const nf = rnd() < 0.2 ? 0 : 1 + Math.floor(rnd() * 2);
      let mo = NaN;
      let mv = NaN;
      for (let j = 0; j < nf; j++) {
        const hot = viral && k >= hotFrom && k < hotTo;
        const v = Math.fround(hot ? 0.5 + 0.5 * rnd() : 0.6 * rnd());
        const o = Math.fround(1 - v);
        t.frame.win.push(wi);
        t.frame.o.push(o);
        t.frame.v.push(v);
        if (!(mo >= o)) mo = o;
        if (!(mv >= v)) mv = v;
      }
      t.win.seqRow.push(r);
      t.win.start.push(k * chunk);
      t.win.end.push((k + 1) * chunk);
      t.win.nFrames.push(nf);
      t.win.maxO.push(mo);
      t.win.maxV.push(mv);
      if (nf > 0) {
        if (mv >= mo) nViral++;
        if (!(seqMax >= mv)) seqMax = mv;
      }
    }
    t.seq.id.push(`sample_read_${r}`);
    t.seq.length.push(nWin * chunk);
    t.seq.nWindows.push(nWin);
    t.seq.nViral.push(nViral);
    t.seq.maxV.push(seqMax);
  }
  return t;
}

/** Write a finished output directory for `spec` into `dir`; returns its tables. */
export async function writeSampleDir(dir: string, spec: SampleSpec): Promise<SampleTables> {
  mkdirSync(dir, { recursive: true });
  const t = sampleTables(spec);
  const opts = { rowGroupSize: spec.rowGroupSize };
  const fw = Int32Array.from(t.frame.win);
  const winIds = t.win.start.map((_, i) => `${t.seq.id[t.win.seqRow[i]]}_chunk_${i}`);
  await writeParquet(
    join(dir, "predictions.parquet"),
    predictionsBatch({
      frameId: t.frame.win.map((w, i) => `${winIds[w]}F${i}`),
      windowId: { values: winIds, index: fw },
      sequenceId: { values: t.seq.id, index: fw.map((w) => t.win.seqRow[w]) },
      windowIndex: fw.map(() => 1),
      windowStart: Float64Array.from(t.frame.win, (w) => t.win.start[w]),
      windowEnd: Float64Array.from(t.frame.win, (w) => t.win.end[w]),
      frame: new Uint8Array(fw.length),
      proteinLength: new Int32Array(fw.length).fill(100),
      scoreOthers: Float32Array.from(t.frame.o),
      scoreVirus: Float32Array.from(t.frame.v),
      isVirus: Uint8Array.from(t.frame.v, (v, i) => (frameIsVirus(t.frame.o[i], v) ? 1 : 0)),
    }),
    predictionsSchema as Schema,
    opts,
  );
  await writeParquet(
    join(dir, "windows.parquet"),
    windowsBatch({
      windowId: winIds,
      sequenceId: { values: t.seq.id, index: Int32Array.from(t.win.seqRow) },
      windowIndex: Int32Array.from(t.win.start, () => 1),
      windowStart: t.win.start,
      windowEnd: t.win.end,
      nFrames: Int32Array.from(t.win.nFrames),
      maxScoreOthers: Float32Array.from(t.win.maxO),
      maxScoreVirus: Float32Array.from(t.win.maxV),
      isVirus: Int8Array.from(t.win.nFrames, (n, i) => (n === 0 ? -1 : windowIsVirus(t.win.maxO[i], t.win.maxV[i]) ? 1 : 0)),
    }),
    windowsSchema as Schema,
    opts,
  );
  await writeParquet(
    join(dir, "sequences.parquet"),
    sequencesBatch({
      sequenceId: t.seq.id,
      length: t.seq.length,
      nWindows: Int32Array.from(t.seq.nWindows),
      nViralWindows: Int32Array.from(t.seq.nViral),
      maxScoreVirus: Float32Array.from(t.seq.maxV),
      call: Int8Array.from(t.seq.nViral, (nv, r) =>
        nv > 0 ? 1 : t.win.seqRow.some((row, w) => row === r && t.win.nFrames[w] > 0) ? 0 : -1,
      ),
    }),
    sequencesSchema as Schema,
    opts,
  );
  const parts = spec.parts ?? 4;
  const telemetry = [...Array(parts).keys()].map((k) => ({
    part: k,
    reads: 100,
    windows: 200,
    frames: 150,
    esm_tokens: 30000 + 100 * k,
    dnabert_tokens: 9000,
    esm_batches: 4,
    dnabert_batches: 2,
    esm_packing_efficiency: 0.97,
    dnabert_packing_efficiency: 0.95,
    host_prepare_s: 0.2 + 0.01 * k,
    device_s: 1.5 + 0.05 * (k % 3),
    host_wait_for_device_s: 1.2,
    device_wait_for_host_s: k === 0 ? 0.2 : 0,
    tokens_per_s: 26000 - 50 * k,
  }));
  writeRunJson(dir, {
    command: "predict",
    virnuc: { version: "0.0.0-test" },
    device: "cpu (test)",
    precision: "fp32",
    chunkSize: spec.chunk ?? 300,
    inputs: [{ path: "/data/sample.fa", bytes: 12345, sha256: "ab".repeat(32) }],
    models: { files: { esm: [{ path: "/models/esm/model.safetensors", bytes: 999, sha256: "cd".repeat(32) }], classifier: [{ path: "/models/300_model.pth", bytes: 99, sha256: "ef".repeat(32) }] } },
    wallSeconds: 12.5,
    computeSeconds: 10,
    modelLoadSeconds: 2,
    totalParts: parts,
    summary: { reads: spec.records, readsPerSecond: spec.records / 10, esm: { tokens: 1e5, tokensPerSecond: 1e4, batches: 16, packingEfficiency: 0.97 }, dnabert: { tokens: 3e4, tokensPerSecond: 3e3, batches: 8, packingEfficiency: 0.95 }, hostPrepareSeconds: 1, hostWaitForDeviceSeconds: 4.8, deviceWaitForHostSeconds: 0.2 },
    telemetry,
    warnings: spec.warnings ?? ["record 3 of /data/sample.fa has an empty sequence: skipped"],
    counts: { totalRecords: spec.records, windows: t.win.start.length, frames: t.frame.win.length, totalParts: parts, finishedAt: "2026-11-30T00:00:00.000Z" },
  });
  return t;
}
