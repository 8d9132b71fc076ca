/**
 * Re-cut a stream of RecordBatches into batches of exactly N rows (the last may be shorter).
 *
 * The Parquet writer's bytes depend on how its input is batched, so every row group is handed
 * over as one batch: a resumed or multi-GPU run, whose parts arrive in other sizes, then writes
 * the same file as an uninterrupted one. Pieces inside one input batch are zero-copy slices;
 * a row group that spans input batches is copied once into fresh buffers.
 */
import {
  Bool,
  type Data,
  type DataType,
  FixedSizeList,
  Float,
  Int,
  RecordBatch,
  type Schema,
  Struct,
  Utf8,
  makeData,
} from "apache-arrow";
import { type BatchSource, batchesOf, conform } from "./arrowfile.ts";

/** Rows [start, end) of one column's data. */
interface Piece {
  data: Data;
  start: number;
  end: number;
}

function bit(bytes: Uint8Array, i: number): boolean {
  return (bytes[i >> 3] & (1 << (i & 7))) !== 0;
}

/** Validity of the pieces, or undefined when none has a null. */
function concatValidity(pieces: Piece[], n: number): { bitmap?: Uint8Array; nullCount: number } {
  if (pieces.every((p) => p.data.nullCount === 0)) return { nullCount: 0 };
  const bitmap = new Uint8Array((n + 7) >> 3);
  let nullCount = 0;
  let o = 0;
  for (const { data, start, end } of pieces) {
    const nb = data.nullBitmap;
    for (let i = start; i < end; i++, o++) {
      // A sliced Data keeps its bitmap whole and counts bits from data.offset.
      const valid = data.nullCount === 0 || !nb || nb.length === 0 || bit(nb, data.offset + i);
      if (valid) bitmap[o >> 3] |= 1 << (o & 7);
      else nullCount++;
    }
  }
  return { bitmap, nullCount };
}

/** Concatenate pieces of one column into new contiguous buffers. */
export function concatData(type: DataType, pieces: Piece[]): Data {
  const n = pieces.reduce((s, p) => s + (p.end - p.start), 0);
  const { bitmap, nullCount } = concatValidity(pieces, n);
  if (type instanceof Utf8) {
    let total = 0;
    for (const { data, start, end } of pieces) total += data.valueOffsets[end] - data.valueOffsets[start];
    const offsets = new Int32Array(n + 1);
    const bytes = new Uint8Array(total);
    let o = 0;
    let b = 0;
    for (const { data, start, end } of pieces) {
      const off = data.valueOffsets as Int32Array;
      bytes.set((data.values as Uint8Array).subarray(off[start], off[end]), b);
      for (let i = start; i < end; i++) offsets[++o] = b + off[i + 1] - off[start];
      b += off[end] - off[start];
    }
    return makeData({ type, length: n, valueOffsets: offsets, data: bytes, nullBitmap: bitmap, nullCount });
  }
  if (type instanceof Bool) {
    const bits = new Uint8Array((n + 7) >> 3);
    let o = 0;
    for (const { data, start, end } of pieces) {
      const v = data.values as Uint8Array;
      for (let i = start; i < end; i++, o++) if (bit(v, data.offset + i)) bits[o >> 3] |= 1 << (o & 7);
    }
    return makeData({ type, length: n, data: bits, nullBitmap: bitmap, nullCount });
  }
  if (type instanceof Int || type instanceof Float) {
    const first = pieces[0].data.values as unknown as { constructor: new (n: number) => Float32Array };
    const out = new first.constructor(n * pieces[0].data.stride);
    let o = 0;
    for (const { data, start, end } of pieces) {
      // Sliced primitive values already start at the slice's first row.
      const v = data.values as unknown as Float32Array;
      out.set(v.subarray(start * data.stride, end * data.stride), o);
      o += (end - start) * data.stride;
    }
    return makeData({ type, length: n, data: out, nullBitmap: bitmap, nullCount } as never) as Data;
  }
  if (type instanceof FixedSizeList) {
    const size = type.listSize;
    const child = concatData(
      type.children[0].type,
      pieces.map(({ data, start, end }) => ({ data: data.children[0], start: start * size, end: end * size })),
    );
    return makeData({ type, length: n, child, nullBitmap: bitmap, nullCount } as never) as unknown as Data;
  }
  throw new Error(`concatData: column type ${type} is not supported`);
}

/** One batch holding rows [start, end) of each of `parts`. */
export function concatBatches(schema: Schema, parts: { batch: RecordBatch; start: number; end: number }[]): RecordBatch {
  if (parts.length === 1) {
    const { batch, start, end } = parts[0];
    return start === 0 && end === batch.numRows ? batch : batch.slice(start, end);
  }
  const n = parts.reduce((s, p) => s + (p.end - p.start), 0);
  const children = schema.fields.map((f, c) =>
    concatData(
      f.type,
      parts.map(({ batch, start, end }) => ({ data: batch.data.children[c], start, end })),
    ),
  );
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, children, nullCount: 0 }));
}

/** Yield batches of exactly `rows` rows (the last one shorter), each conforming to `schema`. */
export async function* rebatch(source: BatchSource, schema: Schema, rows: number): AsyncGenerator<RecordBatch> {
  let pending: { batch: RecordBatch; start: number; end: number }[] = [];
  let have = 0;
  for await (const raw of batchesOf(source)) {
    const batch = conform(raw, schema);
    let start = 0;
    while (start < batch.numRows) {
      const take = Math.min(rows - have, batch.numRows - start);
      pending.push({ batch, start, end: start + take });
      have += take;
      start += take;
      if (have === rows) {
        yield concatBatches(schema, pending);
        pending = [];
        have = 0;
      }
    }
  }
  if (have > 0) yield concatBatches(schema, pending);
}
