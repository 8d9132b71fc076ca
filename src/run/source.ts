/**
 * Cuts the input record stream into parts of consecutive records (the unit of resume, of
 * dealing work to subprocesses, and of --shard), skipping parts that are already done.
 */
import { statSync } from "node:fs";
import { resolve } from "node:path";
import { checkInput, inputKind, newReadSummary, readFasta, STDIN, type FastaRecord, type ReadSummary, type StreamHead } from "../fasta/reader.ts";
import { hashRecords } from "../frames/prepare.ts";
import type { PartInput } from "./chain.ts";
import type { PartEntry } from "./store.ts";
import { UserError } from "../util/errors.ts";
import { indexedParts, indexedShardParts, readsThrough, shardIndexes, workerIndexes, type PartWork } from "./shard-source.ts";

export interface SourceSummary {
  /** parts in the whole input (known once the input has been read to the end) */
  totalParts: number;
  totalRecords: number;
  skipped: number;
  /** what the reader learnt: per input sha256, bytes, format; record and warning counts */
  read?: ReadSummary;
  /** the reads this run computes, when known before reading them (from the inputs' record index) */
  expectedReads?: number;
  /** sha256 of inputs by absolute path, from their record index when the records were not read here */
  inputSha256?: Map<string, string>;
}

/**
 * Checks the inputs before any model loads: each exists, is not a directory nor bzip2/xz; `-` (standard
 * input) at most once. Pipes, FIFOs and process substitution are streams: fine (their content is
 * checked by sniffInputs, which reads their first bytes and keeps them).
 */
export function checkInputs(inputs: string[]): void {
  for (const f of inputs) checkInput(f);
  if (inputs.filter((f) => f === STDIN).length > 1)
    throw new UserError("standard input (-) is given more than once: it can be read only once");
}

/**
 * The inputs as the run state records them (what --resume compares): absolute path and size of
 * a regular file; a stream (`-`, a pipe) has no size (-1): its parts are matched by their
 * records' hashes when the same stream is given again.
 */
export function describeInputs(inputs: string[]): { path: string; bytes: number }[] {
  return inputs.map((p) => {
    const kind = inputKind(p);
    if (kind === "stdin") return { path: STDIN, bytes: -1 };
    return { path: resolve(p), bytes: kind === "file" ? statSync(p).size : -1 };
  });
}

export interface SourceOptions {
  inputs: string[];
  windowReads: number;
  shard?: { index: number; count: number };
  /** parts already finished (resume): validated entries by part index */
  done: Map<number, PartEntry>;
  onWarning?: (msg: string) => void;
  /** a shard seeks to its parts through the inputs' record index, kept here when not beside the input */
  indexDir?: string;
  /** told the size of every read from a plain input (I/O accounting) */
  onRead?: (bytes: number) => void;
  /** stream inputs whose first bytes were read to check them (sniffInputs): the reader starts with those */
  heads?: Map<string, StreamHead>;
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
  const indexes = opts.shard && opts.indexDir ? await shardIndexes(opts, opts.indexDir) : null;
  if (indexes) return yield* indexedShardParts(opts, summary, indexes);
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
  summary.read = newReadSummary();
  for await (const rec of readFasta(opts.inputs, { onWarning: opts.onWarning, onRead: opts.onRead, summary: summary.read, heads: opts.heads })) {
    // The reader may reuse its buffers: a part keeps its own copy of each sequence.
    records.push({ ...rec, seq: rec.seq.slice() });
    total++;
    if (records.length >= opts.windowReads) yield* flush();
  }
  yield* flush();
  summary.totalParts = k;
  summary.totalRecords = total;
}

/**
 * The parts for worker subprocesses: when every input is a plain or BGZF file, descriptors that
 * the workers read themselves (the records are not read here, nor sent over IPC); otherwise
 * (streams, plain gzip, zstd) the records, as readParts yields them.
 */
export async function* readWork(opts: SourceOptions, summary: SourceSummary): AsyncGenerator<PartWork> {
  const indexes = opts.indexDir ? await workerIndexes(opts, opts.indexDir) : null;
  if (indexes) {
    summary.inputSha256 = new Map(indexes.flatMap((ix, i): [string, string][] => (ix.sha256 ? [[resolve(opts.inputs[i]), ix.sha256]] : [])));
    // A warning may concern several inputs together (an id repeated in another input, the first
    // protein-like record of all, counts over all): with more than one input (and no shard, which
    // reads only its parts), the reader reads them through here, beside the workers, and warns
    // as a single-process run does.
    const pass = readsThrough(opts) ? readThrough(opts) : null;
    try {
      yield* indexedParts(opts, summary, indexes, true);
      await pass?.done;
    } finally {
      pass?.stop();
    }
    return;
  }
  yield* readParts(opts, summary);
}

/**
 * Reads the inputs through for the reader's warnings only (records are dropped as they come),
 * giving the event loop a turn every few thousand records so that the workers' messages flow.
 */
function readThrough(opts: SourceOptions): { done: Promise<void>; stop(): void } {
  let stopped = false;
  const done = (async () => {
    let n = 0;
    for await (const _ of readFasta(opts.inputs, { onWarning: opts.onWarning, summary: newReadSummary() })) {
      if (stopped) return;
      if (++n % 4096 === 0) await new Promise((r) => setImmediate(r));
    }
  })();
  done.catch(() => {}); // awaited when the parts are all dealt; a run stopped earlier does not wait for it
  return {
    done,
    stop: () => {
      stopped = true;
    },
  };
}
