/**
 * Several subprocesses, one per GPU (CUDA_VISIBLE_DEVICES) or CPU worker: the parent reads
 * the input, deals parts from one queue to whichever child has room (so all finish
 * together), restarts a child that dies (bounded) and hands its unfinished parts to others.
 * Children write their parts themselves; the parent assembles the outputs at the end.
 */
import type { Subprocess } from "bun";
import type { PartInput, PartTelemetry } from "./loop.ts";
import type { PartEntry } from "./store.ts";
import { UserError } from "../util/errors.ts";

export interface WorkerInit {
  dir: string;
  resolved: { esm: string; dnabert: string; tokenizer: string; classifier?: string };
  device: "cpu" | "cuda";
  precision: "fp32" | "fp16" | "fp8";
  threads?: number;
  chunkSize: number;
  classify: boolean;
  keepEmbeddings: boolean;
  embeddingsDtype: "float32" | "float16";
  tokenBudget?: number;
}

export type ToChild =
  | { type: "init"; init: WorkerInit }
  | { type: "part"; index: number; records: { id: string; seq: string; index: number; file: string; line: number; offset: number }[] }
  | { type: "end" };

export type FromChild =
  | { type: "ready"; description: string }
  | { type: "done"; entry: PartEntry; telemetry: PartTelemetry }
  | { type: "error"; message: string };

export interface WorkerSlot {
  label: string;
  env: Record<string, string>;
}

const MAX_OUTSTANDING = 2; // one computing, one being prepared
const MAX_RESTARTS = 3;

export async function runWorkers(
  slots: WorkerSlot[],
  init: WorkerInit,
  parts: AsyncIterable<PartInput>,
  onDone: (entry: PartEntry, t: PartTelemetry, worker: string) => void,
  log: (msg: string) => void,
): Promise<string[]> {
  const source = parts[Symbol.asyncIterator]();
  let sourceDone = false;
  const requeued: PartInput[] = [];
  let failure: Error | null = null;
  const descriptions: string[] = [];

  const nextPart = async (): Promise<PartInput | null> => {
    if (requeued.length) return requeued.shift()!;
    if (sourceDone) return null;
    const n = await source.next();
    if (n.done) {
      sourceDone = true;
      return null;
    }
    return n.value;
  };

  const cli = process.argv[1];
  const runSlot = async (slot: WorkerSlot) => {
    let restarts = 0;
    for (;;) {
      const outstanding = new Map<number, PartInput>();
      let ready = false;
      let ended = false;
      let childError = "";
      let resolveIdle: () => void = () => {};
      let idle = new Promise<void>((r) => (resolveIdle = r));
      const child: Subprocess = Bun.spawn([process.execPath, cli, "__worker"], {
        env: { ...process.env, ...slot.env },
        stdio: ["ignore", "inherit", "inherit"],
        serialization: "json",
        ipc(msg: FromChild) {
          if (msg.type === "ready") {
            ready = true;
            if (!descriptions.includes(msg.description)) descriptions.push(msg.description);
          } else if (msg.type === "done") {
            outstanding.delete(msg.entry.part);
            onDone(msg.entry, msg.telemetry, slot.label);
          } else if (msg.type === "error") {
            childError = msg.message;
          }
          resolveIdle();
        },
      });
      child.send({ type: "init", init } satisfies ToChild);
      const exited = child.exited.then(() => resolveIdle());
      void exited;
      // Deal parts while the child lives.
      while (!failure) {
        if (child.exitCode !== null || child.signalCode !== null) break;
        if (ready && outstanding.size < MAX_OUTSTANDING && !ended) {
          const p = await nextPart();
          if (p) {
            outstanding.set(p.index, p);
            child.send({
              type: "part",
              index: p.index,
              records: p.records.map((r) => ({
                id: r.id,
                seq: Buffer.from(r.seq.buffer, r.seq.byteOffset, r.seq.byteLength).toString("latin1"),
                index: r.index,
                file: r.file,
                line: r.line,
                offset: r.offset,
              })),
            } satisfies ToChild);
            continue;
          }
          ended = true;
          child.send({ type: "end" } satisfies ToChild);
        }
        idle = new Promise<void>((r) => (resolveIdle = r));
        if (child.exitCode !== null || child.signalCode !== null) break;
        await idle;
      }
      await child.exited;
      if (failure) return;
      if (outstanding.size === 0 && child.exitCode === 0) return;
      // The child died (or failed) with parts unfinished: hand them to the queue again.
      for (const p of outstanding.values()) requeued.push(p);
      const why = childError || `exit ${child.exitCode ?? child.signalCode}`;
      if (childError && !/out of memory|CUDA|device/i.test(childError)) {
        failure = new UserError(`worker ${slot.label}: ${childError}`);
        return;
      }
      restarts++;
      if (restarts > MAX_RESTARTS) {
        failure = new UserError(`worker ${slot.label} failed ${restarts} times (last: ${why}); finished parts are kept: rerun with --resume`);
        return;
      }
      log(`worker ${slot.label} stopped (${why}); restarting it (${restarts}/${MAX_RESTARTS}), its ${outstanding.size} unfinished part(s) are redone`);
    }
  };

  await Promise.all(slots.map(runSlot));
  if (failure) throw failure;
  if (requeued.length) throw new UserError(`${requeued.length} part(s) were left unfinished by failed workers: rerun with --resume`);
  return descriptions;
}
