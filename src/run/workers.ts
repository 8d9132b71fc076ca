/**
 * Worker subprocesses, one per GPU (CUDA_VISIBLE_DEVICES) or CPU worker: process management and
 * IPC only (each child runs worker.ts, which calls processParts like a single-process run).
 * The parent deals parts from one queue to whichever child has room, so all finish together.
 * When every input can be seeked (plain or BGZF files, through their record index) a part is
 * dealt as a descriptor and the child reads its records itself; otherwise (streams, plain gzip,
 * zstd) the parent reads the input and sends each part's records.
 *
 * Failures end cleanly: a child's fatal error (typed, never guessed from its text) stops the
 * dealing, every child is told to stop, given GRACE_MS, then killed; the run fails with that
 * child's one-line error. A child that dies (killed from outside, out of memory) is restarted, at
 * most MAX_RESTARTS times per slot, and the parts it held are redone by whichever child is free.
 * A stop request (signal) ends every child the same way.
 */
import type { Subprocess } from "bun";
import type { PartInput } from "./chain.ts";
import type { PartPlan, Precision, WorkerSlot } from "./plan.ts";
import type { PartTelemetry } from "./process.ts";
import type { PartEntry } from "./store.ts";
import { isPartRef, type PartRef, type PartWork } from "./shard-source.ts";
import { appendFileSync } from "node:fs";
import { UserError } from "../util/errors.ts";
import { STOP_SIGNALS, SIGNAL_EXIT, RunStopped, type StopControl } from "./stop.ts";

export interface WorkerInit {
  plan: PartPlan;
  resolved: { esm: string; dnabert: string; tokenizer: string; classifier?: string };
  device: "cpu" | "cuda";
  precision: Precision;
  threads?: number;
  /** the parent's pid: a child whose parent is gone exits */
  parentPid: number;
}

/**
 * A part on the wire: its records, sequences as latin1 strings (bytes 0-255 map one to one), or
 * a descriptor the child reads the records from.
 */
export type WirePart =
  | { index: number; records: { id: string; seq: string; index: number; file: string; line: number; offset: number }[] }
  | { index: number; ref: PartRef };

export type ToChild =
  | { type: "init"; init: WorkerInit }
  | { type: "part"; part: WirePart }
  /** no more parts: finish those held, then exit 0 */
  | { type: "end" }
  /** stop now: drop the work in hand and exit */
  | { type: "stop" };

/**
 * fatal: the run cannot succeed (bad model, NaN/Inf, disk full, bad input): stop everything.
 * device: the device or engine failed (out of memory, CUDA error): restart the child.
 * stopped: the child was asked to stop (signal or a stop message).
 */
export type WorkerErrorKind = "fatal" | "device" | "stopped";

export type FromChild =
  | { type: "ready"; description: string }
  | { type: "done"; entry: PartEntry; telemetry: PartTelemetry }
  | { type: "warning"; message: string }
  | { type: "error"; kind: WorkerErrorKind; message: string };

export function toWire(p: PartWork): WirePart {
  if (isPartRef(p)) return { index: p.index, ref: p };
  return {
    index: p.index,
    records: p.records.map((r) => ({
      id: r.id,
      seq: Buffer.from(r.seq.buffer, r.seq.byteOffset, r.seq.byteLength).toString("latin1"),
      index: r.index,
      file: r.file,
      line: r.line,
      offset: r.offset,
    })),
  };
}

export function fromWire(p: WirePart): PartWork {
  if ("ref" in p) return p.ref;
  return { index: p.index, records: p.records.map((r) => ({ ...r, seq: new Uint8Array(Buffer.from(r.seq, "latin1")) })) };
}

export interface WorkerEvents {
  done(entry: PartEntry, t: PartTelemetry, worker: string): void;
  warn(msg: string): void;
}

export interface WorkerOptions {
  maxRestarts?: number;
  /** how long stopped children get before SIGKILL */
  graceMs?: number;
  /** how often children may die holding one part before the run gives up */
  maxPartLosses?: number;
}

/** Test seam: VIRNUC_TEST_WIRE_LOG=FILE gets one line per part dealt: index, "ref" or "records", JSON size. */
const WIRE_LOG = process.env.VIRNUC_TEST_WIRE_LOG;

const MAX_OUTSTANDING = 2; // one computing, one being prepared

/** Sends unless the child's pipe is gone (it is exiting; its exit is handled). */
function send(child: Subprocess, msg: ToChild): boolean {
  try {
    child.send(msg);
    return true;
  } catch {
    return false;
  }
}

/** Exit codes and signals that mean "asked to stop", not "crashed". */
function stoppedExit(child: Subprocess): boolean {
  const codes: number[] = Object.values(SIGNAL_EXIT);
  return (child.exitCode !== null && codes.includes(child.exitCode)) || (STOP_SIGNALS as readonly string[]).includes(String(child.signalCode ?? ""));
}

export async function runWorkers(
  slots: WorkerSlot[],
  init: WorkerInit,
  parts: AsyncIterable<PartWork>,
  events: WorkerEvents,
  control: StopControl,
  opts: WorkerOptions = {},
): Promise<string[]> {
  const maxRestarts = opts.maxRestarts ?? 3;
  const graceMs = opts.graceMs ?? 3000;
  const maxPartLosses = opts.maxPartLosses ?? 3;
  const source = parts[Symbol.asyncIterator]();
  let sourceDone = false;
  const requeued: PartWork[] = [];
  const losses = new Map<number, number>();
  let failure: Error | null = null;
  const descriptions: string[] = [];
  const live = new Set<Subprocess>();
  const wakers = new Set<() => void>();
  let killTimer: ReturnType<typeof setTimeout> | null = null;

  const halted = () => failure !== null || control.stopped;
  /** Stop dealing, tell every child to stop, kill what is left after the grace period. */
  const haltAll = () => {
    for (const c of live) {
      send(c, { type: "stop" });
      c.kill("SIGTERM");
    }
    killTimer ??= setTimeout(() => {
      for (const c of live) c.kill("SIGKILL");
    }, graceMs);
    for (const w of wakers) w();
  };
  const fail = (err: Error) => {
    if (failure || control.stopped) return;
    failure = err;
    haltAll();
  };
  control.onStop(() => haltAll());

  const nextPart = async (): Promise<PartWork | null> => {
    if (requeued.length) return requeued.shift()!;
    if (sourceDone) return null;
    let n: IteratorResult<PartWork>;
    try {
      n = await source.next();
    } catch (err) {
      fail(err as Error);
      return null;
    }
    if (n.done) {
      sourceDone = true;
      for (const w of wakers) w(); // a child still loading may no longer be needed
      return null;
    }
    return n.value;
  };

  const cli = process.argv[1];
  const runSlot = async (slot: WorkerSlot) => {
    let restarts = 0;
    while (!halted()) {
      const outstanding = new Map<number, PartWork>();
      let ready = false;
      let ended = false;
      let stoppedBySelf = false;
      let deviceError = "";
      let wake: () => void = () => {};
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
            events.done(msg.entry, msg.telemetry, slot.label);
          } else if (msg.type === "warning") {
            events.warn(msg.message);
          } else if (msg.type === "error") {
            if (msg.kind === "fatal") fail(new UserError(`worker ${slot.label}: ${msg.message}`));
            else if (msg.kind === "device") deviceError = msg.message;
            else stoppedBySelf = true;
          }
          wake();
        },
      });
      live.add(child);
      const wakeAll = () => wake();
      wakers.add(wakeAll);
      void child.exited.then(() => wake());
      if (halted()) haltAll();
      else send(child, { type: "init", init });
      const alive = () => child.exitCode === null && child.signalCode === null;
      // Deal parts while the child lives and the run goes on.
      while (!halted() && alive()) {
        if (ready && outstanding.size < MAX_OUTSTANDING && !ended) {
          const p = await nextPart();
          if (halted() || !alive()) {
            if (p) requeued.unshift(p);
            break;
          }
          if (p) {
            outstanding.set(p.index, p);
            const wire = toWire(p);
            if (WIRE_LOG) appendFileSync(WIRE_LOG, `${p.index}\t${"ref" in wire ? "ref" : "records"}\t${JSON.stringify(wire).length}\n`);
            send(child, { type: "part", part: wire });
            continue;
          }
          ended = true;
          send(child, { type: "end" });
          continue;
        }
        if (!ready && sourceDone && requeued.length === 0) {
          // Every part is dealt and finished or held by others: a child still loading is not
          // needed (and may never finish loading): stop it rather than wait for it.
          send(child, { type: "stop" });
          child.kill("SIGTERM");
          const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
          await child.exited;
          clearTimeout(t);
          live.delete(child);
          wakers.delete(wakeAll);
          return;
        }
        const idle = new Promise<void>((r) => (wake = r));
        if (halted() || !alive()) break;
        await idle;
      }
      await child.exited;
      live.delete(child);
      wakers.delete(wakeAll);
      if (halted()) return;
      if (outstanding.size === 0 && child.exitCode === 0) return;
      // The child died (or failed) with parts unfinished: hand them to the queue again.
      // Which of the parts it held killed it is unknown: each counts the loss.
      const held = [...outstanding.keys()].join(", ");
      for (const p of outstanding.values()) {
        requeued.push(p);
        const n = (losses.get(p.index) ?? 0) + 1;
        losses.set(p.index, n);
        if (n >= maxPartLosses) {
          fail(
            new UserError(
              `workers died ${n} times holding part ${p.index} (last: ${slot.label}, holding parts ${held}); finished parts are kept: rerun with --resume`,
            ),
          );
          return;
        }
      }
      const why = deviceError || (child.signalCode ? `killed by ${child.signalCode}` : `exit ${child.exitCode}`);
      if (sourceDone && requeued.length === 0) {
        events.warn(`worker ${slot.label} stopped (${why}); every part is dealt, so it is not restarted`);
        return;
      }
      if (stoppedBySelf || stoppedExit(child)) {
        // Ctrl-C reaches the children too; the parent's own handler may run a moment later.
        await Bun.sleep(300);
        if (halted()) return;
      }
      restarts++;
      if (restarts > maxRestarts) {
        fail(new UserError(`worker ${slot.label} failed ${restarts} times (last: ${why}); finished parts are kept: rerun with --resume`));
        return;
      }
      events.warn(`worker ${slot.label} stopped (${why}); restarting it (${restarts}/${maxRestarts}), its ${outstanding.size} unfinished part(s) are redone`);
    }
  };

  try {
    await Promise.all(slots.map(runSlot));
  } finally {
    if (killTimer) clearTimeout(killTimer);
    for (const c of live) c.kill("SIGKILL");
  }
  if (control.signal) throw new RunStopped(control.signal, init.plan.dir);
  if (failure) throw failure;
  if (requeued.length) throw new UserError(`${requeued.length} part(s) were left unfinished by failed workers: rerun with --resume`);
  return descriptions;
}
