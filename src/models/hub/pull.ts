/**
 * `virnuc models pull`: Hub models into the Hugging Face cache layout (blobs/<hash>,
 * snapshots/<commit>/<file> -> ../../blobs/<hash>, refs/main), the VirNucPro classifiers into
 * `$VIRNUC_HOME/classifiers/`; every file verified against its published hash before it is kept.
 */
import { copyFileSync, existsSync, lstatSync, mkdirSync, renameSync, statSync, statfsSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { UserError } from "../../util/errors.ts";
import { CLASSIFIER_RELEASES, DEFAULT_GITHUB_BASE, classifierByFile, type ClassifierRelease } from "./classifiers.ts";
import { downloadResumable, type DownloadOptions } from "./download.ts";
import { gitBlobSha1File, isSha1Hex } from "./hash.ts";
import {
  completeMetadata,
  fetchRepoInfo,
  hasWeightFile,
  hubEndpoint,
  hubError,
  hubToken,
  resolveUrl,
  selectModelFiles,
  type HubFile,
} from "./hub-api.ts";
import { HttpStatusError, type HttpClient } from "./http.ts";
import { classifiersDir, hfHubCache, isHubId, repoFolderName, type Env } from "./paths.ts";
import { defaultProgress, formatBytes, type ProgressSink } from "./progress.ts";
import { DEFAULTS } from "./resolve.ts";

export interface PullOptions {
  env?: Env;
  /** Hub endpoint (default `$HF_ENDPOINT` or https://huggingface.co). */
  endpoint?: string;
  /** Base URL of the classifier files (default VirNucPro's raw GitHub URL). */
  githubBase?: string;
  /** Hub cache root (default `$HF_HUB_CACHE` ...). */
  cacheDir?: string;
  /** Classifier folder (default `$VIRNUC_HOME/classifiers`). */
  classifierDir?: string;
  revision?: string;
  progress?: ProgressSink;
  log?: (line: string) => void;
  retries?: number;
  retryDelayMs?: number;
  stallMs?: number;
  /** Classifier git blob ids to check against (default: VirNucPro's, spec §1.5). */
  classifierIds?: Partial<Record<ClassifierRelease["file"], string>>;
  fetch?: typeof fetch;
}

export interface PulledFile {
  path: string;
  /** blob file name in blobs/ (hub) or the file itself (classifier) */
  blob: string;
  size: number;
  downloaded: boolean;
  verified: "sha256" | "git-sha1" | "none";
}

export interface PullResult {
  id: string;
  /** snapshot directory (hub) or the classifier file */
  path: string;
  commit?: string;
  files: PulledFile[];
}

function downloadOptions(opts: PullOptions, client: HttpClient): DownloadOptions {
  return {
    client,
    progress: opts.progress ?? defaultProgress(),
    retries: opts.retries,
    retryDelayMs: opts.retryDelayMs,
    stallMs: opts.stallMs,
  };
}

/** Point `link` at `target` with a relative symlink (a copy where the filesystem has none). */
function linkInto(target: string, link: string): void {
  mkdirSync(dirname(link), { recursive: true });
  try {
    lstatSync(link);
    unlinkSync(link);
  } catch {
    // nothing there yet
  }
  try {
    symlinkSync(relative(dirname(link), target), link);
  } catch {
    copyFileSync(target, link);
  }
}

/** Fail before a multi-GB transfer that cannot fit, rather than at 95 %. */
function checkFreeSpace(repoDir: string, files: HubFile[], id: string): void {
  const blobs = join(repoDir, "blobs");
  let needed = 0;
  for (const f of files) {
    const name = f.lfsSha256 ?? f.blobId;
    if (f.size === undefined || (name && existsSync(join(blobs, name)))) continue;
    const part = name ? join(blobs, `${name}.incomplete`) : undefined;
    needed += f.size - (part && existsSync(part) ? Math.min(f.size, statSync(part).size) : 0);
  }
  let probe = repoDir;
  while (!existsSync(probe) && dirname(probe) !== probe) probe = dirname(probe);
  let free: number;
  try {
    const st = statfsSync(probe);
    free = st.bavail * st.bsize;
  } catch {
    return; // no statfs here: the write itself will tell
  }
  if (needed > free)
    throw new UserError(
      `${id}: needs ${formatBytes(needed)} but ${probe} has ${formatBytes(free)} free: free space, or pull elsewhere with -o DIR / HF_HUB_CACHE`,
    );
}

function writeRef(repoDir: string, revision: string, commit: string): void {
  const ref = join(repoDir, "refs", revision);
  mkdirSync(dirname(ref), { recursive: true });
  const tmp = `${ref}.${process.pid}.tmp`;
  writeFileSync(tmp, commit);
  renameSync(tmp, ref);
}

export async function pullHubModel(id: string, opts: PullOptions = {}): Promise<PullResult> {
  const env = opts.env ?? process.env;
  const endpoint = hubEndpoint(opts.endpoint, env);
  const token = hubToken(env);
  const client: HttpClient = { token, trustedOrigin: new URL(endpoint).origin, fetch: opts.fetch };
  const log = opts.log ?? (() => {});
  const revision = opts.revision ?? "main";

  const info = await fetchRepoInfo(id, { endpoint, client, revision, retries: opts.retries, retryDelayMs: opts.retryDelayMs });
  const wanted = selectModelFiles(info.files.map((f) => f.path));
  if (!hasWeightFile(wanted))
    throw new UserError(`${id}: the repository has no PyTorch (.bin) or safetensors weights at ${revision}; is it the right model?`);
  let files = info.files.filter((f) => wanted.includes(f.path));
  try {
    files = await completeMetadata(info, files, endpoint, client);
  } catch (err) {
    throw hubError(err, id, endpoint, token);
  }

  const repoDir = join(opts.cacheDir ?? hfHubCache(env), repoFolderName(id));
  const snapshot = join(repoDir, "snapshots", info.commit);
  const total = files.reduce((s, f) => s + (f.size ?? 0), 0);
  log(`${id}: commit ${info.commit.slice(0, 12)}, ${files.length} files, ${formatBytes(total)} -> ${snapshot}`);
  checkFreeSpace(repoDir, files, id);

  const pulled: PulledFile[] = [];
  for (const f of files) pulled.push(await pullHubFile(id, info.commit, f, repoDir, snapshot, endpoint, downloadOptions(opts, client), log));
  if (revision !== info.commit) writeRef(repoDir, revision, info.commit);
  return { id, path: snapshot, commit: info.commit, files: pulled };
}

async function pullHubFile(
  id: string,
  commit: string,
  f: HubFile,
  repoDir: string,
  snapshot: string,
  endpoint: string,
  dl: DownloadOptions,
  log: (line: string) => void,
): Promise<PulledFile> {
  const label = `${id}/${f.path}`;
  const blobsDir = join(repoDir, "blobs");
  const known = f.lfsSha256 ?? f.blobId;
  const verified: PulledFile["verified"] = f.lfsSha256 ? "sha256" : f.blobId && isSha1Hex(f.blobId) ? "git-sha1" : "none";
  const link = join(snapshot, f.path);

  if (known) {
    const blob = join(blobsDir, known);
    if (existsSync(blob) && (f.size === undefined || statSync(blob).size === f.size)) {
      linkInto(blob, link);
      return { path: f.path, blob: known, size: statSync(blob).size, downloaded: false, verified };
    }
  }

  // An unknown hash (a mirror that publishes none) still gets a content-addressed name: its sha256.
  const dest = join(blobsDir, known ?? `unverified-${f.path.replace(/[^\w.-]/g, "_")}`);
  let r;
  try {
    r = await downloadResumable(
      { url: resolveUrl(endpoint, id, commit, f.path), dest, label, expectedSize: f.size, sha256: verified !== "git-sha1" },
      dl,
    );
  } catch (err) {
    throw err instanceof HttpStatusError ? hubError(err, id, endpoint, dl.client.token) : err;
  }
  if (f.lfsSha256 && r.sha256 !== f.lfsSha256) {
    unlinkSync(r.part);
    throw new UserError(
      `${label}: sha256 ${r.sha256} does not match the Hub's ${f.lfsSha256}; the download was deleted: rerun \`virnuc models pull ${id}\``,
    );
  }
  if (verified === "git-sha1") {
    const got = gitBlobSha1File(r.part);
    if (got !== f.blobId) {
      unlinkSync(r.part);
      throw new UserError(
        `${label}: git blob id ${got} does not match the Hub's ${f.blobId}; the download was deleted: rerun \`virnuc models pull ${id}\``,
      );
    }
  }
  const blobName = known ?? r.sha256!;
  const blob = join(blobsDir, blobName);
  renameSync(r.part, blob);
  if (verified === "none") log(`${label}: ${new URL(endpoint).host} publishes no hash for it; kept unverified as blobs/${blobName}`);
  linkInto(blob, link);
  return { path: f.path, blob: blobName, size: r.bytes, downloaded: true, verified };
}

export async function pullClassifier(file: ClassifierRelease["file"], opts: PullOptions = {}): Promise<PullResult> {
  const env = opts.env ?? process.env;
  const release = classifierByFile(file);
  if (!release) throw new UserError(`${file}: not a VirNucPro classifier (expected 300_model.pth or 500_model.pth)`);
  const want = opts.classifierIds?.[file] ?? release.gitBlobSha1;
  const base = (opts.githubBase ?? DEFAULT_GITHUB_BASE).replace(/\/+$/, "");
  const dir = opts.classifierDir ?? classifiersDir(env);
  const dest = join(dir, file);
  const log = opts.log ?? (() => {});

  if (existsSync(dest)) {
    if (gitBlobSha1File(dest) === want)
      return { id: file, path: dest, files: [{ path: file, blob: file, size: statSync(dest).size, downloaded: false, verified: "git-sha1" }] };
    log(`${dest}: content differs from VirNucPro's ${file}; downloading it again`);
  }
  const url = `${base}/${file}`;
  // GitHub never sees the Hub token.
  const r = await downloadResumable({ url, dest, label: file }, downloadOptions(opts, { fetch: opts.fetch })).catch((err) => {
    if (err instanceof HttpStatusError) throw new UserError(`${file}: ${err.message}; check --github (default ${DEFAULT_GITHUB_BASE})`);
    throw err;
  });
  const got = gitBlobSha1File(r.part);
  if (got !== want) {
    unlinkSync(r.part);
    throw new UserError(
      `${file} from ${url}: git blob id ${got} does not match VirNucPro's ${want}; the download was deleted (check --github)`,
    );
  }
  renameSync(r.part, dest);
  return { id: file, path: dest, files: [{ path: file, blob: file, size: r.bytes, downloaded: true, verified: "git-sha1" }] };
}

/** Expand the arguments of `models pull`: none means everything a default run needs. */
export function expandPullIds(ids: readonly string[]): string[] {
  const all = [DEFAULTS.esm, DEFAULTS.dnabert, DEFAULTS.classifier300, DEFAULTS.classifier500];
  if (ids.length === 0) return all;
  const out: string[] = [];
  for (const raw of ids) {
    const id = raw.trim();
    if (id === "esm") out.push(DEFAULTS.esm);
    else if (id === "dnabert") out.push(DEFAULTS.dnabert);
    else if (id === "classifier" || id === "classifiers") out.push(DEFAULTS.classifier300, DEFAULTS.classifier500);
    else if (id === "all") out.push(...all);
    else if (classifierByFile(id) || isHubId(id)) out.push(id);
    else
      throw new UserError(
        `'${id}': not a Hub id (org/name), a classifier (${CLASSIFIER_RELEASES.map((c) => c.file).join(", ")}) or one of esm, dnabert, classifiers, all`,
      );
  }
  return [...new Set(out)];
}

export async function pullModels(ids: readonly string[], opts: PullOptions = {}): Promise<PullResult[]> {
  const results: PullResult[] = [];
  for (const id of expandPullIds(ids)) {
    const c = classifierByFile(id);
    results.push(c ? await pullClassifier(c.file, opts) : await pullHubModel(id, opts));
  }
  return results;
}
