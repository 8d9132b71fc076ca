// One run per output directory.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { DirLock, LOCK_NAME, pidAlive } from "./lock.ts";

const root = mkdtempSync(join(tmpdir(), "virnuc-lock-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const dir = () => {
  const d = join(root, String(n++));
  mkdirSync(d);
  return d;
};

/** A pid that has just exited (it may be reused much later, not within a test). */
function deadPid(): number {
  const p = Bun.spawnSync(["true"]);
  return p.pid;
}

describe("DirLock", () => {
  test("holds pid, host and start time; released once, only by its owner", () => {
    const d = dir();
    const lock = DirLock.acquire(d, "predict", () => {});
    const info = JSON.parse(readFileSync(join(d, LOCK_NAME), "utf8"));
    expect(info).toMatchObject({ pid: process.pid, host: hostname(), command: "predict" });
    expect(Date.parse(info.started)).toBeGreaterThan(0);
    lock.release();
    expect(existsSync(join(d, LOCK_NAME))).toBe(false);
    lock.release();
  });

  test("a live holder refuses a second run, naming it", () => {
    const d = dir();
    const lock = DirLock.acquire(d, "predict", () => {});
    expect(() => DirLock.acquire(d, "merge", () => {})).toThrow(new RegExp(`is in use by virnuc \\(pid ${process.pid} on ${hostname()}, predict`));
    lock.release();
  });

  test("a stale lock of a dead process on this host is taken over with a warning", () => {
    const d = dir();
    const pid = deadPid();
    expect(pidAlive(pid)).toBe(false);
    writeFileSync(join(d, LOCK_NAME), JSON.stringify({ pid, host: hostname(), started: "2026-01-01T00:00:00Z", command: "predict" }));
    const warnings: string[] = [];
    const lock = DirLock.acquire(d, "predict", (m) => warnings.push(m));
    expect(warnings).toEqual([`taking over the lock of ${d} left by process ${pid} (started 2026-01-01T00:00:00Z), which no longer runs`]);
    expect(JSON.parse(readFileSync(join(d, LOCK_NAME), "utf8")).pid).toBe(process.pid);
    lock.release();
  });

  test("a lock from another host is never taken over", () => {
    const d = dir();
    writeFileSync(join(d, LOCK_NAME), JSON.stringify({ pid: deadPid(), host: "elsewhere", started: "x", command: "predict" }));
    expect(() => DirLock.acquire(d, "predict", () => {})).toThrow(/on elsewhere.*if that run is gone, remove .*\.virnuc\.lock/);
  });

  test("an unreadable lock: refused while fresh (being written), taken over once old", () => {
    const d = dir();
    const path = join(d, LOCK_NAME);
    writeFileSync(path, "");
    expect(() => DirLock.acquire(d, "predict", () => {})).toThrow(/being written by another run/);
    const old = new Date(Date.now() - 60_000);
    utimesSync(path, old, old);
    const warnings: string[] = [];
    const lock = DirLock.acquire(d, "predict", (m) => warnings.push(m));
    expect(warnings).toEqual([`taking over the unreadable lock ${path}`]);
    lock.release();
  });
});
