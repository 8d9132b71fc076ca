/**
 * A local imitation of the Hugging Face Hub (API, resolve endpoint, LFS CDN) and of GitHub raw
 * URLs, for tests: Range requests, Hub-style headers, and injected faults (a dropped connection,
 * corrupted bytes, a required token, a mirror without file metadata).
 */
import type { Server, Socket, TCPSocketListener } from "bun";
import { gitBlobSha1, sha256 } from "./hash.ts";

export interface FakeFile {
  path: string;
  bytes: Uint8Array;
  lfs?: boolean;
}

export interface FakeRepo {
  id: string;
  commit: string;
  files: FakeFile[];
}

export interface FakeRequest {
  method: string;
  path: string;
  range?: string;
  auth?: string;
}

export interface FakeHubOptions {
  repos?: FakeRepo[];
  /** served at `${url}/gh/<name>` */
  github?: Record<string, Uint8Array>;
  /** when set, the API and resolve endpoints want `Authorization: Bearer <token>` */
  requireToken?: string;
  /** "bare": the revision API ignores ?blobs=true and there is no tree API (some mirrors) */
  metadata?: "full" | "bare";
  /** honour Range requests (default true) */
  ranges?: boolean;
}

export class FakeHub {
  readonly log: FakeRequest[] = [];
  /** keys (`org/name/file` or `gh/file`) whose next transfer stops halfway with a reset connection */
  readonly dropOnce = new Set<string>();
  /** keys whose transfers end early (the server closes cleanly after half the bytes) */
  readonly truncateOnce = new Set<string>();
  /** keys whose next transfer sends half the bytes and then hangs without closing */
  readonly stallOnce = new Set<string>();
  /** keys whose size the API misreports (the transfer still sends the real bytes) */
  readonly announcedSize = new Map<string, number>();
  /** keys answered with this HTTP status instead of their bytes */
  readonly status = new Map<string, number>();
  /** keys served with one byte flipped */
  readonly corrupt = new Set<string>();
  private server: Server<undefined> | undefined;
  /** A raw TCP listener that sends half a response and then resets the connection. */
  private dropper: TCPSocketListener<{ rest?: Uint8Array }> | undefined;
  private pendingDrops = new Map<string, Uint8Array>();

  constructor(readonly opts: FakeHubOptions) {}

  get url(): string {
    if (!this.server) throw new Error("fake hub not started");
    return `http://127.0.0.1:${this.server.port}`;
  }

  start(): this {
    this.server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req) => this.handle(req),
      error: () => new Response("internal error", { status: 500 }),
    });
    const pending = this.pendingDrops;
    const send = (sock: Socket<{ rest?: Uint8Array }>) => {
      const rest = sock.data.rest;
      if (!rest) return;
      const n = sock.write(rest);
      sock.data.rest = n < rest.length ? rest.subarray(n) : undefined;
      if (!sock.data.rest) setTimeout(() => sock.terminate(), 5);
    };
    this.dropper = Bun.listen<{ rest?: Uint8Array }>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(sock) {
          sock.data = {};
        },
        data(sock, chunk) {
          const token = /^GET \/drop\/(\w+) /.exec(new TextDecoder().decode(chunk.subarray(0, 200)))?.[1];
          const payload = token ? pending.get(token) : undefined;
          if (!payload) return void sock.terminate();
          pending.delete(token!);
          sock.data.rest = payload;
          send(sock);
        },
        drain: send,
      },
    });
    return this;
  }

  stop(): void {
    this.server?.stop(true);
    this.server = undefined;
    this.dropper?.stop(true);
    this.dropper = undefined;
  }

  requests(pred: (r: FakeRequest) => boolean = () => true): FakeRequest[] {
    return this.log.filter(pred);
  }

  private repo(id: string): FakeRepo | undefined {
    return this.opts.repos?.find((r) => r.id === id);
  }

  private sizeOf(repo: FakeRepo, f: FakeFile): number {
    return this.announcedSize.get(`${repo.id}/${f.path}`) ?? f.bytes.length;
  }

  private authorized(req: Request): boolean {
    return !this.opts.requireToken || req.headers.get("authorization") === `Bearer ${this.opts.requireToken}`;
  }

  private handle(req: Request): Response {
    const u = new URL(req.url);
    const path = decodeURIComponent(u.pathname);
    this.log.push({
      method: req.method,
      path,
      range: req.headers.get("range") ?? undefined,
      auth: req.headers.get("authorization") ?? undefined,
    });

    let m = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree)\/([^/]+)$/.exec(path);
    if (m) {
      if (!this.authorized(req)) return json({ error: "Invalid credentials in Authorization header" }, 401);
      const repo = this.repo(m[1]);
      if (!repo || (m[3] !== "main" && m[3] !== repo.commit)) return json({ error: "Repository not found" }, 404);
      const bare = this.opts.metadata === "bare";
      if (m[2] === "tree") {
        if (bare) return json({ error: "Not found" }, 404);
        return json(
          repo.files.map((f) => ({
            type: "file",
            oid: f.lfs ? gitBlobSha1(pointer(f.bytes)) : gitBlobSha1(f.bytes),
            size: f.lfs ? f.bytes.length : f.bytes.length,
            path: f.path,
            ...(f.lfs ? { lfs: { oid: sha256(f.bytes), size: f.bytes.length, pointerSize: pointer(f.bytes).length } } : {}),
          })),
        );
      }
      const blobs = !bare && u.searchParams.get("blobs") === "true";
      return json({
        _id: "0123456789abcdef01234567",
        id: repo.id,
        sha: repo.commit,
        private: false,
        siblings: repo.files.map((f) =>
          blobs
            ? {
                rfilename: f.path,
                blobId: f.lfs ? gitBlobSha1(pointer(f.bytes)) : gitBlobSha1(f.bytes),
                size: this.sizeOf(repo, f),
                ...(f.lfs ? { lfs: { sha256: sha256(f.bytes), size: this.sizeOf(repo, f), pointerSize: pointer(f.bytes).length } } : {}),
              }
            : { rfilename: f.path },
        ),
      });
    }

    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (m) {
      if (!this.authorized(req)) return json({ error: "Invalid credentials" }, 401);
      const repo = this.repo(m[1]);
      const file = repo?.files.find((f) => f.path === m![3]);
      if (!repo || !file || (m[2] !== "main" && m[2] !== repo.commit))
        return new Response("Entry not found", { status: 404, headers: { "x-error-code": "EntryNotFound" } });
      const key = `${repo.id}/${file.path}`;
      const common = { "x-repo-commit": repo.commit };
      if (file.lfs) {
        const sha = sha256(file.bytes);
        return new Response(null, {
          status: 302,
          headers: {
            ...common,
            location: `/cdn/${sha}?key=${encodeURIComponent(key)}`,
            etag: `"${gitBlobSha1(pointer(file.bytes))}"`,
            "x-linked-etag": `"${sha}"`,
            "x-linked-size": String(file.bytes.length),
          },
        });
      }
      return this.serve(req, file.bytes, key, { ...common, etag: `"${gitBlobSha1(file.bytes)}"` });
    }

    m = /^\/cdn\/([0-9a-f]{64})$/.exec(path);
    if (m) {
      const key = u.searchParams.get("key") ?? "";
      const [id, ...rest] = key.split("/");
      const repo = this.repo(`${id}/${rest[0]}`);
      const file = repo?.files.find((f) => f.path === rest.slice(1).join("/"));
      if (!file || sha256(file.bytes) !== m[1]) return new Response("NoSuchKey", { status: 404 });
      return this.serve(req, file.bytes, key, { etag: `"${m[1]}"` });
    }

    m = /^\/gh\/(.+)$/.exec(path);
    if (m) {
      const bytes = this.opts.github?.[m[1]];
      if (!bytes) return new Response("404: Not Found", { status: 404 });
      return this.serve(req, bytes, `gh/${m[1]}`, { etag: `W/"${sha256(bytes).slice(0, 20)}"` });
    }
    return new Response("not found", { status: 404 });
  }

  private serve(req: Request, original: Uint8Array, key: string, headers: Record<string, string>): Response {
    const forced = this.status.get(key);
    if (forced !== undefined) return new Response("forced failure", { status: forced });
    let bytes = original;
    if (this.corrupt.has(key)) {
      bytes = original.slice();
      bytes[bytes.length >> 1] ^= 0xff;
    }
    const size = bytes.length;
    const h: Record<string, string> = { ...headers, "accept-ranges": "bytes", "content-type": "application/octet-stream" };
    let start = 0;
    let status = 200;
    const range = req.headers.get("range");
    if (range && this.opts.ranges !== false) {
      const r = /^bytes=(\d+)-$/.exec(range);
      if (r) {
        start = Number(r[1]);
        if (start >= size) return new Response(null, { status: 416, headers: { ...h, "content-range": `bytes */${size}` } });
        status = 206;
        h["content-range"] = `bytes ${start}-${size - 1}/${size}`;
      }
    }
    const body = bytes.subarray(start);
    h["content-length"] = String(body.length);
    if (req.method === "HEAD") return new Response(null, { status, headers: h });

    const half = body.subarray(0, body.length >> 1);
    if (this.dropOnce.delete(key)) {
      // Hand the transfer to the raw listener (via a redirect, like the Hub's CDN hop), which resets midway.
      const head = `HTTP/1.1 ${status} ${status === 206 ? "Partial Content" : "OK"}\r\n${Object.entries(h)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join("")}\r\n`;
      const payload = new Uint8Array([...new TextEncoder().encode(head), ...half]);
      const token = Math.random().toString(36).slice(2);
      this.pendingDrops.set(token, payload);
      return new Response(null, { status: 307, headers: { location: `http://127.0.0.1:${this.dropper!.port}/drop/${token}` } });
    }
    if (this.stallOnce.delete(key)) {
      let sent = false;
      const stream = new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent) return new Promise<void>(() => {}); // never more data, never closed
          sent = true;
          c.enqueue(half);
        },
      });
      return new Response(stream, { status, headers: h });
    }
    if (this.truncateOnce.delete(key)) {
      let sent = false;
      const stream = new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent) return c.close();
          sent = true;
          c.enqueue(half);
        },
      });
      return new Response(stream, { status, headers: h });
    }
    return new Response(body, { status, headers: h });
  }
}

/** The git-lfs pointer file the repository itself stores for an LFS file. */
function pointer(bytes: Uint8Array): Uint8Array {
  return new TextEncoder().encode(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(bytes)}\nsize ${bytes.length}\n`);
}

function json(v: unknown, status = 200): Response {
  return new Response(JSON.stringify(v), { status, headers: { "content-type": "application/json" } });
}

/** Deterministic pseudo-random bytes (a weights stand-in that compresses badly, like real weights). */
export function fakeBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
