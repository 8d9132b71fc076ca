/**
 * A worker subprocess (`virnuc __worker`, started by workers.ts): loads the models on its
 * device and runs processParts over the parts the parent sends (their records, or a descriptor
 * from which it reads them itself: readPartRef), reporting each finished part.
 * Errors go to the parent typed (fatal / device / stopped). It never outlives the parent:
 * the kernel kills it when the parent dies (Linux parent-death signal), and the closed IPC
 * channel or a changed parent pid ends it too.
 */
import { dlopen, FFIType } from "bun:ffi";
import { processParts } from "./process.ts";
import { loadModels, type LoadedModels } from "./models.ts";
import type { PartInput } from "./chain.ts";
import { isPartRef, readPartRef, type PartWork } from "./shard-source.ts";
import { fromWire, type FromChild, type ToChild, type WorkerErrorKind, type WorkerInit } from "./workers.ts";
import { EngineError, OutOfMemoryError, CancelledError } from "../engine/engine.ts";
import { Status } from "../engine/ffi.ts";
import { oneLine } from "../util/errors.ts";
import { RunStopped, SIGNAL_EXIT, StopControl, trapSignals } from "./stop.ts";
import { existsSync, writeFileSync } from "node:fs";

/** How the parent should treat an error of this worker. */
export function errorKind(err: unknown): WorkerErrorKind {
  if (err instanceof RunStopped || err instanceof CancelledError) return "stopped";
  if (err instanceof OutOfMemoryError) return "device";
  if (err instanceof EngineError && err.status === Status.BACKEND) return "device";
  return "fatal";
}

/** Ends this process when its parent is gone (SIGKILL of the parent included). */
export function watchParent(parentPid: number): void {
  process.on("disconnect", () => process.exit(3));
  if (process.platform === "linux") {
    try {
      const libc = dlopen("libc.so.6", {
        prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
      });
      const PR_SET_PDEATHSIG = 1;
      libc.symbols.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0); // SIGKILL: nothing to clean up, parts are atomic
    } catch {
      // no prctl: the pipe and pid checks below still notice
    }
  }
  if (process.ppid !== parentPid) process.exit(3); // died before the watch was set
  setInterval(() => {
    if (process.ppid !== parentPid) process.exit(3);
  }, 1000).unref();
}

export async function workerMain(): Promise<void> {
  const send = (m: FromChild) => {
    try {
      process.send!(m);
    } catch {
      process.exit(3); // the parent is gone
    }
  };
  // Watch the parent from the start: it may die before it sends anything.
  const parentPid = process.ppid;
  watchParent(parentPid);
  const control = new StopControl();
  trapSignals(control);
  const queue: PartWork[] = [];
  let ended = false;
  let wake: (() => void) | null = null;
  let initMsg: WorkerInit | null = null;
  let gotInit: () => void = () => {};
  const initP = new Promise<void>((r) => (gotInit = r));
  control.onStop(() => {
    gotInit();
    wake?.();
  });
  process.on("message", (m: ToChild) => {
    if (m.type === "init") {
      if (m.init.parentPid !== parentPid) process.exit(3); // not started by this parent
      initMsg = m.init;
      gotInit();
    } else if (m.type === "part") {
      crashHook(m.part.index);
      queue.push(fromWire(m.part));
    } else if (m.type === "end") ended = true;
    else if (m.type === "stop") control.stop("SIGTERM");
    wake?.();
  });
  await initP;
  let models: LoadedModels | null = null;
  try {
    const init = initMsg as WorkerInit | null;
    if (!init || control.stopped) throw new RunStopped(control.signal ?? "SIGTERM", "the output directory");
    // Test hook: VIRNUC_TEST_HANG_WORKER=LABEL[,LABEL] blocks those slots' workers as a stuck device would.
    if (process.env.VIRNUC_WORKER && (process.env.VIRNUC_TEST_HANG_WORKER ?? "").split(",").includes(process.env.VIRNUC_WORKER)) Bun.sleepSync(3_600_000);
    models = loadModels(
      { ...init.resolved, files: { esm: [], dnabert: [], classifier: [] } },
      { backend: init.device, device: 0 },
      init.precision,
      { threads: init.threads, recheck: (init.plan.recheckMargin ?? 0) > 0 },
    );
    send({ type: "ready", description: models.description });
    const parts: AsyncIterable<PartInput> = {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          if (control.signal) throw new RunStopped(control.signal, init.plan.dir);
          if (queue.length) {
            // A descriptor is read here, while the device encodes the part before it.
            const w = queue.shift()!;
            yield isPartRef(w) ? await readPartRef(w) : w;
            continue;
          }
          if (ended) return;
          await new Promise<void>((r) => (wake = r));
          wake = null;
        }
      },
    };
    await processParts(
      init.plan,
      models,
      parts,
      {
        done: (entry, telemetry) => send({ type: "done", entry, telemetry }),
        warn: (message) => send({ type: "warning", message }),
      },
      control,
    );
    models.close();
    process.exit(0);
  } catch (err) {
    const kind = errorKind(err);
    send({ type: "error", kind, message: oneLine(err) });
    // Give the message time to leave before exiting.
    await Bun.sleep(50);
    process.exit(kind === "stopped" ? SIGNAL_EXIT[control.signal ?? "SIGTERM"] : 2);
  }
}

/**
 * Test hooks. VIRNUC_TEST_CRASH_ONCE=FILE:K kills this worker (SIGKILL) when it is handed part
 * K, once (FILE marks that it happened); VIRNUC_TEST_CRASH_ALWAYS=K every time;
 * VIRNUC_TEST_CRASH_WORKER=LABEL kills the worker of that slot whenever it is handed a part.
 */
function crashHook(part: number) {
  const worker = process.env.VIRNUC_TEST_CRASH_WORKER;
  if (worker && worker === process.env.VIRNUC_WORKER) process.kill(process.pid, "SIGKILL");
  const always = process.env.VIRNUC_TEST_CRASH_ALWAYS;
  if (always !== undefined && Number(always) === part) process.kill(process.pid, "SIGKILL");
  const spec = process.env.VIRNUC_TEST_CRASH_ONCE;
  if (!spec) return;
  const i = spec.lastIndexOf(":");
  const marker = spec.slice(0, i);
  if (Number(spec.slice(i + 1)) !== part || existsSync(marker)) return;
  writeFileSync(marker, "crashed\n");
  process.kill(process.pid, "SIGKILL");
}
