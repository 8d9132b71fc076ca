/**
 * The parts of one `--shard i/N` read straight from the input: each part of the shard is read by
 * seeking to its first record through the input's record-offset index (src/fasta/index.ts), so
 * a shard reads about its share of a plain or BGZF file rather than all of it. Plain gzip cannot
 * be seeked: the caller reads it through (and is told so once).
 */
import { NotIndexable, indexDirs, indexFormat, loadOrBuildIndex, readRecordRange, type FileIndex } from "../fasta/index.ts";
import type { FastaRecord } from "../fasta/reader.ts";
import { hashRecords } from "../frames/prepare.ts";
import type { PartInput } from "./chain.ts";
import type { SourceOptions, SourceSummary } from "./source.ts";
import { UserError } from "../util/errors.ts";

/** The inputs' indexes (loaded, or built once and kept); null when an input is compressed. */
export async function shardIndexes(opts: SourceOptions, indexDir: string): Promise<FileIndex[] | null> {
  const dirs = indexDirs(indexDir);
  const warn = opts.onWarning ?? ((m: string) => console.error(`virnuc: warning: ${m}`));
  const indexes: FileIndex[] = [];
  for (const path of opts.inputs) {
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

/** Yields this shard's parts that are not done; fills `summary` from the indexes. */
export async function* indexedShardParts(opts: SourceOptions, summary: SourceSummary, indexes: FileIndex[]): AsyncGenerator<PartInput> {
  const shard = opts.shard!;
  const total = indexes.reduce((s, ix) => s + ix.records, 0);
  const parts = Math.ceil(total / opts.windowReads);
  for (let k = shard.index; k < parts; k += shard.count) {
    const first = k * opts.windowReads;
    const count = Math.min(opts.windowReads, total - first);
    const records: FastaRecord[] = [];
    // The reader may reuse its buffers: a part keeps its own copy of each sequence.
    for await (const rec of readRecordRange(opts.inputs, indexes, first, count, { onWarning: opts.onWarning, onRead: opts.onRead }))
      records.push({ ...rec, seq: rec.seq.slice() });
    if (records.length !== count || records[0].index !== first)
      throw new UserError(
        `part ${k}: the input's record index does not match the input (records ${first}..${first + count - 1}); delete the *.virnuc-idx files of the inputs and rerun`,
      );
    const done = opts.done.get(k);
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
