/**
 * Atomic file writes: a reader (or a resumed run after a crash, kill -9 or power loss) sees
 * either the old file or the complete new one, never a torn one. The data goes to a temporary
 * name in the same directory, is fsynced, renamed over the target, and the directory is fsynced
 * so that the rename itself survives a power cut.
 */
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { UserError, isSystemError, oneLine, systemErrorMessage, type SystemError } from "../util/errors.ts";

const TEMP_MARK = ".tmp-";
let tempCounter = 0;

/** Temporary name beside `path`, unique within this process and across processes. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}${TEMP_MARK}${process.pid}-${++tempCounter}`);
}

/** Whether a directory entry is a leftover temporary file of an interrupted write. */
export function isTempName(name: string): boolean {
  return name.startsWith(".") && name.includes(TEMP_MARK);
}

/** Remove temporary files left in `dir` by interrupted writes (call before resuming); returns their names. */
export function removeStaleTemps(dir: string): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    if (!isTempName(name)) continue;
    try {
      unlinkSync(join(dir, name));
      removed.push(name);
    } catch {
      // Another process may have renamed or removed it meanwhile.
    }
  }
  return removed;
}

/** fsync a directory so that renames and creations in it are durable. */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, "r");
  } catch {
    return; // Some platforms cannot open directories; the rename is still atomic there.
  }
  try {
    fsyncSync(fd);
  } catch {
    // Filesystems without directory fsync (some network mounts) still rename atomically.
  } finally {
    closeSync(fd);
  }
}

/**
 * The one-line error for a failed file operation on `path` ("write", "read", "remove", ...):
 * "cannot write PATH: what went wrong (ERRNO, call): what to do" (util/errors.ts owns the words).
 */
export function fileError(action: string, path: string, err: unknown): UserError {
  if (err instanceof UserError) return err;
  if (isSystemError(err)) {
    // name `path` once, and the error's own file only where it is another one
    const named = err.path && err.path !== path ? ` (${err.dest ? `${err.path} -> ${err.dest}` : err.path})` : "";
    const bare = Object.assign(new Error(err.message), { code: err.code, syscall: err.syscall }) as SystemError;
    return new UserError(`cannot ${action} ${path}${named}: ${systemErrorMessage(bare)}`);
  }
  return new UserError(`cannot ${action} ${path}: ${oneLine(err)}`);
}

/** The one-line error for a failed write of `path`. */
export function writeError(path: string, err: unknown): UserError {
  return fileError("write", path, err);
}

/** Runs a file operation on `path`, turning a raw errno into fileError's one line. */
export function onFile<T>(action: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fileError(action, path, err);
  }
}

/** A file written incrementally and published atomically by commit(). */
export class AtomicFile {
  readonly tempPath: string;
  private fd: number | null;
  private written = 0;

  constructor(readonly path: string) {
    this.tempPath = tempPathFor(path);
    try {
      this.fd = openSync(this.tempPath, "wx", 0o644);
    } catch (err) {
      throw writeError(path, err);
    }
  }

  /** Bytes written so far. */
  get size(): number {
    return this.written;
  }

  write(data: Uint8Array | string): void {
    if (this.fd === null) throw new Error(`AtomicFile ${this.path}: write after commit/abort`);
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    let off = 0;
    try {
      while (off < bytes.byteLength) off += writeSync(this.fd, bytes, off, bytes.byteLength - off);
    } catch (err) {
      this.abort();
      throw writeError(this.path, err);
    }
    this.written += bytes.byteLength;
  }

  /** fsync, rename over the target, fsync the directory. */
  commit(): void {
    if (this.fd === null) throw new Error(`AtomicFile ${this.path}: commit after commit/abort`);
    const fd = this.fd;
    this.fd = null;
    try {
      fsyncSync(fd);
      closeSync(fd);
      renameSync(this.tempPath, this.path);
    } catch (err) {
      try {
        unlinkSync(this.tempPath);
      } catch {
        // already gone
      }
      throw writeError(this.path, err);
    }
    fsyncDir(dirname(this.path));
  }

  /** Drop the temporary file; the target is left as it was. Safe to call twice. */
  abort(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      closeSync(fd);
    } catch {
      // closing a broken descriptor: nothing left to release
    }
    try {
      unlinkSync(this.tempPath);
    } catch {
      // already gone
    }
  }
}

/** Write `data` to `path` atomically (temporary name, write, fsync, rename, fsync directory). */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const f = new AtomicFile(path);
  f.write(data);
  f.commit();
}
