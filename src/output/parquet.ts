/**
 * Parquet output through parquet-wasm (arrow-rs compiled to WebAssembly).
 *
 * Batches are re-cut into row groups of `rowGroupSize` rows and streamed one at a time through
 * transformParquetStream: each row group is copied into WebAssembly memory as an Arrow IPC
 * stream, encoded, and its bytes are appended to the temporary file before the next one is
 * taken. Memory is bounded by about two row groups (the group being assembled in JavaScript and
 * the one being encoded), whatever the number of rows. The file is renamed into place at the end.
 *
 * Output is deterministic: the same rows give the same bytes (no timestamps; row groups do not
 * depend on how the input was batched).
 */
import { RecordBatch, Table, tableFromIPC, tableToIPC, type Schema } from "apache-arrow";
import * as pq from "parquet-wasm";
import { AtomicFile } from "./atomic.ts";
import { type BatchSource, type FileDigest } from "./arrowfile.ts";
import { rebatch } from "./rebatch.ts";
import { emptyBatch } from "./schema.ts";

export type ParquetCompression = "zstd" | "snappy" | "none";

export interface ParquetOptions {
  /** rows per row group (default 131072) */
  rowGroupSize?: number;
  compression?: ParquetCompression;
  /** dictionary encoding (default on; off saves time on columns of distinct values such as embeddings) */
  dictionary?: boolean;
  /**
   * File key-value metadata (see filemeta.ts). At most one key: parquet-wasm orders several keys
   * differently from one write to the next, which would make the bytes differ between runs.
   */
  metadata?: ReadonlyMap<string, string>;
}

export const DEFAULT_ROW_GROUP = 131072;

function writerProperties(o: ParquetOptions): pq.WriterProperties {
  const codec =
    o.compression === "snappy" ? pq.Compression.SNAPPY : o.compression === "none" ? pq.Compression.UNCOMPRESSED : pq.Compression.ZSTD;
  let builder = new pq.WriterPropertiesBuilder().setCompression(codec).setMaxRowGroupSize(o.rowGroupSize ?? DEFAULT_ROW_GROUP);
  if (o.dictionary === false) builder = builder.setDictionaryEnabled(false);
  if (o.metadata && o.metadata.size > 0) {
    if (o.metadata.size > 1) throw new Error(`Parquet metadata: one key only (got ${[...o.metadata.keys()].join(", ")}): several keys are not written in a stable order`);
    builder = builder.setKeyValueMetadata(new Map(o.metadata));
  }
  return builder.build();
}

/** An apache-arrow batch as parquet-wasm batches (copied into WebAssembly memory). */
function toWasm(batch: RecordBatch): pq.RecordBatch[] {
  const table = pq.Table.fromIPCStream(tableToIPC(new Table([batch]), "stream"));
  const out = table.recordBatches();
  table.free();
  return out;
}

/**
 * Write `source` (any batching) as a Parquet file at `path`, atomically.
 * Every batch must have `schema`'s columns and types; an empty source gives a zero-row file.
 */
export async function writeParquet(path: string, source: BatchSource, schema: Schema, options: ParquetOptions = {}): Promise<FileDigest> {
  const rowGroupSize = options.rowGroupSize ?? DEFAULT_ROW_GROUP;
  if (!Number.isInteger(rowGroupSize) || rowGroupSize <= 0) throw new Error(`rowGroupSize ${rowGroupSize}`);
  const groups = rebatch(source, schema, rowGroupSize)[Symbol.asyncIterator]();
  let rows = 0;
  let any = false;
  let queue: pq.RecordBatch[] = [];
  let sourceError: unknown = null;
  // Pull-based: the next row group is assembled only when the encoder asks for it.
  const input = new ReadableStream<pq.RecordBatch>(
    {
      async pull(controller) {
        try {
          await fill();
        } catch (err) {
          // The encoder reports a failed input only as a cast error: keep the real one.
          sourceError = err;
          controller.error(err);
          return;
        }
        if (queue.length === 0) controller.close();
        else controller.enqueue(queue.shift()!);
      },
    },
    { highWaterMark: 0 },
  );
  /** Queue the next row group's batches; leaves the queue empty at the end of the source. */
  async function fill(): Promise<void> {
    while (queue.length === 0) {
      const next = await groups.next();
      if (next.done) {
        // A file without rows still needs one (empty) batch to carry the schema.
        if (!any) queue = toWasm(emptyBatch(schema));
        any = true;
        return;
      }
      any = true;
      rows += next.value.numRows;
      queue = toWasm(next.value);
    }
  }

  const file = new AtomicFile(path);
  const hasher = new Bun.CryptoHasher("sha256");
  let bytes = 0;
  try {
    const output = await pq.transformParquetStream(input, writerProperties(options));
    const reader = output.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const chunk = value as Uint8Array;
      file.write(chunk);
      hasher.update(chunk);
      bytes += chunk.byteLength;
    }
  } catch (err) {
    file.abort();
    throw sourceError ?? err;
  }
  file.commit();
  return { path, bytes, sha256: hasher.digest("hex"), rows };
}

/** Read a Parquet file back into an apache-arrow Table (tests, small files). */
export function readParquet(bytes: Uint8Array): Table {
  return tableFromIPC(pq.readParquet(bytes).intoIPCStream());
}
