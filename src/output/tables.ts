/**
 * Chain step ClassifiedPart -> PartTables: a part's rows as the Arrow tables of the final outputs
 * (predictions, windows, sequences, and optionally embeddings; `embed` writes the frames table
 * instead of the classifier's tables), serialised as Arrow IPC files, so that assembling the
 * outputs is a concatenation of parts in input order. Every table has record_index.
 */
import type { ClassifiedPart, PartFile, PartTables } from "../run/chain.ts";
import { predictionsBatch, windowsBatch, sequencesBatch, embeddingsBatch, toFloat16Bits, type EmbeddingDtype } from "./schema.ts";
import { ipcFileBytes } from "./arrowfile.ts";
import { recordIndexOfRows, withRecordIndex } from "./keys.ts";
import { framesBatch } from "./frames.ts";

export const PART_TABLES = ["predictions", "windows", "sequences", "embeddings", "frames"] as const;
export type PartTable = (typeof PART_TABLES)[number];

export function partTables(c: ClassifiedPart, opts: { embeddingsDtype: EmbeddingDtype; keepEmbeddings: boolean }): PartTables {
  const e = c.encoded;
  const p = e.prepared;
  const n = p.frameIds.length;
  const files: PartFile[] = [];
  const frameWindowRecord = new Int32Array(n);
  const frameK = new Int32Array(n);
  const frameStart = new Float64Array(n);
  const frameEnd = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const w = p.frameWindow[i];
    frameWindowRecord[i] = p.windowRecord[w];
    frameK[i] = p.windowK[w];
    frameStart[i] = p.windowStart[w];
    frameEnd[i] = p.windowEnd[w];
  }
  const recordIndex = p.records.recordIndex;
  const frameRecordIndex = recordIndexOfRows(recordIndex, frameWindowRecord);
  // the frame columns shared by predictions (with the scores) and embed's frames table
  const frameColumns = {
    frameId: p.frameIds,
    windowId: { values: p.windowIds, index: p.frameWindow },
    sequenceId: { values: p.records.ids, index: frameWindowRecord },
    windowIndex: frameK,
    windowStart: frameStart,
    windowEnd: frameEnd,
    frame: p.frameNames,
    proteinLength: p.proteinLength,
  };
  if (c.calls) {
    const { frames, windows, sequences } = c.calls;
    const predictions = predictionsBatch({
      ...frameColumns,
      scoreOthers: frames.scoreOthers,
      scoreVirus: frames.scoreVirus,
      isVirus: frames.isVirus,
    });
    files.push({ suffix: "predictions.arrow", data: ipcFileBytes(withRecordIndex(predictions, frameRecordIndex)) });
    const win = windowsBatch({
      windowId: p.windowIds,
      sequenceId: { values: p.records.ids, index: p.windowRecord },
      windowIndex: p.windowK,
      windowStart: p.windowStart,
      windowEnd: p.windowEnd,
      nFrames: windows.nFrames,
      maxScoreOthers: windows.maxOthers,
      maxScoreVirus: windows.maxVirus,
      isVirus: windows.isVirus,
    });
    files.push({ suffix: "windows.arrow", data: ipcFileBytes(withRecordIndex(win, recordIndexOfRows(recordIndex, p.windowRecord))) });
    const seq = sequencesBatch({
      sequenceId: p.records.ids,
      length: Float64Array.from(p.records.lengths),
      nWindows: sequences.nWindows,
      nViralWindows: sequences.nViralWindows,
      maxScoreVirus: sequences.maxVirus,
      call: sequences.call,
    });
    files.push({ suffix: "sequences.arrow", data: ipcFileBytes(withRecordIndex(seq, recordIndex)) });
  } else {
    // embed: the frames table, so that embeddings join to positions without the classifier
    const frames = framesBatch({
      ...frameColumns,
      recordIndex: frameRecordIndex,
      sequenceLength: Float64Array.from(frameWindowRecord, (rec) => p.records.lengths[rec]),
    });
    files.push({ suffix: "frames.arrow", data: ipcFileBytes(frames) });
  }
  if (opts.keepEmbeddings) {
    const f16 = opts.embeddingsDtype === "float16";
    const emb = embeddingsBatch({
      frameId: p.frameIds,
      dnabert: f16 ? toFloat16Bits(e.dnabert) : e.dnabert,
      esm: f16 ? toFloat16Bits(e.esm) : e.esm,
      dnabertDim: e.dnabertDim,
      esmDim: e.esmDim,
    });
    files.push({ suffix: "embeddings.arrow", data: ipcFileBytes(withRecordIndex(emb, frameRecordIndex)) });
  }
  return {
    head: {
      part: p.records.index,
      firstRecord: p.records.firstRecord,
      records: p.records.ids.length,
      windows: p.windowIds.length,
      frames: n,
      inputHash: p.records.inputHash,
    },
    files,
  };
}
