/**
 * Cuts the input record stream into parts of consecutive records (the unit of resume, of
 * dealing work to subprocesses, and of --shard), skipping parts that are already done.
 */
import { readFasta, type FastaRecord } from "../fasta/reader.ts";
import { hashRecords } from "./part.ts";
import type { PartInput } from "./loop.ts";
import type { PartEntry } from "./store.ts";
import { UserError } from "../util/errors.ts";

export interface SourceSummary {
  /** parts in the whole input (known once the input has been read to the end) */
  totalParts: number;
  totalRecords: number;
  skipped: number;
  /** sha256 of each input's bytes by path, when the reader hashes them while streaming (run.json) */
  inputSha256?: Map<string, string>;
}

export interface SourceOptions {
  inputs: string[];
  windowReads: number;
  shard?: { index: number; count: number };
  /** parts already finished (resume): validated entries by part index */
  done: Map<number, PartEntry>;
  onWarning?: (msg: string) => void;
}

/** True when part k belongs to this shard. */
export function inShard(k: number, shard?: { index: number; count: number }): boolean {
  return !shard || k % shard.count === shard.index;
}

/**
 * Yields the parts this process must compute. `summary` is filled in as the stream ends.
 * A finished part whose input hash no longer matches means the input changed: refuse.
 */
export async function* readParts(opts: SourceOptions, summary: SourceSummary): AsyncGenerator<PartInput> {
  let records: FastaRecord[] = [];
  let k = 0;
  let total = 0;
  const flush = function* (): Generator<PartInput> {
    if (records.length === 0) return;
    const part = { index: k, records };
    records = [];
    k++;
    if (!inShard(part.index, opts.shard)) return;
    const done = opts.done.get(part.index);
    if (done) {
      if (done.inputHash !== hashRecords(part.records) || done.firstRecord !== part.records[0].index)
        throw new UserError(
          `--resume refused: the input records of part ${part.index} (records ${part.records[0].index}..) differ from the earlier run's`,
        );
      summary.skipped++;
      return;
    }
    yield part;
  };
  for await (const rec of readFasta(opts.inputs, { onWarning: opts.onWarning })) {
    // The reader may reuse its buffers: a part keeps its own copy of each sequence.
    records.push({ ...rec, seq: rec.seq.slice() });
    total++;
    if (records.length >= opts.windowReads) yield* flush();
  }
  yield* flush();
  summary.totalParts = k;
  summary.totalRecords = total;
}
