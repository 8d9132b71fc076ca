/**
 * Arrow IPC files: the pipeline's per-window parts and embeddings.arrow.
 *
 * writeIpcFile streams batches to disk as they come (embeddings.arrow can be far larger than
 * memory), publishes the file atomically and returns its size and sha256 for the manifest.
 * ipcFileBytes is the in-memory form for small parts.
 */
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { type DataType, RecordBatch, RecordBatchFileWriter, Schema, Table, tableFromIPC } from "apache-arrow";
import { UserError, oneLine } from "../util/errors.ts";
import { AtomicFile } from "./atomic.ts";
import { emptyBatch } from "./schema.ts";

export type BatchSource = Table | RecordBatch | Iterable<RecordBatch> | AsyncIterable<RecordBatch>;

export interface FileDigest {
  path: string;
  bytes: number;
  sha256: string;
  rows: number;
}

export function sha256Hex(data: Uint8Array | string): string {
  return new Bun.CryptoHasher("sha256").update(data).digest("hex");
}

/** sha256 of a file, read in 4 MiB pieces. */
export function sha256File(path: string): string {
  const hasher = new Bun.CryptoHasher("sha256");
  const fd = openSync(path, "r");
  try {
    const buf = new Uint8Array(4 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hasher.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hasher.digest("hex");
}

/** Iterate the batches of any source. */
export async function* batchesOf(source: BatchSource): AsyncGenerator<RecordBatch> {
  if (source instanceof Table) yield* source.batches;
  else if (source instanceof RecordBatch) yield source;
  else yield* source as AsyncIterable<RecordBatch>;
}

/**
 * The batch with `schema` as its schema: same columns and types are required; field nullability
 * and metadata come from `schema`, so that every batch of a file shares one schema.
 */
/** Same Arrow type (util.compareTypes does not compare types read back from IPC). */
function sameType(a: DataType, b: DataType): boolean {
  return a.typeId === b.typeId && String(a) === String(b);
}

export function conform(batch: RecordBatch, schema: Schema): RecordBatch {
  if (batch.schema === schema) return batch;
  const got = batch.schema.fields;
  const want = schema.fields;
  const same =
    got.length === want.length && want.every((f, i) => f.name === got[i].name && sameType(f.type, got[i].type));
  if (!same) {
    const show = (s: Schema) => s.fields.map((f) => `${f.name}: ${f.type}`).join(", ");
    throw new Error(`batch schema (${show(batch.schema)}) does not match (${show(schema)})`);
  }
  return new RecordBatch(schema, batch.data);
}

/** An Arrow IPC file in memory (for small parts). */
export function ipcFileBytes(source: Table | RecordBatch | readonly RecordBatch[], schema?: Schema): Uint8Array {
  const batches = source instanceof Table ? source.batches : source instanceof RecordBatch ? [source] : [...source];
  const s = schema ?? batches[0]?.schema;
  if (!s) throw new Error("ipcFileBytes: no batches and no schema");
  const list = batches.length ? batches.map((b) => conform(b, s)) : [emptyBatch(s)];
  const writer = new RecordBatchFileWriter();
  for (const b of list) writer.write(b);
  writer.finish();
  return writer.toUint8Array(true);
}

export interface IpcFileOptions {
  /** schema-level key-value metadata of the file (see filemeta.ts); replaces the schema's own */
  metadata?: ReadonlyMap<string, string>;
}

/**
 * Stream batches into an Arrow IPC file at `path`, atomically. `schema` is required when the
 * source may be empty (the file then holds the schema and no rows).
 */
export async function writeIpcFile(path: string, source: BatchSource, schema?: Schema, options: IpcFileOptions = {}): Promise<FileDigest> {
  const withMeta = (s: Schema) => (options.metadata ? new Schema(s.fields, new Map(options.metadata), s.dictionaries) : s);
  const file = new AtomicFile(path);
  const hasher = new Bun.CryptoHasher("sha256");
  const writer = new RecordBatchFileWriter();
  let bytes = 0;
  let rows = 0;
  // The writer hands out its bytes as an async stream; drain it to disk while batches go in.
  const drain = (async () => {
    for await (const chunk of writer) {
      file.write(chunk);
      hasher.update(chunk);
      bytes += chunk.byteLength;
    }
  })();
  try {
    let s = schema ? withMeta(schema) : null;
    let wrote = false;
    for await (const batch of batchesOf(source)) {
      if (s === null) s = withMeta(batch.schema);
      writer.write(conform(batch, s));
      wrote = true;
      rows += batch.numRows;
      // Let the drain loop take this batch's bytes before the next one is produced.
      await new Promise((r) => setImmediate(r));
    }
    if (s === null) throw new Error(`writeIpcFile ${path}: no batches and no schema`);
    // No batches: a zero-row batch still carries the schema into the file.
    if (!wrote) writer.write(emptyBatch(s));
    writer.finish();
    writer.close();
    await drain;
  } catch (err) {
    writer.abort(err);
    await drain.catch(() => {});
    file.abort();
    throw err;
  }
  file.commit();
  return { path, bytes, sha256: hasher.digest("hex"), rows };
}

/** Read an Arrow IPC file (or stream) from memory. */
export function readIpc(bytes: Uint8Array): Table {
  return tableFromIPC(bytes);
}

/** Read a whole Arrow IPC file. */
export function readIpcFile(path: string): Table {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new UserError(`cannot read ${path}: ${oneLine(err)}`);
  }
  try {
    return tableFromIPC(bytes);
  } catch (err) {
    throw new UserError(`${path} is not a readable Arrow IPC file (${oneLine(err)}): delete it and rerun`);
  }
}
