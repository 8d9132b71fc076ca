/**
 * Arrow schemas of the result tables and builders that turn column arrays into RecordBatches.
 *
 * Builders take typed arrays and write Arrow buffers directly (no per-row objects): strings are
 * UTF-8 encoded once into one buffer, numbers are used in place or converted in one pass, and
 * embedding matrices become FixedSizeList vectors over the caller's Float32Array, without a copy.
 *
 * The calls (predictions.prediction, windows.is_virus, sequences.call) come in as columns made
 * by classify/calls.ts, the one owner of the calling rule; here they are only formatted
 * (null where a window or record kept no frame).
 */
import {
  Bool,
  Data,
  type DataType,
  Field,
  FixedSizeList,
  Float16,
  Float32,
  Int32,
  Int64,
  RecordBatch,
  Schema,
  Struct,
  Utf8,
  makeData,
} from "apache-arrow";

export const FRAME_NAMES = ["F1", "F2", "F3", "R1", "R2", "R3"] as const;
export type FrameName = (typeof FRAME_NAMES)[number];

export const DNABERT_DIM = 768;
export const ESM_DIM = 2560;

// ---- schemas ---------------------------------------------------------------------------------

const req = (name: string, type: DataType) => new Field(name, type, false);
const opt = (name: string, type: DataType) => new Field(name, type, true);

/** predictions.parquet: one row per kept frame, in pipeline order. */
export const predictionsSchema = new Schema([
  req("frame_id", new Utf8()),
  req("window_id", new Utf8()),
  req("sequence_id", new Utf8()),
  req("window_index", new Int32()), // k of `_chunk_k`, 1-based
  req("window_start", new Int64()), // 0-based, half-open, in the input sequence
  req("window_end", new Int64()),
  req("frame", new Utf8()), // F1..F3, R1..R3
  req("protein_length", new Int32()),
  req("score_others", new Float32()),
  req("score_virus", new Float32()),
  req("prediction", new Utf8()), // virus | others
]);

/** windows.parquet: one row per window, including windows with no kept frame. */
export const windowsSchema = new Schema([
  req("window_id", new Utf8()),
  req("sequence_id", new Utf8()),
  req("window_index", new Int32()),
  req("window_start", new Int64()),
  req("window_end", new Int64()),
  req("n_frames", new Int32()),
  opt("max_score_others", new Float32()),
  opt("max_score_virus", new Float32()),
  opt("is_virus", new Bool()),
]);

/** sequences.parquet: one row per input record. */
export const sequencesSchema = new Schema([
  req("sequence_id", new Utf8()),
  req("length", new Int64()),
  req("n_windows", new Int32()),
  req("n_viral_windows", new Int32()),
  opt("max_score_virus", new Float32()),
  opt("call", new Utf8()), // virus | others | null (no window kept a frame)
]);

export type EmbeddingDtype = "float32" | "float16";

/** embeddings.arrow: one row per kept frame; DNABERT-S first, as in the classifier's feature. */
export function embeddingsSchema(dnabertDim = DNABERT_DIM, esmDim = ESM_DIM, dtype: EmbeddingDtype = "float32"): Schema {
  const item = () => new Field("item", dtype === "float16" ? new Float16() : new Float32(), false);
  return new Schema([
    req("frame_id", new Utf8()),
    req("dnabert", new FixedSizeList(dnabertDim, item())),
    req("esm", new FixedSizeList(esmDim, item())),
  ]);
}

// ---- column inputs ---------------------------------------------------------------------------

/** UTF-8 strings in Arrow layout: value i is bytes[offsets[i] .. offsets[i+1]). */
export interface Utf8Column {
  offsets: Int32Array; // length n + 1
  bytes: Uint8Array;
}

/** Values picked from a smaller table by index, e.g. each frame's window id. */
export interface IndexedStrings {
  values: readonly string[] | Utf8Column;
  index: Int32Array;
}

export type StringColumn = readonly string[] | Utf8Column | IndexedStrings;

/** Whole numbers below 2^53; BigInt64Array is used as is. */
export type Int64Column = BigInt64Array | Float64Array | Int32Array | readonly number[];

function isUtf8Column(c: unknown): c is Utf8Column {
  return typeof c === "object" && c !== null && "offsets" in c && "bytes" in c;
}

function isIndexed(c: StringColumn): c is IndexedStrings {
  return !Array.isArray(c) && "index" in c;
}

function columnLength(c: StringColumn): number {
  if (isIndexed(c)) return c.index.length;
  if (isUtf8Column(c)) return c.offsets.length - 1;
  return (c as readonly string[]).length;
}

const encoder = new TextEncoder();

/** Encode strings into one UTF-8 buffer with Arrow offsets. */
export function encodeUtf8(strings: readonly string[]): Utf8Column {
  const n = strings.length;
  const offsets = new Int32Array(n + 1);
  let cap = 16;
  for (let i = 0; i < n; i++) cap += strings[i].length;
  let bytes = new Uint8Array(cap);
  let p = 0;
  for (let i = 0; i < n; i++) {
    const s = strings[i];
    // UTF-16 length is the byte count for ASCII; non-ASCII needs up to 3 bytes per unit.
    if (bytes.length - p < s.length * 3) {
      const bigger = new Uint8Array(Math.max(bytes.length * 2, p + s.length * 3));
      bigger.set(bytes.subarray(0, p));
      bytes = bigger;
    }
    p += encoder.encodeInto(s, bytes.subarray(p)).written;
    if (p > 0x7fffffff) throw new Error("string column over 2 GiB: write it in smaller batches");
    offsets[i + 1] = p;
  }
  return { offsets, bytes: bytes.subarray(0, p) };
}

/** Gather values[index[i]] in UTF-8 form. */
function gatherUtf8(values: Utf8Column, index: Int32Array): Utf8Column {
  const n = index.length;
  const offsets = new Int32Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const j = index[i];
    total += values.offsets[j + 1] - values.offsets[j];
    offsets[i + 1] = total;
  }
  const bytes = new Uint8Array(total);
  for (let i = 0; i < n; i++) {
    const j = index[i];
    bytes.set(values.bytes.subarray(values.offsets[j], values.offsets[j + 1]), offsets[i]);
  }
  return { offsets, bytes };
}

function toUtf8(c: StringColumn): Utf8Column {
  if (isIndexed(c)) {
    const values = isUtf8Column(c.values) ? c.values : encodeUtf8(c.values as readonly string[]);
    return gatherUtf8(values, c.index);
  }
  return isUtf8Column(c) ? c : encodeUtf8(c as readonly string[]);
}

function utf8Data(c: Utf8Column, nullBitmap?: Uint8Array, nullCount = 0): Data<Utf8> {
  return makeData({
    type: new Utf8(),
    length: c.offsets.length - 1,
    valueOffsets: c.offsets,
    data: c.bytes,
    nullBitmap,
    nullCount,
  });
}

/** One of a few fixed labels per row, by code: fixed-width offsets, no per-row strings. */
function labelData(labels: readonly string[], codes: ArrayLike<number>, nullBitmap?: Uint8Array, nullCount = 0): Data<Utf8> {
  const enc = labels.map((s) => encoder.encode(s));
  const n = codes.length;
  const offsets = new Int32Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += codes[i] < 0 ? 0 : enc[codes[i]].length;
    offsets[i + 1] = total;
  }
  const bytes = new Uint8Array(total);
  for (let i = 0; i < n; i++) if (codes[i] >= 0) bytes.set(enc[codes[i]], offsets[i]);
  return utf8Data({ offsets, bytes }, nullBitmap, nullCount);
}

function int32Data(values: Int32Array): Data<Int32> {
  return makeData({ type: new Int32(), length: values.length, data: values });
}

/** Int64 column without BigInt conversions: writes the two 32-bit halves of each value. */
export function toBigInt64(values: Int64Column): BigInt64Array {
  if (values instanceof BigInt64Array) return values;
  const n = values.length;
  const out = new BigInt64Array(n);
  const halves = new Int32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    const x = values[i];
    if (!Number.isSafeInteger(x)) throw new Error(`int64 column: ${x} at row ${i} is not a whole number`);
    const lo = x % 0x100000000;
    const hi = Math.floor(x / 0x100000000);
    halves[2 * i] = lo | 0;
    halves[2 * i + 1] = hi | 0;
  }
  return out;
}

function int64Data(values: Int64Column): Data<Int64> {
  const v = toBigInt64(values);
  return makeData({ type: new Int64(), length: v.length, data: v });
}

function float32Data(values: Float32Array, nullBitmap?: Uint8Array, nullCount = 0): Data<Float32> {
  return makeData({ type: new Float32(), length: values.length, data: values, nullBitmap, nullCount });
}

/** Validity bitmap from a predicate; undefined when every row is valid. */
function validity(n: number, valid: (i: number) => boolean): { bitmap?: Uint8Array; nullCount: number } {
  const bitmap = new Uint8Array((n + 7) >> 3);
  let nullCount = 0;
  for (let i = 0; i < n; i++) {
    if (valid(i)) bitmap[i >> 3] |= 1 << (i & 7);
    else nullCount++;
  }
  return nullCount === 0 ? { nullCount } : { bitmap, nullCount };
}

function batchOf(schema: Schema, length: number, children: Data[]): RecordBatch {
  schema.fields.forEach((f, i) => {
    if (children[i].length !== length) throw new Error(`column ${f.name}: ${children[i].length} rows, expected ${length}`);
  });
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length, children, nullCount: 0 }));
}

function checkLength(name: string, got: number, want: number): void {
  if (got !== want) throw new Error(`column ${name}: ${got} rows, expected ${want}`);
}

// ---- builders --------------------------------------------------------------------------------

export interface PredictionColumns {
  frameId: StringColumn;
  windowId: StringColumn;
  sequenceId: StringColumn;
  windowIndex: Int32Array;
  windowStart: Int64Column;
  windowEnd: Int64Column;
  /** codes 0..5 into FRAME_NAMES, or the names */
  frame: Uint8Array | readonly string[];
  proteinLength: Int32Array;
  scoreOthers: Float32Array;
  scoreVirus: Float32Array;
  /** the frame's call: 1 virus, 0 others */
  isVirus: Uint8Array;
}

const FRAME_CODE = new Map<string, number>(FRAME_NAMES.map((f, i) => [f, i]));

function frameCodes(frame: Uint8Array | readonly string[]): Uint8Array {
  if (frame instanceof Uint8Array) {
    for (let i = 0; i < frame.length; i++) if (frame[i] > 5) throw new Error(`frame code ${frame[i]} at row ${i}`);
    return frame;
  }
  const codes = new Uint8Array(frame.length);
  for (let i = 0; i < frame.length; i++) {
    const c = FRAME_CODE.get(frame[i]);
    if (c === undefined) throw new Error(`frame name ${JSON.stringify(frame[i])} at row ${i}`);
    codes[i] = c;
  }
  return codes;
}

export function predictionsBatch(c: PredictionColumns): RecordBatch {
  const n = c.scoreVirus.length;
  checkLength("score_others", c.scoreOthers.length, n);
  checkLength("prediction", c.isVirus.length, n);
  const label = c.isVirus;
  for (let i = 0; i < n; i++) if (label[i] > 1) throw new Error(`prediction code ${label[i]} at row ${i}`);
  return batchOf(predictionsSchema, n, [
    utf8Data(toUtf8(c.frameId)),
    utf8Data(toUtf8(c.windowId)),
    utf8Data(toUtf8(c.sequenceId)),
    int32Data(c.windowIndex),
    int64Data(c.windowStart),
    int64Data(c.windowEnd),
    labelData(FRAME_NAMES, frameCodes(c.frame)),
    int32Data(c.proteinLength),
    float32Data(c.scoreOthers),
    float32Data(c.scoreVirus),
    labelData(["others", "virus"], label),
  ]);
}

export interface WindowColumns {
  windowId: StringColumn;
  sequenceId: StringColumn;
  windowIndex: Int32Array;
  windowStart: Int64Column;
  windowEnd: Int64Column;
  nFrames: Int32Array;
  /** read only where nFrames > 0 */
  maxScoreOthers: Float32Array;
  maxScoreVirus: Float32Array;
  /** the window's call: 1 virus, 0 others, -1 no frame (null) */
  isVirus: Int8Array;
}

export function windowsBatch(c: WindowColumns): RecordBatch {
  const n = c.nFrames.length;
  checkLength("max_score_others", c.maxScoreOthers.length, n);
  checkLength("max_score_virus", c.maxScoreVirus.length, n);
  checkLength("is_virus", c.isVirus.length, n);
  for (let i = 0; i < n; i++)
    if ((c.isVirus[i] < 0) !== (c.nFrames[i] === 0)) throw new Error(`is_virus ${c.isVirus[i]} at row ${i} with ${c.nFrames[i]} frames`);
  const { bitmap, nullCount } = validity(n, (i) => c.nFrames[i] > 0);
  const isVirus = new Uint8Array((n + 7) >> 3);
  for (let i = 0; i < n; i++) if (c.isVirus[i] === 1) isVirus[i >> 3] |= 1 << (i & 7);
  return batchOf(windowsSchema, n, [
    utf8Data(toUtf8(c.windowId)),
    utf8Data(toUtf8(c.sequenceId)),
    int32Data(c.windowIndex),
    int64Data(c.windowStart),
    int64Data(c.windowEnd),
    int32Data(c.nFrames),
    float32Data(c.maxScoreOthers, bitmap, nullCount),
    float32Data(c.maxScoreVirus, bitmap, nullCount),
    makeData({ type: new Bool(), length: n, data: isVirus, nullBitmap: bitmap, nullCount }),
  ]);
}

export interface SequenceColumns {
  sequenceId: StringColumn;
  length: Int64Column;
  nWindows: Int32Array;
  nViralWindows: Int32Array;
  /** NaN where no window of the record kept a frame */
  maxScoreVirus: Float32Array;
  /** the record's call: 1 virus, 0 others, -1 no window kept a frame (null) */
  call: Int8Array;
}

export function sequencesBatch(c: SequenceColumns): RecordBatch {
  const n = c.nWindows.length;
  checkLength("n_viral_windows", c.nViralWindows.length, n);
  checkLength("max_score_virus", c.maxScoreVirus.length, n);
  checkLength("call", c.call.length, n);
  const { bitmap, nullCount } = validity(n, (i) => c.call[i] >= 0);
  const call = c.call;
  return batchOf(sequencesSchema, n, [
    utf8Data(toUtf8(c.sequenceId)),
    int64Data(c.length),
    int32Data(c.nWindows),
    int32Data(c.nViralWindows),
    float32Data(c.maxScoreVirus, bitmap, nullCount),
    labelData(["others", "virus"], call, bitmap, nullCount),
  ]);
}

export interface EmbeddingColumns {
  frameId: StringColumn;
  /** n x dnabertDim row-major; Uint16Array holds float16 bits */
  dnabert: Float32Array | Uint16Array;
  /** n x esmDim row-major */
  esm: Float32Array | Uint16Array;
  /** widths, needed only for zero rows (default 768 and 2560) */
  dnabertDim?: number;
  esmDim?: number;
}

/** FixedSizeList over `values` as they are (no copy). */
function matrixData(values: Float32Array | Uint16Array, rows: number, dim: number | undefined, name: string): Data<FixedSizeList> {
  const width = dim ?? (rows > 0 ? values.length / rows : 0);
  if (!Number.isInteger(width) || width <= 0 || values.length !== rows * width)
    throw new Error(`${name}: ${values.length} values do not make ${rows} rows${dim ? ` of ${dim}` : ""}`);
  const itemType = values instanceof Uint16Array ? new Float16() : new Float32();
  const child = makeData({ type: itemType, length: values.length, data: values } as never) as Data;
  const type = new FixedSizeList(width, new Field("item", itemType, false));
  return makeData({ type, length: rows, child } as never) as unknown as Data<FixedSizeList>;
}

export function embeddingsBatch(c: EmbeddingColumns): RecordBatch {
  const ids = toUtf8(c.frameId);
  const n = columnLength(c.frameId);
  if ((c.dnabert instanceof Uint16Array) !== (c.esm instanceof Uint16Array))
    throw new Error("embeddings: dnabert and esm must have the same dtype");
  const dnabert = matrixData(c.dnabert, n, c.dnabertDim ?? (n === 0 ? DNABERT_DIM : undefined), "dnabert");
  const esm = matrixData(c.esm, n, c.esmDim ?? (n === 0 ? ESM_DIM : undefined), "esm");
  const schema = embeddingsSchema(
    dnabert.type.listSize,
    esm.type.listSize,
    c.dnabert instanceof Uint16Array ? "float16" : "float32",
  );
  return batchOf(schema, n, [utf8Data(ids), dnabert, esm]);
}

/** float32 -> IEEE half bits, round to nearest even (for --embeddings-dtype float16). */
export function toFloat16Bits(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) {
    const x = bits[i];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // inf / quiet NaN
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00; // overflow -> inf
    } else if (e <= 0) {
      if (e < -10) {
        out[i] = sign; // underflow -> signed zero
        continue;
      }
      mant |= 0x800000; // subnormal half: shift in the implicit bit
      const shift = 14 - e;
      let h = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const halfway = 1 << (shift - 1);
      if (rem > halfway || (rem === halfway && h & 1)) h++;
      out[i] = sign | h;
    } else {
      let h = (e << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is correct
      out[i] = sign | h;
    }
  }
  return out;
}

/** A zero-row batch of `schema` (files keep their schema when a run has no rows). */
export function emptyBatch(schema: Schema): RecordBatch {
  const empty = (type: DataType): Data => {
    if (type instanceof FixedSizeList) {
      return makeData({ type, length: 0, child: empty(type.children[0].type) });
    }
    if (type instanceof Utf8) return makeData({ type, length: 0, valueOffsets: new Int32Array(1), data: new Uint8Array(0) });
    return makeData({ type, length: 0 } as never) as Data;
  };
  return batchOf(
    schema,
    0,
    schema.fields.map((f) => empty(f.type)),
  );
}
