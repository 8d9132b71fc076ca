/**
 * `record_index`: the 0-based ordinal of the input record over all inputs (int64, never null),
 * the key that joins predictions, windows, sequences, frames and embeddings one-to-one even when
 * record ids repeat. Record ids (`sequence_id`) are what the user wrote; record_index is what
 * identifies a record.
 *
 * The column is added to a batch made by the table builders (schema.ts), right after
 * `sequence_id` (or after `frame_id` in the embeddings, which have no `sequence_id`), without
 * copying the other columns.
 */
import { Field, Int64, RecordBatch, Schema, Struct, makeData } from "apache-arrow";
import { type Int64Column, toBigInt64, predictionsSchema, windowsSchema, sequencesSchema } from "./schema.ts";

export const RECORD_INDEX = "record_index";

const recordIndexField = new Field(RECORD_INDEX, new Int64(), false);

/** Where record_index goes: after sequence_id, else after frame_id, else first. */
function insertAt(schema: Schema): number {
  const names = schema.fields.map((f) => f.name);
  if (names.includes(RECORD_INDEX)) throw new Error(`the table already has ${RECORD_INDEX}`);
  const seq = names.indexOf("sequence_id");
  if (seq >= 0) return seq + 1;
  const frame = names.indexOf("frame_id");
  return frame >= 0 ? frame + 1 : 0;
}

const keyedCache = new WeakMap<Schema, Schema>();

/** `schema` with record_index inserted (the same object for the same input schema). */
export function keyedSchema(schema: Schema): Schema {
  const hit = keyedCache.get(schema);
  if (hit) return hit;
  const at = insertAt(schema);
  const fields = [...schema.fields.slice(0, at), recordIndexField, ...schema.fields.slice(at)];
  const out = new Schema(fields, schema.metadata, schema.dictionaries);
  keyedCache.set(schema, out);
  return out;
}

/** Keyed schemas of the result tables, by the builders' schemas they extend. */
export const predictionsKeyedSchema = keyedSchema(predictionsSchema);
export const windowsKeyedSchema = keyedSchema(windowsSchema);
export const sequencesKeyedSchema = keyedSchema(sequencesSchema);

/** Types equal by value (a batch's own schema object may differ from the cached one). */
function sameFields(a: Schema, b: Schema): boolean {
  return a.fields.length === b.fields.length && a.fields.every((f, i) => f.name === b.fields[i].name && f.type.typeId === b.fields[i].type.typeId && String(f.type) === String(b.fields[i].type));
}

/**
 * The batch with a record_index column. `recordIndex` has one value per row: whole numbers
 * >= 0 (a BigInt64Array is used as it is). The other columns are shared, not copied.
 */
export function withRecordIndex(batch: RecordBatch, recordIndex: Int64Column): RecordBatch {
  const n = batch.numRows;
  if (recordIndex.length !== n) throw new Error(`${RECORD_INDEX}: ${recordIndex.length} values for ${n} rows`);
  const values = toBigInt64(recordIndex);
  for (let i = 0; i < n; i++) if (values[i] < 0n) throw new Error(`${RECORD_INDEX}: negative value ${values[i]} at row ${i}`);
  // The builders' tables map to their keyed schemas above; any other table gets its own.
  let schema = keyedCache.get(batch.schema);
  if (!schema) {
    for (const base of [predictionsSchema, windowsSchema, sequencesSchema])
      if (sameFields(base, batch.schema)) schema = keyedSchema(base);
    schema ??= keyedSchema(batch.schema);
  }
  const at = insertAt(batch.schema);
  const column = makeData({ type: new Int64(), length: n, data: values });
  const children = [...batch.data.children.slice(0, at), column, ...batch.data.children.slice(at)];
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, children, nullCount: 0 }));
}

/**
 * Each row's record_index: `recordIndex[r]` is the record_index of the part's record r, and
 * `rowRecord[i]` the part record of row i (e.g. a window's record, or a frame's window's record).
 */
export function recordIndexOfRows(recordIndex: ArrayLike<number>, rowRecord: ArrayLike<number>): Float64Array {
  const out = new Float64Array(rowRecord.length);
  for (let i = 0; i < rowRecord.length; i++) {
    const r = rowRecord[i];
    if (r < 0 || r >= recordIndex.length) throw new Error(`row ${i} refers to record ${r} of ${recordIndex.length}`);
    out[i] = recordIndex[r];
  }
  return out;
}
