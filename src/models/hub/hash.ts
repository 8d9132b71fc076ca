/**
 * File hashes used to verify weights: sha256 (what the Hub publishes for LFS files) and the git
 * blob SHA-1 (`sha1("blob <size>\0" + bytes)`, the id git and the Hub give every other file).
 */
import { createHash, type Hash } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

const READ_BYTES = 8 << 20;

/** Feed `bytes` [0, limit) of a file into `hash`; `onBytes` sees the running count (for progress bars). */
export function hashFileInto(hash: Hash, path: string, onBytes?: (done: number) => void, limit = Infinity): number {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.allocUnsafe(READ_BYTES);
    let done = 0;
    for (;;) {
      const want = Math.min(READ_BYTES, limit - done);
      if (want <= 0) break;
      const n = readSync(fd, buf, 0, want, done);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      done += n;
      onBytes?.(done);
    }
    return done;
  } finally {
    closeSync(fd);
  }
}

export function sha256File(path: string, onBytes?: (done: number) => void): string {
  const h = createHash("sha256");
  hashFileInto(h, path, onBytes);
  return h.digest("hex");
}

export function gitBlobSha1File(path: string, onBytes?: (done: number) => void): string {
  const fd = openSync(path, "r");
  const size = fstatSync(fd).size;
  closeSync(fd);
  const h = createHash("sha1");
  h.update(`blob ${size}\0`);
  const read = hashFileInto(h, path, onBytes, size);
  if (read !== size) throw new Error(`${path} changed size while it was hashed`);
  return h.digest("hex");
}

export function gitBlobSha1(bytes: Uint8Array): string {
  return createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export const isSha256Hex = (s: string): boolean => /^[0-9a-f]{64}$/.test(s);
export const isSha1Hex = (s: string): boolean => /^[0-9a-f]{40}$/.test(s);
