/**
 * `virnuc models verify`: recompute the hashes of cached files and compare them with the names
 * they are stored under (blobs/<sha256> for LFS files, blobs/<git blob id> otherwise) or, for the
 * classifiers, with VirNucPro's published git blob ids.
 */
import { existsSync, lstatSync, readlinkSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { CLASSIFIER_RELEASES, classifierByFile } from "./classifiers.ts";
import { gitBlobSha1File, isSha1Hex, isSha256Hex, sha256File } from "./hash.ts";
import { scanRepo, snapshotFiles } from "./cache.ts";
import type { ProgressSink } from "./progress.ts";
import { silentProgress } from "./progress.ts";

export type VerifyStatus = "OK" | "MISMATCH" | "MISSING" | "UNVERIFIED";

export interface VerifyResult {
  /** what the user sees: a snapshot-relative name or a path */
  file: string;
  status: VerifyStatus;
  algorithm?: "sha256" | "git-sha1";
  expected?: string;
  actual?: string;
  note?: string;
}

export interface VerifyOptions {
  progress?: ProgressSink;
  /** Classifier git blob ids (default VirNucPro's). */
  classifierIds?: Partial<Record<string, string>>;
}

const VERIFY_PROGRESS_BYTES = 64 << 20;

export const failed = (r: VerifyResult) => r.status === "MISMATCH" || r.status === "MISSING";

function hashWithProgress(path: string, algorithm: "sha256" | "git-sha1", label: string, progress: ProgressSink): string {
  const size = statSync(path).size;
  // Small files hash in milliseconds: a bar would only be noise.
  if (size < VERIFY_PROGRESS_BYTES) return algorithm === "sha256" ? sha256File(path) : gitBlobSha1File(path);
  const bar = progress.start(`verify ${label}`, size);
  const hex = algorithm === "sha256" ? sha256File(path, (n) => bar.update(n)) : gitBlobSha1File(path, (n) => bar.update(n));
  bar.finish();
  return hex;
}

/** Check one blob whose file name is its expected hash. */
export function verifyBlob(path: string, label: string, opts: VerifyOptions = {}): VerifyResult {
  const name = basename(path);
  if (!existsSync(path)) return { file: label, status: "MISSING", note: `blob ${name} is missing (rerun \`virnuc models pull\`)` };
  const algorithm = isSha256Hex(name) ? "sha256" : isSha1Hex(name) ? "git-sha1" : undefined;
  if (!algorithm) return { file: label, status: "UNVERIFIED", note: "no published hash to compare with" };
  const actual = hashWithProgress(path, algorithm, label, opts.progress ?? silentProgress);
  return { file: label, status: actual === name ? "OK" : "MISMATCH", algorithm, expected: name, actual };
}

/** Verify a classifier by its git blob id: against its own name's release, or either release for other names. */
export function verifyClassifier(path: string, opts: VerifyOptions = {}): VerifyResult {
  if (!existsSync(path)) return { file: path, status: "MISSING" };
  const ids = CLASSIFIER_RELEASES.map((c) => ({ file: c.file, id: opts.classifierIds?.[c.file] ?? c.gitBlobSha1 }));
  const actual = hashWithProgress(path, "git-sha1", basename(path), opts.progress ?? silentProgress);
  const own = classifierByFile(basename(path));
  if (own) {
    const expected = ids.find((i) => i.file === own.file)!.id;
    return { file: path, status: actual === expected ? "OK" : "MISMATCH", algorithm: "git-sha1", expected, actual };
  }
  const match = ids.find((i) => i.id === actual);
  return match
    ? { file: path, status: "OK", algorithm: "git-sha1", actual, expected: match.id, note: `same bytes as VirNucPro's ${match.file}` }
    : { file: path, status: "UNVERIFIED", algorithm: "git-sha1", actual, note: "not a VirNucPro release file" };
}

/** Every file of every snapshot of a cached repository, each blob hashed once. */
export function verifyRepo(repoDir: string, id: string, opts: VerifyOptions = {}): VerifyResult[] {
  const repo = scanRepo(repoDir, id);
  const out: VerifyResult[] = [];
  const seen = new Map<string, VerifyResult>();
  for (const snap of repo.snapshots) {
    const tag = repo.snapshots.length > 1 ? `@${snap.revision.slice(0, 7)}` : "";
    for (const f of snap.files) out.push(verifyCachedFile(f.abs, `${id}${tag}/${f.path}`, seen, opts));
  }
  return out;
}

/** A snapshot directory (or any folder whose files link into a blobs/ folder). */
export function verifySnapshotDir(dir: string, labelPrefix: string, opts: VerifyOptions = {}): VerifyResult[] {
  const seen = new Map<string, VerifyResult>();
  return snapshotFiles(dir).map((f) => verifyCachedFile(f.abs, `${labelPrefix}/${f.path}`, seen, opts));
}

function verifyCachedFile(abs: string, label: string, seen: Map<string, VerifyResult>, opts: VerifyOptions): VerifyResult {
  const l = lstatSync(abs);
  let blobPath: string | undefined;
  if (l.isSymbolicLink()) blobPath = resolve(dirname(abs), readlinkSync(abs));
  else if (basename(dirname(abs)) === "blobs") blobPath = abs;
  if (!blobPath || basename(dirname(blobPath)) !== "blobs") {
    if (/\.pth$/.test(abs)) return verifyClassifier(abs, opts);
    return { file: label, status: "UNVERIFIED", note: "not a link into a Hugging Face blobs/ folder" };
  }
  const prev = seen.get(blobPath);
  if (prev) return { ...prev, file: label };
  const r = verifyBlob(blobPath, label, opts);
  seen.set(blobPath, r);
  return r;
}

/** A path given on the command line: a classifier, a blob, a snapshot or repository folder, or a linked file. */
export function verifyPath(path: string, opts: VerifyOptions = {}): VerifyResult[] {
  const abs = resolve(path);
  if (!existsSync(abs) && !isBrokenLink(abs)) return [{ file: path, status: "MISSING", note: "no such file or directory" }];
  if (isBrokenLink(abs)) return [{ file: path, status: "MISSING", note: "broken link (its blob is gone)" }];
  if (statSync(abs).isDirectory()) {
    const name = basename(abs);
    if (name.startsWith("models--") && existsSync(join(abs, "snapshots"))) return verifyRepo(abs, name, opts);
    return verifySnapshotDir(abs, path.replace(/\/+$/, ""), opts);
  }
  return [verifyCachedFile(abs, path, new Map(), opts)];
}

function isBrokenLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink() && !existsSync(p);
  } catch {
    return false;
  }
}
