/**
 * HTTP for the Hub and GitHub: redirects followed by hand so that the first hop's headers
 * (X-Repo-Commit, X-Linked-Etag) stay visible and the token never leaves the Hub's origin
 * (LFS files redirect to a CDN with signed URLs).
 */
import pkg from "../../../package.json" with { type: "json" };

export interface HttpClient {
  /** Sent as `Authorization: Bearer` to `trustedOrigin` only. */
  token?: string;
  trustedOrigin?: string;
  fetch?: typeof fetch;
}

export interface HttpResult {
  res: Response;
  /** Headers of the first response (before redirects). */
  first: Headers;
  url: string;
}

/** A transfer failure worth retrying: connection reset, timeout, 5xx, 429. */
export class TransientError extends Error {
  override name = "TransientError";
}

/** An HTTP status that retrying will not fix (404, 401, 403, ...). */
export class HttpStatusError extends Error {
  override name = "HttpStatusError";
  constructor(
    readonly status: number,
    readonly url: string,
    detail = "",
  ) {
    super(`${url} answered ${status}${detail ? `: ${detail}` : ""}`);
  }
}

const MAX_REDIRECTS = 10;
export const USER_AGENT = `virnuc/${pkg.version}`;

export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

export async function request(
  url: string,
  init: { method?: string; headers?: Record<string, string>; signal?: AbortSignal },
  client: HttpClient,
): Promise<HttpResult> {
  const doFetch = client.fetch ?? fetch;
  let current = url;
  let first: Headers | undefined;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers: Record<string, string> = { "user-agent": USER_AGENT, ...init.headers };
    if (client.token && client.trustedOrigin && new URL(current).origin === client.trustedOrigin)
      headers.authorization = `Bearer ${client.token}`;
    let res: Response;
    try {
      res = await doFetch(current, { method: init.method ?? "GET", headers, signal: init.signal, redirect: "manual" });
    } catch (err) {
      throw new TransientError(`${new URL(current).origin}: ${err instanceof Error ? err.message : String(err)}`);
    }
    first ??= res.headers;
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel().catch(() => {});
      current = new URL(location, current).toString();
      continue;
    }
    return { res, first, url: current };
  }
  throw new Error(`${url}: more than ${MAX_REDIRECTS} redirects`);
}

/** GET a JSON document; statuses other than 2xx become HttpStatusError / TransientError. */
export async function getJson(url: string, client: HttpClient): Promise<unknown> {
  const { res } = await request(url, { headers: { accept: "application/json" } }, client);
  if (!res.ok) {
    const body = await res.text().catch(() => "");
    const detail = extractError(body);
    if (isRetryableStatus(res.status)) throw new TransientError(`${url} answered ${res.status}${detail ? `: ${detail}` : ""}`);
    throw new HttpStatusError(res.status, url, detail);
  }
  return res.json();
}

function extractError(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: unknown };
    if (typeof j.error === "string") return j.error;
  } catch {
    // not JSON: keep a short excerpt
  }
  return body.trim().slice(0, 120).replace(/\s+/g, " ");
}

/** `W/"abc"` / `"abc"` -> `abc` */
export function normalizeEtag(etag: string | null): string | undefined {
  if (!etag) return undefined;
  return etag.replace(/^W\//, "").replace(/^"|"$/g, "") || undefined;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
