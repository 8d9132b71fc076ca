/**
 * A Worker that writes some of the final Parquet files while the main thread writes the text
 * files (prediction_results.txt and .csv, sequences.tsv): Parquet encoding is the largest single
 * cost of assembling a run, and it needs nothing from the text files. The thread reads the parts
 * itself (they are files on disk; nothing large crosses between threads) and calls the same
 * writeParquet with the same rows and options, so the bytes are those the main thread would write.
 *
 * Protocol: the main thread posts one ParquetJob; the thread answers with one ParquetReply
 * (each file's digest in job order, or the first error as its message) and is then terminated.
 */
import type { Schema } from "apache-arrow";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { availableParallelism } from "node:os";
import { isTempName } from "../output/atomic.ts";
import { writeParquet } from "../output/parquet.ts";
import type { FileDigest } from "../output/arrowfile.ts";
import { predictionsKeyedSchema, sequencesKeyedSchema, windowsKeyedSchema } from "../output/keys.ts";
import { UserError } from "../util/errors.ts";
import { readPartTable } from "./parttable.ts";
import { PartStore, type PartEntry } from "./store.ts";

export type ParquetTable = "predictions" | "windows" | "sequences";

export interface ParquetJob {
  dir: string;
  /** the parts in output order, each with the directory of the store that holds it */
  parts: { storeDir: string; entry: PartEntry }[];
  tables: ParquetTable[];
  /** the run's file metadata (a Map does not cross as such) */
  metadata?: [string, string][];
}

export type ParquetReply =
  | { ok: true; digests: FileDigest[] }
  | { ok: false; message: string; user: boolean; exitCode?: number };

export const PARQUET_SCHEMAS: Record<ParquetTable, Schema> = {
  predictions: predictionsKeyedSchema as Schema,
  windows: windowsKeyedSchema as Schema,
  sequences: sequencesKeyedSchema as Schema,
};

export async function runParquetJob(job: ParquetJob): Promise<FileDigest[]> {
  const stores = new Map<string, PartStore>();
  const storeOf = (d: string) => stores.get(d) ?? (stores.set(d, new PartStore(d)), stores.get(d)!);
  const metadata = job.metadata ? new Map(job.metadata) : undefined;
  const out: FileDigest[] = [];
  for (const table of job.tables) {
    async function* batches() {
      for (const p of job.parts) yield* readPartTable(storeOf(p.storeDir), p.entry, table);
    }
    out.push(await writeParquet(join(job.dir, `${table}.parquet`), batches(), PARQUET_SCHEMAS[table], { metadata }));
  }
  return out;
}

declare const self: Worker;
if (typeof Bun !== "undefined" && !Bun.isMainThread) {
  self.onmessage = async (ev: MessageEvent<ParquetJob>) => {
    let reply: ParquetReply;
    try {
      reply = { ok: true, digests: await runParquetJob(ev.data) };
    } catch (err) {
      const user = err instanceof UserError;
      reply = { ok: false, message: err instanceof Error ? err.message : String(err), user, exitCode: user ? err.exitCode : undefined };
    }
    self.postMessage(reply);
  };
}

function newThread(): Worker {
  return new Worker(new URL("./parquet-thread.ts", import.meta.url).href);
}

let warmThread: Worker | null = null;

/**
 * Start one thread ahead, while the parts are computed, so that its modules (parquet-wasm's
 * WebAssembly among them, ~0.3 s) are loaded when the final files are written. It holds no
 * work and does not keep the process alive; the next job takes it.
 */
export function prewarmParquetThread(): void {
  if (warmThread) return;
  try {
    const w = newThread();
    w.unref();
    // a thread that fails to load is not handed a job
    const drop = () => {
      if (warmThread === w) warmThread = null;
    };
    w.addEventListener("close", drop);
    w.addEventListener("error", () => {
      drop();
      w.terminate();
    });
    warmThread = w;
  } catch {
    warmThread = null;
  }
}

function takeWarmThread(): Worker | null {
  const w = warmThread;
  warmThread = null;
  return w;
}

/** The Parquet files of `job` being written: in a Worker, or here when none can be started. */
export interface ParquetRun {
  /** the digests, or the thread's error (a UserError stays one) */
  result: Promise<FileDigest[]>;
  /** the error, once the thread has failed (so that the main thread stops early) */
  failed(): unknown;
  /** end the thread now (a stop, or a failure elsewhere); resolves once it is gone */
  cancel(): Promise<void>;
}

export function startParquetJob(job: ParquetJob, opts: { thread?: boolean } = {}): ParquetRun {
  let worker: Worker | null = null;
  if (opts.thread !== false) {
    worker = takeWarmThread();
    if (worker) worker.ref();
    else
      try {
        worker = newThread();
      } catch {
        worker = null;
      }
  }
  let error: unknown = undefined;
  if (!worker) {
    const result = runParquetJob(job);
    result.catch((err) => (error = err));
    return { result, failed: () => error, cancel: async () => void (await result.catch(() => {})) };
  }
  const w = worker;
  const closed = new Promise<void>((resolve) => w.addEventListener("close", () => resolve(), { once: true }));
  let ended = false;
  const result = new Promise<FileDigest[]>((resolve, reject) => {
    const fail = (err: unknown) => {
      error = err;
      reject(err);
    };
    w.onmessage = (ev: MessageEvent<ParquetReply>) => {
      const r = ev.data;
      if (r.ok) resolve(r.digests);
      else fail(r.user ? new UserError(r.message, r.exitCode) : new Error(r.message));
      ended = true;
      w.terminate();
    };
    w.onerror = (ev: ErrorEvent) => {
      fail(new Error(`Parquet writer thread: ${ev.message}`));
      ended = true;
      w.terminate();
    };
    w.addEventListener("close", () => {
      if (!ended) fail(new Error("Parquet writer thread ended without an answer"));
    });
  });
  result.catch(() => {});
  w.postMessage(job);
  return {
    result,
    failed: () => error,
    cancel: async () => {
      if (!ended) {
        ended = true;
        w.terminate();
      }
      await closed;
      // A thread ended mid-file leaves its temporary file: remove it (the same process's name).
      for (const name of readdirSync(job.dir)) {
        if (isTempName(name) && job.tables.some((t) => name.startsWith(`.${t}.parquet`))) rmSync(join(job.dir, name), { force: true });
      }
    },
  };
}

/**
 * The Parquet files of `job` on `threads` threads: 0 writes them here, 1 on one thread in turn,
 * more on one thread per file (they are independent), combined: digests in the job's table
 * order; the first error ends the others. The default takes one thread per file where at
 * least four CPUs are available, else one (on two CPUs, three encoders beside the main thread
 * only contend: 7.7 s against 6.1 s for 1 M reads, docs/performance.md).
 */
export function startParquetFiles(job: ParquetJob, threads = defaultParquetThreads()): ParquetRun {
  if (threads <= 1 || job.tables.length <= 1) return startParquetJob(job, { thread: threads > 0 });
  const runs = job.tables.map((t) => startParquetJob({ ...job, tables: [t] }));
  const cancel = async () => void (await Promise.all(runs.map((r) => r.cancel())));
  const result = Promise.all(runs.map((r) => r.result)).then((ds) => ds.flat());
  result.catch(() => cancel());
  return {
    result,
    failed: () => runs.map((r) => r.failed()).find((e) => e !== undefined),
    cancel,
  };
}

export function defaultParquetThreads(): number {
  return availableParallelism() >= 4 ? 3 : 1;
}
