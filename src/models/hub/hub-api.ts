/**
 * What the Hugging Face Hub says about a model repository: its commit for a revision and, per file,
 * the size and the hash a download must match (sha256 for LFS files, the git blob id otherwise).
 *
 * `GET {endpoint}/api/models/{id}/revision/{rev}?blobs=true` answers
 *   { "id", "sha": "<commit>", "siblings": [{ "rfilename", "size", "blobId", "lfs"?: { "sha256", "size", "pointerSize" } }] }
 * and `GET {endpoint}/api/models/{id}/tree/{commit}` answers
 *   [{ "type": "file", "path", "size", "oid", "lfs"?: { "oid": "<sha256>", "size", "pointerSize" } }].
 * Mirrors that omit the file metadata fall back to the tree listing, then to the headers of the
 * resolve endpoint (X-Linked-Etag / X-Linked-Size for LFS files, ETag otherwise).
 */
import { UserError } from "../../util/errors.ts";
import { isSha1Hex, isSha256Hex } from "./hash.ts";
import { HttpStatusError, TransientError, getJson, normalizeEtag, request, sleep, type HttpClient } from "./http.ts";
import { hfHome, type Env } from "./paths.ts";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface HubFile {
  path: string;
  size?: number;
  /** git blob SHA-1 (non-LFS files) */
  blobId?: string;
  /** sha256 of the content (LFS files) */
  lfsSha256?: string;
}

export interface HubRepoInfo {
  id: string;
  commit: string;
  files: HubFile[];
}

export const DEFAULT_ENDPOINT = "https://huggingface.co";

export function hubEndpoint(option: string | undefined, env: Env): string {
  const e = option ?? (env.HF_ENDPOINT?.trim() || DEFAULT_ENDPOINT);
  let url: URL;
  try {
    url = new URL(e);
  } catch {
    throw new UserError(`--endpoint ${e}: not a URL (expected e.g. https://huggingface.co)`);
  }
  return url.toString().replace(/\/+$/, "");
}

/** `$HF_TOKEN`, else the token file `huggingface-cli login` writes (`$HF_TOKEN_PATH` or `$HF_HOME/token`). */
export function hubToken(env: Env): string | undefined {
  const t = env.HF_TOKEN?.trim() || env.HUGGING_FACE_HUB_TOKEN?.trim();
  if (t) return t;
  const file = env.HF_TOKEN_PATH?.trim() || join(hfHome(env), "token");
  try {
    if (existsSync(file)) return readFileSync(file, "utf8").trim() || undefined;
  } catch {
    // an unreadable token file is the same as none
  }
  return undefined;
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);

/** Parse the revision endpoint's answer; throws a plain Error on an unexpected shape. */
export function parseRevisionInfo(id: string, json: unknown): HubRepoInfo {
  const o = asRecord(json);
  const commit = str(o?.sha);
  if (!o || !commit || !Array.isArray(o.siblings)) throw new Error("answer has no 'sha' and 'siblings'");
  const files: HubFile[] = [];
  for (const s of o.siblings) {
    const r = asRecord(s);
    const path = str(r?.rfilename);
    if (!r || !path) continue;
    const lfs = asRecord(r.lfs);
    files.push({
      path,
      size: num(lfs?.size) ?? num(r.size),
      blobId: str(r.blobId),
      lfsSha256: str(lfs?.sha256) ?? str(lfs?.oid),
    });
  }
  return { id, commit, files };
}

/** Parse the tree endpoint's answer (files only). */
export function parseTree(json: unknown): HubFile[] {
  if (!Array.isArray(json)) throw new Error("tree answer is not a list");
  const files: HubFile[] = [];
  for (const e of json) {
    const r = asRecord(e);
    const path = str(r?.path);
    if (!r || !path || r.type !== "file") continue;
    const lfs = asRecord(r.lfs);
    files.push({ path, size: num(lfs?.size) ?? num(r.size), blobId: str(r.oid), lfsSha256: str(lfs?.oid) ?? str(lfs?.sha256) });
  }
  return files;
}

const hasMetadata = (f: HubFile) => f.size !== undefined && (f.lfsSha256 !== undefined || f.blobId !== undefined);

/** Map Hub HTTP failures to one actionable line. */
export function hubError(err: unknown, id: string, endpoint: string, token: string | undefined): Error {
  if (err instanceof HttpStatusError) {
    if (err.status === 404)
      return new UserError(
        `${id}: no such model on ${endpoint}${token ? "" : " (a private or gated model also needs HF_TOKEN)"}; check the id`,
      );
    if (err.status === 401)
      return new UserError(
        token ? `${id}: ${endpoint} rejected HF_TOKEN; set a valid token` : `${id}: ${endpoint} requires a token: set HF_TOKEN`,
      );
    if (err.status === 403)
      return new UserError(`${id}: access denied by ${endpoint} (a gated model: accept its terms on the model page, then set HF_TOKEN)`);
    return new UserError(`${id}: ${err.message}`);
  }
  if (err instanceof TransientError)
    return new UserError(`cannot reach ${endpoint} (${err.message}): check the network, or set --endpoint / HF_ENDPOINT to a mirror`);
  return err instanceof Error ? err : new Error(String(err));
}

async function withRetries<T>(f: () => Promise<T>, attempts: number, delayMs: number): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await f();
    } catch (err) {
      if (!(err instanceof TransientError) || i >= attempts) throw err;
      await sleep(delayMs * i);
    }
  }
}

export interface RepoInfoOptions {
  endpoint: string;
  client: HttpClient;
  revision?: string;
  retries?: number;
  retryDelayMs?: number;
}

/** Commit and file metadata of a repository at a revision (default `main`). */
export async function fetchRepoInfo(id: string, opts: RepoInfoOptions): Promise<HubRepoInfo> {
  const rev = encodeURIComponent(opts.revision ?? "main");
  const attempts = (opts.retries ?? 3) + 1;
  const delay = opts.retryDelayMs ?? 1000;
  const base = `${opts.endpoint}/api/models/${id}`;
  try {
    const json = await withRetries(() => getJson(`${base}/revision/${rev}?blobs=true`, opts.client), attempts, delay);
    let info: HubRepoInfo;
    try {
      info = parseRevisionInfo(id, json);
    } catch (err) {
      throw new UserError(`${id}: unexpected answer from ${opts.endpoint}/api/models (${(err as Error).message})`);
    }
    if (info.files.length > 0 && !info.files.every(hasMetadata)) {
      // Some mirrors ignore ?blobs=true: the tree listing has sizes and hashes too.
      try {
        const tree = parseTree(await withRetries(() => getJson(`${base}/tree/${info.commit}`, opts.client), attempts, delay));
        const byPath = new Map(tree.map((f) => [f.path, f]));
        info.files = info.files.map((f) => ({ ...f, ...byPath.get(f.path) }));
      } catch (err) {
        if (!(err instanceof HttpStatusError) && !(err instanceof Error && /tree answer/.test(err.message))) throw err;
      }
    }
    return info;
  } catch (err) {
    throw hubError(err, id, opts.endpoint, opts.client.token);
  }
}

/** `{endpoint}/{id}/resolve/{commit}/{path}` */
export function resolveUrl(endpoint: string, id: string, commit: string, path: string): string {
  return `${endpoint}/${id}/resolve/${commit}/${path.split("/").map(encodeURIComponent).join("/")}`;
}

/** File metadata from the resolve endpoint's headers, as huggingface_hub reads them. */
export async function headFileMetadata(url: string, client: HttpClient): Promise<{ commit?: string; etag?: string; size?: number; lfs: boolean }> {
  const { res, first } = await request(url, { method: "HEAD", headers: { "accept-encoding": "identity" } }, client);
  await res.body?.cancel().catch(() => {});
  if (!res.ok) throw new HttpStatusError(res.status, url);
  const linked = normalizeEtag(first.get("x-linked-etag"));
  const etag = linked ?? normalizeEtag(first.get("etag"));
  const sizeHeader = first.get("x-linked-size") ?? res.headers.get("content-length");
  return {
    commit: first.get("x-repo-commit") ?? undefined,
    etag,
    size: sizeHeader !== null && sizeHeader !== "" ? Number(sizeHeader) : undefined,
    lfs: linked !== undefined,
  };
}

/** Fill in missing hashes of files from resolve-endpoint headers. */
export async function completeMetadata(info: HubRepoInfo, files: HubFile[], endpoint: string, client: HttpClient): Promise<HubFile[]> {
  const out: HubFile[] = [];
  for (const f of files) {
    if (hasMetadata(f)) {
      out.push(f);
      continue;
    }
    const meta = await headFileMetadata(resolveUrl(endpoint, info.id, info.commit, f.path), client);
    out.push({
      ...f,
      size: f.size ?? meta.size,
      lfsSha256: f.lfsSha256 ?? (meta.lfs && meta.etag && isSha256Hex(meta.etag) ? meta.etag : undefined),
      blobId: f.blobId ?? (!meta.lfs && meta.etag && isSha1Hex(meta.etag) ? meta.etag : undefined),
    });
  }
  return out;
}

const TOKENIZER_AND_CONFIG = new Set([
  "config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
  "vocab.txt",
  "vocab.json",
  "merges.txt",
  "tokenizer.model",
  "spiece.model",
  "sentencepiece.bpe.model",
]);
const SAFETENSORS = /^model(-\d+-of-\d+)?\.safetensors$/;
const PYTORCH_BIN = /^pytorch_model(-\d+-of-\d+)?\.bin$/;

/**
 * The files a model needs: config, tokenizer files and one weight format (safetensors when present,
 * else the PyTorch .bin shards with their index). TF/Flax/ONNX weights, code and docs are skipped.
 */
export function selectModelFiles(paths: readonly string[]): string[] {
  const top = paths.filter((p) => !p.includes("/"));
  const keep = top.filter((p) => TOKENIZER_AND_CONFIG.has(p));
  const st = top.filter((p) => SAFETENSORS.test(p) || p === "model.safetensors.index.json");
  const bin = top.filter((p) => PYTORCH_BIN.test(p) || p === "pytorch_model.bin.index.json");
  if (st.some((p) => SAFETENSORS.test(p))) keep.push(...st);
  else keep.push(...bin);
  return keep;
}

export const hasWeightFile = (paths: readonly string[]) => paths.some((p) => SAFETENSORS.test(p) || PYTORCH_BIN.test(p));
