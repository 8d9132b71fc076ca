// Stop requests and signal handlers.
import { describe, expect, test } from "bun:test";
import { RunStopped, SIGNAL_EXIT, StopControl, trapSignals } from "./stop.ts";

describe("stop", () => {
  test("the first signal stops the run, then the handlers are gone (a second signal exits at once)", () => {
    const c = new StopControl();
    const seen: string[] = [];
    c.onStop((s) => seen.push(s));
    const before = process.listenerCount("SIGINT");
    const untrap = trapSignals(c);
    expect(process.listenerCount("SIGINT")).toBe(before + 1);
    expect(process.listenerCount("SIGTERM")).toBeGreaterThan(0);
    process.emit("SIGTERM" as never);
    expect(c.signal).toBe("SIGTERM");
    expect(seen).toEqual(["SIGTERM"]);
    expect(process.listenerCount("SIGINT")).toBe(before);
    untrap();
    c.stop("SIGINT"); // later requests change nothing
    expect(c.signal).toBe("SIGTERM");
    const late: string[] = [];
    c.onStop((s) => late.push(s));
    expect(late).toEqual(["SIGTERM"]);
  });

  test("RunStopped: exit 128 + signal number, says how to resume", () => {
    expect(SIGNAL_EXIT).toEqual({ SIGINT: 130, SIGTERM: 143, SIGHUP: 129 });
    const e = new RunStopped("SIGINT", "/out");
    expect(e.exitCode).toBe(130);
    expect(e.message).toBe("stopped by SIGINT: finished parts are kept in /out; rerun the same command with --resume to continue");
    const c = new StopControl();
    expect(() => c.check("/out")).not.toThrow();
    c.stop("SIGHUP");
    expect(() => c.check("/out")).toThrow(RunStopped);
  });
});
