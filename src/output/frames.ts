/**
 * frames.parquet (written by `virnuc embed`): one row per kept frame, in pipeline order, the
 * same rows as embeddings.arrow/.parquet, so that embeddings can be joined to positions without
 * running the classifier. Columns: the frame, window and record ids, record_index, the window's
 * coordinates (0-based, half-open in the input record), the frame (F1..R3), the protein length
 * and the input record's length.
 *
 * The columns shared with predictions.parquet are built by the predictions builder and taken
 * from its batch, so both tables encode them identically.
 */
import { Field, Int64, RecordBatch, Schema, Struct, makeData } from "apache-arrow";
import { type Int64Column, type PredictionColumns, predictionsBatch, predictionsSchema, toBigInt64 } from "./schema.ts";
import { keyedSchema, withRecordIndex } from "./keys.ts";

const SHARED = ["frame_id", "window_id", "sequence_id", "window_index", "window_start", "window_end", "frame", "protein_length"];

const framesBaseSchema = new Schema([
  ...SHARED.map((name) => predictionsSchema.fields.find((f) => f.name === name)!),
  new Field("sequence_length", new Int64(), false),
]);

/** frames.parquet's schema (with record_index after sequence_id). */
export const framesSchema = keyedSchema(framesBaseSchema);

export type FrameColumns = Omit<PredictionColumns, "scoreOthers" | "scoreVirus" | "isVirus"> & {
  /** record_index of each frame's input record */
  recordIndex: Int64Column;
  /** length of each frame's input record */
  sequenceLength: Int64Column;
};

export function framesBatch(c: FrameColumns): RecordBatch {
  const n = c.proteinLength.length;
  const zeros = new Float32Array(n);
  const p = predictionsBatch({ ...c, scoreOthers: zeros, scoreVirus: zeros, isVirus: new Uint8Array(n) });
  const names = predictionsSchema.fields.map((f) => f.name);
  const seqLen = toBigInt64(c.sequenceLength);
  if (seqLen.length !== n) throw new Error(`column sequence_length: ${seqLen.length} rows, expected ${n}`);
  const children = [
    ...SHARED.map((name) => p.data.children[names.indexOf(name)]),
    makeData({ type: new Int64(), length: n, data: seqLen }),
  ];
  const base = new RecordBatch(framesBaseSchema, makeData({ type: new Struct(framesBaseSchema.fields), length: n, children, nullCount: 0 }));
  return withRecordIndex(base, c.recordIndex);
}
