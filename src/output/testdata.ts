/** Small deterministic result tables for the output tests. */
import type { RecordBatch } from "apache-arrow";
import { frameCalls, sequenceCalls, windowCalls } from "../classify/calls.ts";
import { FRAME_NAMES, predictionsBatch, sequencesBatch, windowsBatch } from "./schema.ts";

/** Reproducible pseudo-random numbers in [0, 1). */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export interface SampleRun {
  predictions: RecordBatch;
  windows: RecordBatch;
  sequences: RecordBatch;
  frameIds: string[];
  scoreOthers: Float32Array;
  scoreVirus: Float32Array;
}

/** `records` reads of 1-3 windows of 500 bp, each window keeping 0-3 frames. */
export function sampleRun(records: number, seed = 1): SampleRun {
  const rnd = lcg(seed);
  const seqIds: string[] = [];
  const seqLen: number[] = [];
  const w = { id: [] as string[], rec: [] as number[], k: [] as number[], start: [] as number[], end: [] as number[] };
  const f = { id: [] as string[], win: [] as number[], code: [] as number[], plen: [] as number[], o: [] as number[], v: [] as number[] };
  for (let r = 0; r < records; r++) {
    const id = `read_${r}`;
    const nWin = 1 + Math.floor(rnd() * 3);
    seqIds.push(id);
    seqLen.push(nWin * 500);
    for (let k = 1; k <= nWin; k++) {
      const wi = w.id.length;
      const wid = `${id}_chunk_${k}`;
      w.id.push(wid);
      w.rec.push(r);
      w.k.push(k);
      w.start.push((k - 1) * 500);
      w.end.push(k * 500);
      const nf = Math.floor(rnd() * 4);
      for (let j = 0; j < nf; j++) {
        const code = j * 2;
        const p = Math.fround(rnd());
        f.id.push(wid + FRAME_NAMES[code]);
        f.win.push(wi);
        f.code.push(code);
        f.plen.push(100 + Math.floor(rnd() * 66));
        f.o.push(Math.fround(1 - p));
        f.v.push(p);
      }
    }
  }
  const frameWindow = Int32Array.from(f.win);
  const windowRecord = Int32Array.from(w.rec);
  const frames = frameCalls(Float32Array.from(f.o.flatMap((o, i) => [o, f.v[i]])));
  const { scoreOthers, scoreVirus } = frames;
  const predictions = predictionsBatch({
    frameId: f.id,
    windowId: { values: w.id, index: frameWindow },
    sequenceId: { values: seqIds, index: frameWindow.map((x) => windowRecord[x]) },
    windowIndex: frameWindow.map((x) => w.k[x]),
    windowStart: Float64Array.from(f.win, (x) => w.start[x]),
    windowEnd: Float64Array.from(f.win, (x) => w.end[x]),
    frame: Uint8Array.from(f.code),
    proteinLength: Int32Array.from(f.plen),
    scoreOthers,
    scoreVirus,
    isVirus: frames.isVirus,
  });
  const wc = windowCalls(w.id.length, frameWindow, frames);
  const windows = windowsBatch({
    windowId: w.id,
    sequenceId: { values: seqIds, index: windowRecord },
    windowIndex: Int32Array.from(w.k),
    windowStart: w.start,
    windowEnd: w.end,
    nFrames: wc.nFrames,
    maxScoreOthers: wc.maxOthers,
    maxScoreVirus: wc.maxVirus,
    isVirus: wc.isVirus,
  });
  const sc = sequenceCalls(records, windowRecord, wc);
  const sequences = sequencesBatch({
    sequenceId: seqIds,
    length: seqLen,
    nWindows: sc.nWindows,
    nViralWindows: sc.nViralWindows,
    maxScoreVirus: sc.maxVirus,
    call: sc.call,
  });
  return { predictions, windows, sequences, frameIds: f.id, scoreOthers, scoreVirus };
}
