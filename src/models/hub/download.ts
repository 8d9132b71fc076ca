/**
 * One resumable, hashed download: bytes go to `<dest>.incomplete`, a later run continues it
 * with a Range request, and dropped or stalled connections are retried while they make progress.
 * The caller verifies the finished part and renames it into place.
 */
import { createHash, type Hash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, rmSync, statSync, truncateSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { fileError, UserError } from "../../util/errors.ts";
import { hashFileInto } from "./hash.ts";
import { HttpStatusError, TransientError, isRetryableStatus, request, sleep, type HttpClient } from "./http.ts";
import { formatBytes, type ProgressBar, type ProgressSink } from "./progress.ts";

export interface DownloadRequest {
  url: string;
  /** Final path; the transfer writes `${dest}.incomplete`. */
  dest: string;
  /** Shown in progress and errors. */
  label: string;
  expectedSize?: number;
  /** Hash while writing (saves re-reading multi-GB files). */
  sha256?: boolean;
}

export interface DownloadOptions {
  client: HttpClient;
  progress: ProgressSink;
  /** Consecutive attempts without a new byte before giving up. */
  retries?: number;
  retryDelayMs?: number;
  /** Abort an attempt when no byte arrives for this long. */
  stallMs?: number;
}

export interface DownloadResult {
  /** The completed `.incomplete` file. */
  part: string;
  bytes: number;
  sha256?: string;
  /** Bytes already on disk when this call started. */
  resumedFrom: number;
  /** HTTP requests made (1 for an uninterrupted transfer). */
  requests: number;
}

// Content-Range: "bytes 100-199/1000" or "bytes */1000" (the latter on 416).
export function parseContentRange(v: string | null): { start?: number; total?: number } {
  if (!v) return {};
  const m = /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/.exec(v.trim());
  if (!m) return {};
  return { start: m[1] !== undefined ? Number(m[1]) : undefined, total: m[2] !== "*" ? Number(m[2]) : undefined };
}

class Fatal extends Error {}

export async function downloadResumable(req: DownloadRequest, opts: DownloadOptions): Promise<DownloadResult> {
  const retries = opts.retries ?? 5;
  const retryDelayMs = opts.retryDelayMs ?? 1000;
  const stallMs = opts.stallMs ?? 60_000;
  const part = `${req.dest}.incomplete`;
  mkdirSync(dirname(part), { recursive: true });

  let have = existsSync(part) ? statSync(part).size : 0;
  if (req.expectedSize !== undefined && have > req.expectedSize) {
    truncateSync(part, 0);
    have = 0;
  }
  let hash: Hash | undefined = req.sha256 ? createHash("sha256") : undefined;
  if (hash && have > 0) hashFileInto(hash, part, undefined, have);
  const restart = () => {
    truncateSync(part, 0);
    have = 0;
    if (req.sha256) hash = createHash("sha256");
  };

  const resumedFrom = have;
  let total = req.expectedSize;
  // Started at the first response, when the size is known even if the caller did not know it.
  let bar: ProgressBar | undefined;
  const progress = () => (bar ??= opts.progress.start(req.label, total, resumedFrom));
  let failures = 0;
  let requests = 0;
  let lastError = "";

  while (total === undefined || have < total) {
    const before = have;
    const ac = new AbortController();
    let stall: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(stall);
      stall = setTimeout(() => ac.abort(new TransientError(`no data for ${stallMs / 1000} s`)), stallMs);
    };
    try {
      arm();
      const headers: Record<string, string> = { "accept-encoding": "identity" };
      if (have > 0) headers.range = `bytes=${have}-`;
      requests++;
      const { res } = await request(req.url, { headers, signal: ac.signal }, opts.client);

      if (res.status === 416 && have > 0) {
        await res.body?.cancel().catch(() => {});
        const { total: serverTotal } = parseContentRange(res.headers.get("content-range"));
        if (serverTotal === have && (total === undefined || total === have)) {
          total = have;
          break;
        }
        restart();
        throw new TransientError(`server refused to resume at ${have}`);
      }
      if (res.status === 200) {
        if (have > 0) restart();
        const len = res.headers.get("content-length");
        if (len !== null) checkTotal(Number(len));
      } else if (res.status === 206) {
        const cr = parseContentRange(res.headers.get("content-range"));
        if (cr.start !== have) {
          await res.body?.cancel().catch(() => {});
          restart();
          throw new TransientError(`server resumed at ${cr.start} instead of ${before}`);
        }
        if (cr.total !== undefined) checkTotal(cr.total);
      } else {
        await res.body?.cancel().catch(() => {});
        if (isRetryableStatus(res.status)) throw new TransientError(`${res.url || req.url} answered ${res.status}`);
        throw new HttpStatusError(res.status, req.url);
      }
      if (!res.body) throw new TransientError("empty response body");
      progress();

      const fd = openSync(part, "a");
      try {
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          arm();
          if (total !== undefined && have + chunk.length > total) throw new Fatal(`server sent more than ${total} bytes`);
          writeSync(fd, chunk);
          hash?.update(chunk);
          have += chunk.length;
          bar!.update(have);
        }
      } finally {
        closeSync(fd);
      }
      if (total === undefined) {
        total = have; // no length announced: the end of the stream is the end of the file
        break;
      }
      if (have < total) throw new TransientError(`connection closed after ${formatBytes(have)} of ${formatBytes(total)}`);
    } catch (err) {
      clearTimeout(stall);
      const e = ac.signal.aborted && ac.signal.reason instanceof Error ? ac.signal.reason : err;
      if (e instanceof Fatal) {
        rmSync(part, { force: true });
        bar?.fail(e.message);
        throw new UserError(`${req.label}: ${e.message}; the partial file was deleted, rerun to download it again`);
      }
      if (e instanceof HttpStatusError) {
        bar?.fail(`HTTP ${e.status}`);
        throw e;
      }
      const code = (e as NodeJS.ErrnoException)?.code;
      if (code === "ENOSPC" || code === "EDQUOT") {
        bar?.fail("disk full");
        throw new UserError(`${req.label}: no space left writing ${part} (${formatBytes(have)} kept): free space and rerun to resume`);
      }
      if (!(e instanceof TransientError) && !(e instanceof TypeError) && !isAbort(e)) {
        bar?.fail("failed");
        throw fileError(e, part, `downloading ${req.label}`);
      }
      lastError = e instanceof Error ? e.message : String(e);
      failures = have > before ? 1 : failures + 1;
      if (failures > retries) {
        bar?.fail("interrupted");
        throw new UserError(
          `${req.label}: download failed ${failures} times in a row (${lastError}); ${formatBytes(have)} kept in ${part}: rerun the same command to resume`,
        );
      }
      await sleep(retryDelayMs * 2 ** Math.min(failures - 1, 5));
      continue;
    } finally {
      clearTimeout(stall);
    }
  }
  progress().finish(requests > 1 || resumedFrom > 0 ? `(${requests} request${requests > 1 ? "s" : ""}, resumed)` : undefined);
  return { part, bytes: have, sha256: hash?.digest("hex"), resumedFrom, requests };

  function checkTotal(n: number) {
    if (total === undefined) total = n;
    else if (n !== total) throw new Fatal(`server announces ${n} bytes but ${total} were expected`);
  }
}

function isAbort(e: unknown): boolean {
  return e instanceof Error && (e.name === "AbortError" || e.name === "TimeoutError");
}
