/**
 * Parts read straight from the input through its record-offset index (src/fasta/index.ts):
 *
 * - `--shard i/N`: each part of the shard is read by seeking to its first record, so a shard
 *   reads about its share of a plain or BGZF file rather than all of it. Plain gzip cannot be
 *   seeked: the caller reads it through (and is told so once).
 * - worker subprocesses: the parent reads no records at all; it deals part descriptors (PartRef:
 *   where the part starts and how many records it holds) and each worker reads its parts itself
 *   (readPartRef). Streams, plain gzip and zstd inputs cannot be seeked: their records go over
 *   IPC as before.
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import {
  NotIndexable,
  indexDirs,
  indexFormat,
  loadOrBuildIndex,
  readFromSeek,
  readRecordRange,
  seekRecord,
  type FileIndex,
  type IndexFormat,
  type RangeSeek,
} from "../fasta/index.ts";
import { inputKind, inputName, type FastaRecord } from "../fasta/reader.ts";
import { hashRecords } from "../frames/prepare.ts";
import type { PartInput } from "./chain.ts";
import type { SourceOptions, SourceSummary } from "./source.ts";
import { UserError } from "../util/errors.ts";

/** A part that a worker reads itself: where it starts in the inputs and how many records it holds. */
export interface PartRef {
  index: number;
  /** record_index of the part's first record */
  first: number;
  count: number;
  seek: RangeSeek;
  /** every input as indexed: a worker refuses to read one that changed since */
  inputs: { path: string; format: IndexFormat; bytes: number; mtimeMs: number }[];
}

/** What the parent deals to workers: a part's records, or where a worker reads them. */
export type PartWork = PartInput | PartRef;

export function isPartRef(p: PartWork): p is PartRef {
  return !("records" in p);
}

/** The inputs' indexes (loaded, or built once and kept); null when an input is compressed. */
export async function shardIndexes(opts: SourceOptions, indexDir: string): Promise<FileIndex[] | null> {
  const dirs = indexDirs(indexDir);
  const warn = opts.onWarning ?? ((m: string) => console.error(`virnuc: warning: ${m}`));
  const indexes: FileIndex[] = [];
  for (const path of opts.inputs) {
    if (inputKind(path) !== "file") {
      warn(`${inputName(path)} is a stream and cannot be seeked: this shard reads the whole input`);
      return null;
    }
    if (!indexFormat(path)) {
      warn(`${path} is gzip-compressed and cannot be seeked: this shard reads the whole input (plain and bgzip files are read only in part)`);
      return null;
    }
    try {
      indexes.push((await loadOrBuildIndex(path, dirs, { onWarning: warn, onRead: opts.onRead })).index);
    } catch (err) {
      if (!(err instanceof NotIndexable)) throw err;
      warn(`${err.message}: this shard reads the whole input`);
      return null;
    }
  }
  return indexes;
}

/** True when the file starts with the zstd magic (the reader decompresses it; it cannot seek in it). */
function isZstd(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const b = new Uint8Array(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd;
  } finally {
    closeSync(fd);
  }
}

/**
 * The indexes that let workers read their own parts, or null (quietly) when an input is a stream,
 * plain gzip or zstd: then the parent reads and sends the records. Building an index is one pass
 * of the reader; its warnings are kept in the index and given here, built now or earlier (unless
 * readWork reads the inputs through for them: readsThrough).
 */
export async function workerIndexes(opts: SourceOptions, indexDir: string): Promise<FileIndex[] | null> {
  for (const path of opts.inputs) if (inputKind(path) !== "file" || isZstd(path) || !indexFormat(path)) return null;
  const dirs = indexDirs(indexDir);
  const indexes: FileIndex[] = [];
  for (const path of opts.inputs) {
    let r;
    try {
      r = await loadOrBuildIndex(path, dirs, { onWarning: () => {}, onRead: opts.onRead });
    } catch (err) {
      if (!(err instanceof NotIndexable)) throw err;
      return null;
    }
    indexes.push(r.index);
  }
  // The reader's warnings of each input, as a read-through gives them (kept in the index when
  // built). Several inputs of a whole run are read through together instead (readWork), so that
  // warnings count over all of them; a shard reads only its parts and keeps the per-input ones.
  const warn = opts.onWarning ?? ((m: string) => console.error(`virnuc: warning: ${m}`));
  if (!readsThrough(opts)) for (const ix of indexes) for (const w of ix.warnings ?? []) warn(w);
  return indexes;
}

/** Whether a worker run reads its inputs through for the reader's warnings (readWork): several inputs, no shard. */
export function readsThrough(opts: SourceOptions): boolean {
  return opts.inputs.length > 1 && !opts.shard;
}

/**
 * Yields the parts of this run (of its shard, if any) that are not done; fills `summary` from the
 * indexes. `refs`: not-done parts are yielded as descriptors and their records are not read here.
 * A done part is read and checked against the earlier run's input hash (resume validation).
 */
export async function* indexedParts(opts: SourceOptions, summary: SourceSummary, indexes: FileIndex[], refs = false): AsyncGenerator<PartWork> {
  const shard = opts.shard ?? { index: 0, count: 1 };
  const total = indexes.reduce((s, ix) => s + ix.records, 0);
  const parts = Math.ceil(total / opts.windowReads);
  const inputs = indexes.map((ix, i) => ({ path: opts.inputs[i], format: ix.format, bytes: ix.bytes, mtimeMs: ix.mtimeMs }));
  // Known before any record is read: the reads this run computes (progress, ETA).
  let expected = 0;
  for (let k = shard.index; k < parts; k += shard.count) if (!opts.done.has(k)) expected += Math.min(opts.windowReads, total - k * opts.windowReads);
  summary.expectedReads = expected;
  for (let k = shard.index; k < parts; k += shard.count) {
    const first = k * opts.windowReads;
    const count = Math.min(opts.windowReads, total - first);
    const done = opts.done.get(k);
    if (refs && !done) {
      yield { index: k, first, count, seek: seekRecord(indexes, first)!, inputs };
      continue;
    }
    const records: FastaRecord[] = [];
    // The reader may reuse its buffers: a part keeps its own copy of each sequence. For workers
    // (refs), the reader's warnings are those of the whole inputs (readWork), not of one part.
    const onWarning = refs ? () => {} : opts.onWarning;
    for await (const rec of readRecordRange(opts.inputs, indexes, first, count, { onWarning, onRead: opts.onRead }))
      records.push({ ...rec, seq: rec.seq.slice() });
    checkRange(k, first, count, records);
    if (done) {
      if (done.inputHash !== hashRecords(records) || done.firstRecord !== first)
        throw new UserError(`--resume refused: the input records of part ${k} (records ${first}..) differ from the earlier run's`);
      summary.skipped++;
      continue;
    }
    yield { index: k, records };
  }
  summary.totalParts = parts;
  summary.totalRecords = total;
}

/** Yields this shard's parts that are not done; fills `summary` from the indexes. */
export async function* indexedShardParts(opts: SourceOptions, summary: SourceSummary, indexes: FileIndex[]): AsyncGenerator<PartInput> {
  yield* indexedParts(opts, summary, indexes, false) as AsyncGenerator<PartInput>;
}

function checkRange(k: number, first: number, count: number, records: FastaRecord[]): void {
  if (records.length !== count || records[0]?.index !== first)
    throw new UserError(
      `part ${k}: the input's record index does not match the input (records ${first}..${first + count - 1}); delete the *.virnuc-idx files of the inputs and rerun`,
    );
}

/**
 * A worker reads its part: from the seek point, `count` records, which must be the ones the index
 * promised (first record_index, count) of inputs unchanged since they were indexed.
 */
export async function readPartRef(ref: PartRef, opts: { onRead?: (bytes: number) => void } = {}): Promise<PartInput> {
  for (const i of ref.inputs) {
    let st;
    try {
      st = statSync(i.path);
    } catch {
      throw new UserError(`part ${ref.index}: cannot read input ${i.path} any more: keep the inputs in place until the run ends`);
    }
    if (st.size !== i.bytes || st.mtimeMs !== i.mtimeMs)
      throw new UserError(`part ${ref.index}: input ${i.path} changed during the run (size or modification time): rerun on the unchanged input`);
  }
  const paths = ref.inputs.map((i) => i.path);
  const records: FastaRecord[] = [];
  // Reader warnings are the parent's (a whole pass of each input warns once); a part alone would repeat them.
  for await (const rec of readFromSeek(paths, ref.inputs.map((i) => i.format), ref.seek, ref.count, { onWarning: () => {}, onRead: opts.onRead }))
    records.push({ ...rec, seq: rec.seq.slice() });
  checkRange(ref.index, ref.first, ref.count, records);
  return { index: ref.index, records };
}
