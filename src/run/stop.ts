/**
 * Stopping a run on a signal. The first SIGINT, SIGTERM or SIGHUP asks the run to stop: the
 * engine is cancelled (queued native work is dropped), no further part is started, workers are
 * told to stop, no final output is written, finished parts stay for --resume. The handlers are
 * removed at once, so a second signal ends the process immediately (the default action).
 *
 * Exit codes: 130 (SIGINT), 143 (SIGTERM), 129 (SIGHUP), i.e. 128 + the signal number.
 */
import { UserError } from "../util/errors.ts";

export const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
export type StopSignalName = (typeof STOP_SIGNALS)[number];

export const SIGNAL_EXIT: Record<StopSignalName, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

/** The run was stopped by a signal; carries the exit code and says how to resume. */
export class RunStopped extends UserError {
  constructor(
    readonly signal: StopSignalName,
    dir: string,
  ) {
    super(`stopped by ${signal}: finished parts are kept in ${dir}; rerun the same command with --resume to continue`, SIGNAL_EXIT[signal]);
    this.name = "RunStopped";
  }
}

/** A stop request, shared by the compute loop, the worker manager and the assembly. */
export class StopControl {
  signal: StopSignalName | null = null;
  private readonly listeners: ((s: StopSignalName) => void)[] = [];

  get stopped(): boolean {
    return this.signal !== null;
  }

  /** Calls fn on the stop (at once when already stopped). */
  onStop(fn: (s: StopSignalName) => void): void {
    if (this.signal) fn(this.signal);
    else this.listeners.push(fn);
  }

  stop(s: StopSignalName): void {
    if (this.signal) return;
    this.signal = s;
    for (const fn of this.listeners.splice(0)) {
      try {
        fn(s);
      } catch {
        // a listener's failure must not keep the others from running
      }
    }
  }

  /** Throws RunStopped when a stop was requested. */
  check(dir: string): void {
    if (this.signal) throw new RunStopped(this.signal, dir);
  }
}

/**
 * Routes SIGINT/SIGTERM/SIGHUP into `control` until the returned function is called. After the
 * first signal every handler is removed, so the next one takes the default action (exit now).
 */
export function trapSignals(control: StopControl, onFirst?: (s: StopSignalName) => void): () => void {
  const handlers = new Map<StopSignalName, () => void>();
  const remove = () => {
    for (const [s, h] of handlers) process.removeListener(s, h);
    handlers.clear();
  };
  for (const s of STOP_SIGNALS) {
    const h = () => {
      remove();
      onFirst?.(s);
      control.stop(s);
    };
    handlers.set(s, h);
    process.on(s, h);
  }
  return remove;
}
