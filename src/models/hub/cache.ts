/** What is on disk: Hub cache repositories with their snapshots, torch hub checkpoints, classifiers. */
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { CLASSIFIER_RELEASES } from "./classifiers.ts";
import { classifiersDir, repoIdFromFolder, torchCheckpoints, type Env } from "./paths.ts";

export interface CachedFile {
  /** path inside the snapshot */
  path: string;
  abs: string;
  /** the blob's file name (its hash) when the entry links into blobs/ */
  blob?: string;
  /** undefined when the link is broken */
  size?: number;
}

export interface CachedSnapshot {
  revision: string;
  dir: string;
  /** refs (branch names) that point at this revision */
  refs: string[];
  files: CachedFile[];
}

export interface CachedRepo {
  id: string;
  dir: string;
  snapshots: CachedSnapshot[];
  /** interrupted downloads waiting to be resumed */
  incomplete: Array<{ path: string; size: number }>;
}

export interface PlainFile {
  path: string;
  size: number;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function readRefs(repoDir: string): Map<string, string[]> {
  const byRev = new Map<string, string[]>();
  const walk = (dir: string, prefix: string) => {
    for (const name of listDir(dir)) {
      const p = join(dir, name);
      const ref = prefix ? `${prefix}/${name}` : name;
      if (statSync(p).isDirectory()) walk(p, ref);
      else {
        const rev = readFileSync(p, "utf8").trim();
        byRev.set(rev, [...(byRev.get(rev) ?? []), ref]);
      }
    }
  };
  walk(join(repoDir, "refs"), "");
  return byRev;
}

/** Files of a snapshot (recursively); links are followed to find blob names and sizes. */
export function snapshotFiles(dir: string): CachedFile[] {
  const out: CachedFile[] = [];
  const walk = (d: string, prefix: string) => {
    for (const name of listDir(d)) {
      const abs = join(d, name);
      const rel = prefix ? `${prefix}/${name}` : name;
      const l = lstatSync(abs);
      if (l.isDirectory()) {
        walk(abs, rel);
        continue;
      }
      let blob: string | undefined;
      if (l.isSymbolicLink()) {
        const target = resolve(dirname(abs), readlinkSync(abs));
        if (basename(dirname(target)) === "blobs") blob = basename(target);
      }
      let size: number | undefined;
      try {
        size = statSync(abs).size;
      } catch {
        size = undefined;
      }
      out.push({ path: rel, abs, blob, size });
    }
  };
  walk(dir, "");
  return out;
}

export function scanRepo(repoDir: string, id: string): CachedRepo {
  const refs = readRefs(repoDir);
  const snapshots = listDir(join(repoDir, "snapshots"))
    .map((rev) => join(repoDir, "snapshots", rev))
    .filter((d) => statSync(d).isDirectory())
    .map((d) => ({ revision: basename(d), dir: d, refs: refs.get(basename(d)) ?? [], files: snapshotFiles(d) }));
  const blobs = join(repoDir, "blobs");
  const incomplete = listDir(blobs)
    .filter((f) => f.endsWith(".incomplete"))
    .map((f) => ({ path: join(blobs, f), size: statSync(join(blobs, f)).size }));
  return { id, dir: repoDir, snapshots, incomplete };
}

/** Every model repository in a Hub cache (datasets and spaces are not ours to list). */
export function scanHubCache(cacheDir: string): CachedRepo[] {
  const out: CachedRepo[] = [];
  for (const folder of listDir(cacheDir)) {
    const id = repoIdFromFolder(folder);
    const dir = join(cacheDir, folder);
    if (id && statSync(dir).isDirectory()) out.push(scanRepo(dir, id));
  }
  return out;
}

export function scanTorchHub(env: Env): PlainFile[] {
  const dir = torchCheckpoints(env);
  return listDir(dir)
    .filter((f) => f.endsWith(".pt") || f.endsWith(".pth"))
    .map((f) => ({ path: join(dir, f), size: statSync(join(dir, f)).size }));
}

/** Classifier files in `$VIRNUC_HOME/classifiers/` and VirNucPro's two names in the current directory. */
export function scanClassifiers(env: Env, cwd = process.cwd()): PlainFile[] {
  const dir = classifiersDir(env);
  const found = listDir(dir)
    .filter((f) => f.endsWith(".pth"))
    .map((f) => join(dir, f));
  for (const c of CLASSIFIER_RELEASES) {
    const p = resolve(cwd, c.file);
    if (existsSync(p) && !found.includes(p)) found.push(p);
  }
  return found.filter((p) => statSync(p).isFile()).map((p) => ({ path: p, size: statSync(p).size }));
}
