/**
 * One run per output directory: DIR/.virnuc.lock, created exclusively, holds the owner's pid,
 * host and start time. A lock left by a process that no longer exists on this host is taken
 * over with a warning; any other lock refuses the run. The lock goes when the process exits
 * (normally, on an error or on a signal; after kill -9 the next run takes it over).
 */
import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { UserError } from "../util/errors.ts";
import { writeError } from "../output/atomic.ts";

export const LOCK_NAME = ".virnuc.lock";

export interface LockInfo {
  pid: number;
  host: string;
  started: string;
  command: string;
}

/** True when a process with this pid exists (on this host). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM"; // exists, owned by someone else
  }
}

export class DirLock {
  private held = false;
  private readonly onExit = () => this.release();

  private constructor(readonly path: string, readonly info: LockInfo) {}

  /** Takes the lock of `dir` (which must exist) or throws a UserError naming its holder. */
  static acquire(dir: string, command: string, warn: (msg: string) => void): DirLock {
    const path = join(dir, LOCK_NAME);
    const info: LockInfo = { pid: process.pid, host: hostname(), started: new Date().toISOString(), command };
    for (let attempt = 0; attempt < 2; attempt++) {
      let fd: number;
      try {
        fd = openSync(path, "wx", 0o644);
      } catch (err) {
        if ((err as { code?: string }).code !== "EEXIST") throw writeError(path, err);
        const other = readLock(path);
        const stale = other ? other.host === info.host && !pidAlive(other.pid) : ageSeconds(path) > 5;
        if (stale) {
          warn(
            other
              ? `taking over the lock of ${dir} left by process ${other.pid} (started ${other.started}), which no longer runs`
              : `taking over the unreadable lock ${path}`,
          );
          try {
            unlinkSync(path);
          } catch {
            // another run took it over first: the next attempt sees its lock
          }
          continue;
        }
        if (!other) throw new UserError(`${path} is being written by another run: wait for it or choose another -o`);
        throw new UserError(
          `${dir} is in use by virnuc (pid ${other.pid} on ${other.host}, ${other.command}, started ${other.started}): wait for it or choose another -o` +
            (other.host !== info.host ? ` (if that run is gone, remove ${path})` : ""),
        );
      }
      try {
        writeSync(fd, JSON.stringify(info) + "\n");
      } catch (err) {
        closeSync(fd);
        try {
          unlinkSync(path);
        } catch {
          // best effort
        }
        throw writeError(path, err);
      }
      closeSync(fd);
      const lock = new DirLock(path, info);
      lock.held = true;
      process.once("exit", lock.onExit);
      return lock;
    }
    throw new UserError(`cannot take the lock ${path}: another run keeps taking it; try again`);
  }

  /** Removes the lock if this process still holds it. Idempotent. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    process.removeListener("exit", this.onExit);
    const now = readLock(this.path);
    if (now && now.pid === this.info.pid && now.started === this.info.started) {
      try {
        unlinkSync(this.path);
      } catch {
        // already gone
      }
    }
  }
}

function readLock(path: string): LockInfo | null {
  try {
    const x = JSON.parse(readFileSync(path, "utf8")) as LockInfo;
    return typeof x.pid === "number" && typeof x.host === "string" ? x : null;
  } catch {
    return null;
  }
}

function ageSeconds(path: string): number {
  try {
    return (Date.now() - statSync(path).mtimeMs) / 1000;
  } catch {
    return 0;
  }
}
