/**
 * A part's results as the Arrow tables of the final outputs (predictions, windows, sequences,
 * and optionally embeddings; `embed` writes the frames table instead of the classifier's
 * tables), serialised as Arrow IPC files: assembling the outputs is then a concatenation of
 * parts in input order. Every table has record_index.
 */
import type { PartResult } from "./compute.ts";
import type { PartEntry } from "./store.ts";
import {
  predictionsBatch,
  windowsBatch,
  sequencesBatch,
  embeddingsBatch,
  toFloat16Bits,
  type EmbeddingDtype,
} from "../output/schema.ts";
import { ipcFileBytes } from "../output/arrowfile.ts";
import { recordIndexOfRows, withRecordIndex } from "../output/keys.ts";
import { framesBatch } from "../output/frames.ts";

export const PART_TABLES = ["predictions", "windows", "sequences", "embeddings", "frames"] as const;
export type PartTable = (typeof PART_TABLES)[number];

export function partEntryOf(r: PartResult): Omit<PartEntry, "files"> {
  const p = r.prepared;
  return {
    part: p.records.index,
    firstRecord: p.records.firstRecord,
    records: p.records.ids.length,
    windows: p.windowIds.length,
    frames: p.frameIds.length,
    inputHash: p.records.inputHash,
  };
}

export function partFiles(r: PartResult, opts: { embeddingsDtype: EmbeddingDtype; classify: boolean }): { suffix: string; data: Uint8Array }[] {
  const p = r.prepared;
  const n = p.frameIds.length;
  const scoreOthers = new Float32Array(n);
  const scoreVirus = new Float32Array(n);
  for (let i = 0; i < n && r.probs.length; i++) {
    scoreOthers[i] = r.probs[2 * i];
    scoreVirus[i] = r.probs[2 * i + 1];
  }
  const seqOfWindow = { values: p.records.ids, index: p.windowRecord };
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
  const files: { suffix: string; data: Uint8Array }[] = [];
  if (opts.classify) {
    files.push({
      suffix: "predictions.arrow",
      data: ipcFileBytes(withRecordIndex(
        predictionsBatch({
          frameId: p.frameIds,
          windowId: { values: p.windowIds, index: p.frameWindow },
          sequenceId: { values: p.records.ids, index: frameWindowRecord },
          windowIndex: frameK,
          windowStart: frameStart,
          windowEnd: frameEnd,
          frame: p.frameNames,
          proteinLength: p.proteinLength,
          scoreOthers,
          scoreVirus,
        }),
      frameRecordIndex)),
    });
    files.push({
      suffix: "windows.arrow",
      data: ipcFileBytes(withRecordIndex(
        windowsBatch({
          windowId: p.windowIds,
          sequenceId: seqOfWindow,
          windowIndex: p.windowK,
          windowStart: p.windowStart,
          windowEnd: p.windowEnd,
          nFrames: r.windows.nFrames,
          maxScoreOthers: r.windows.maxOthers,
          maxScoreVirus: r.windows.maxVirus,
        }),
      recordIndexOfRows(recordIndex, p.windowRecord))),
    });
    files.push({
      suffix: "sequences.arrow",
      data: ipcFileBytes(withRecordIndex(
        sequencesBatch({
          sequenceId: p.records.ids,
          length: Float64Array.from(p.records.lengths),
          nWindows: r.sequences.nWindows,
          nViralWindows: r.sequences.nViralWindows,
          maxScoreVirus: r.sequences.maxVirus,
        }),
      recordIndex)),
    });
  } else {
    // embed: the frames table, so that embeddings join to positions without the classifier
    files.push({
      suffix: "frames.arrow",
      data: ipcFileBytes(
        framesBatch({
          frameId: p.frameIds,
          windowId: { values: p.windowIds, index: p.frameWindow },
          sequenceId: { values: p.records.ids, index: frameWindowRecord },
          recordIndex: frameRecordIndex,
          windowIndex: frameK,
          windowStart: frameStart,
          windowEnd: frameEnd,
          frame: p.frameNames,
          proteinLength: p.proteinLength,
          sequenceLength: Float64Array.from(frameWindowRecord, (rec) => p.records.lengths[rec]),
        }),
      ),
    });
  }
  if (r.dnabert && r.esm) {
    const f16 = opts.embeddingsDtype === "float16";
    files.push({
      suffix: "embeddings.arrow",
      data: ipcFileBytes(withRecordIndex(
        embeddingsBatch({
          frameId: p.frameIds,
          dnabert: f16 ? toFloat16Bits(r.dnabert) : r.dnabert,
          esm: f16 ? toFloat16Bits(r.esm) : r.esm,
          dnabertDim: r.dnabertDim,
          esmDim: r.esmDim,
        }),
      frameRecordIndex)),
    });
  }
  return files;
}
