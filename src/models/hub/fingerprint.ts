/**
 * sha256 fingerprints of model files for run.json and --resume, without re-reading checkpoints
 * that are already named by their hash:
 *
 *   - A file in the Hugging Face cache layout, `<cache>/models--org--name/snapshots/<rev>/<path>`
 *     being a symlink to `../../blobs/<64 hex>` (a regular file of the same repository), is an LFS
 *     file stored under its sha256 (huggingface_hub and `virnuc models pull` name LFS blobs by the
 *     sha256 the Hub publishes, after checking it). The name is trusted and nothing is read;
 *     `virnuc models verify` re-hashes the blobs against their names.
 *   - Any other file (git-sha1-named small files, plain directories, copies without symlinks) is
 *     hashed once and cached in `$VIRNUC_HOME/file-hashes.json` by (path, size, mtime, inode):
 *     a file replaced by another with the same size and mtime still gets a new inode.
 */
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { writeFileAtomic } from "../../output/atomic.ts";
import { isSha256Hex } from "./hash.ts";
import { virnucHome, type Env } from "./paths.ts";

export interface FileFingerprint {
  path: string;
  bytes: number;
  sha256: string;
}

/** Where a fingerprint's sha256 came from. */
export type FingerprintSource = "hub-blob-name" | "cache" | "hashed";

export interface FingerprintOptions {
  /** environment for `$VIRNUC_HOME` (default process.env) */
  env?: Env;
  /** the cache file (default `$VIRNUC_HOME/file-hashes.json`) */
  cacheFile?: string;
}

interface CacheEntry {
  bytes: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
}

/**
 * The sha256 that the Hugging Face cache layout guarantees for `path`, or undefined when `path`
 * is not a snapshot symlink into its own repository's blobs/ under a 64-hex name. Directory
 * symlinks above the file (a link to a snapshot folder) are followed; the file's own link is
 * what is checked.
 */
export function hubBlobSha256(path: string): string | undefined {
  let file: string;
  try {
    file = join(realpathSync(dirname(resolve(path))), basename(path));
    if (!lstatSync(file).isSymbolicLink()) return undefined;
  } catch {
    return undefined;
  }
  // <repo>/snapshots/<rev>/<path...>: find the snapshots folder above the file.
  const parts = file.split("/");
  const s = parts.lastIndexOf("snapshots", parts.length - 3);
  if (s < 1 || !/^(models|datasets|spaces)--/.test(parts[s - 1])) return undefined;
  const repo = parts.slice(0, s).join("/");
  let target: string;
  try {
    target = resolve(dirname(file), readlinkSync(file));
  } catch {
    return undefined;
  }
  const name = basename(target);
  if (dirname(target) !== join(repo, "blobs") || !isSha256Hex(name)) return undefined;
  try {
    if (!lstatSync(target).isFile()) return undefined; // a blob is a regular file, not another link
  } catch {
    return undefined;
  }
  return name;
}

function readCache(path: string): Record<string, CacheEntry> {
  try {
    const c = JSON.parse(readFileSync(path, "utf8"));
    return c && typeof c === "object" && !Array.isArray(c) ? c : {};
  } catch {
    return {};
  }
}

function sha256Of(path: string): string {
  const h = createHash("sha256");
  const fd = openSync(path, "r");
  const buf = Buffer.allocUnsafe(8 << 20);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

/** A file's fingerprint and where its sha256 came from. */
export function fingerprint(path: string, opts: FingerprintOptions = {}): { fp: FileFingerprint; source: FingerprintSource } {
  const abs = resolve(path);
  const st = statSync(abs);
  const named = hubBlobSha256(abs);
  if (named) return { fp: { path: abs, bytes: st.size, sha256: named }, source: "hub-blob-name" };
  const cacheFile = opts.cacheFile ?? join(virnucHome(opts.env ?? process.env), "file-hashes.json");
  const cache = readCache(cacheFile);
  const hit = cache[abs];
  if (hit && hit.bytes === st.size && hit.mtimeMs === st.mtimeMs && hit.ino === st.ino && isSha256Hex(String(hit.sha256)))
    return { fp: { path: abs, bytes: st.size, sha256: hit.sha256 }, source: "cache" };
  const sha256 = sha256Of(abs);
  // Re-read before writing: another process may have added entries meanwhile.
  const fresh = readCache(cacheFile);
  fresh[abs] = { bytes: st.size, mtimeMs: st.mtimeMs, ino: st.ino, sha256 };
  try {
    mkdirSync(dirname(cacheFile), { recursive: true });
    writeFileAtomic(cacheFile, JSON.stringify(fresh));
  } catch {
    // a read-only cache directory only costs a re-hash next time
  }
  return { fp: { path: abs, bytes: st.size, sha256 }, source: "hashed" };
}

/** sha256 of a model file: from its Hugging Face blob name, the cache, or by reading it. */
export function fingerprintFile(path: string): FileFingerprint {
  return fingerprint(path).fp;
}
