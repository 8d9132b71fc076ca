import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../../util/errors.ts";
import { FakeHub, fakeBytes, type FakeRepo } from "./fake-hub.ts";
import { gitBlobSha1, sha256 } from "./hash.ts";
import { silentProgress } from "./progress.ts";
import { expandPullIds, pullClassifier, pullHubModel, pullModels, type PullOptions } from "./pull.ts";
import { resolveModel } from "./resolve.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const bytesOf = (path: string): Uint8Array => new Uint8Array(readFileSync(path));
const COMMIT = "a".repeat(8) + "0123456789abcdef0123456789abcdef";
const WEIGHTS = fakeBytes(300_000, 7);

const esmRepo: FakeRepo = {
  id: "test-org/tiny-esm",
  commit: COMMIT,
  files: [
    { path: "config.json", bytes: enc('{"model_type":"esm","num_hidden_layers":2}\n') },
    { path: "vocab.txt", bytes: enc("<cls>\n<pad>\n<eos>\n<unk>\nL\nA\n") },
    { path: "model.safetensors", bytes: WEIGHTS, lfs: true },
    { path: "tf_model.h5", bytes: fakeBytes(5000, 3), lfs: true },
    { path: "README.md", bytes: enc("# tiny\n") },
    { path: "onnx/model.onnx", bytes: fakeBytes(4000, 4), lfs: true },
  ],
};

const shardA = fakeBytes(120_000, 11);
const shardB = fakeBytes(80_000, 12);
const binRepo: FakeRepo = {
  id: "test-org/sharded-bin",
  commit: "b".repeat(40),
  files: [
    { path: "config.json", bytes: enc("{}") },
    { path: "pytorch_model-00001-of-00002.bin", bytes: shardA, lfs: true },
    { path: "pytorch_model-00002-of-00002.bin", bytes: shardB, lfs: true },
    { path: "pytorch_model.bin.index.json", bytes: enc('{"weight_map":{}}') },
    { path: "flax_model.msgpack", bytes: fakeBytes(3000, 5), lfs: true },
    { path: "training_args.bin", bytes: fakeBytes(100, 6), lfs: true },
  ],
};

const CLS300 = fakeBytes(50_000, 300);
const CLS500 = fakeBytes(60_000, 500);

let hub: FakeHub;
let dir: string;
let env: Record<string, string | undefined>;

function opts(extra: Partial<PullOptions> = {}): PullOptions {
  return { env, endpoint: hub.url, githubBase: `${hub.url}/gh`, progress: silentProgress, retryDelayMs: 1, ...extra };
}

const cacheDir = () => join(dir, "hf", "hub");
const repoDir = (id: string) => join(cacheDir(), `models--${id.replace("/", "--")}`);

beforeAll(() => {
  hub = new FakeHub({ repos: [esmRepo, binRepo], github: { "300_model.pth": CLS300, "500_model.pth": CLS500 } }).start();
});
afterAll(() => hub.stop());
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "virnuc-pull-"));
  env = { HOME: join(dir, "home"), HF_HOME: join(dir, "hf"), VIRNUC_HOME: join(dir, "virnuc") };
  hub.log.length = 0;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a rejection");
}

describe("pullHubModel", () => {
  test("full pull: HF cache layout, only the needed files, then resolvable", async () => {
    const r = await pullHubModel(esmRepo.id, opts());
    expect(r.commit).toBe(COMMIT);
    expect(r.path).toBe(join(repoDir(esmRepo.id), "snapshots", COMMIT));
    expect(r.files.map((f) => f.path).sort()).toEqual(["config.json", "model.safetensors", "vocab.txt"]);
    expect(r.files.every((f) => f.downloaded)).toBe(true);
    expect(r.files.find((f) => f.path === "model.safetensors")!.verified).toBe("sha256");
    expect(r.files.find((f) => f.path === "config.json")!.verified).toBe("git-sha1");

    expect(readFileSync(join(repoDir(esmRepo.id), "refs", "main"), "utf8")).toBe(COMMIT);
    const link = join(r.path, "model.safetensors");
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(`../../blobs/${sha256(WEIGHTS)}`);
    expect(bytesOf(link)).toEqual(WEIGHTS);
    expect(readlinkSync(join(r.path, "config.json"))).toBe(`../../blobs/${gitBlobSha1(esmRepo.files[0].bytes)}`);
    expect(readdirSync(join(repoDir(esmRepo.id), "blobs")).some((f) => f.endsWith(".incomplete"))).toBe(false);

    const fetched = hub.requests((q) => q.path.includes("/resolve/")).map((q) => q.path.split("/").pop());
    expect(fetched.sort()).toEqual(["config.json", "model.safetensors", "vocab.txt"]);
    expect(hub.requests((q) => q.path.startsWith("/api/")).map((q) => q.path)).toEqual([
      `/api/models/${esmRepo.id}/revision/main`,
    ]);

    expect(await resolveModel("esm", esmRepo.id, { env })).toBe(r.path);
  });

  test("a second pull downloads nothing", async () => {
    await pullHubModel(esmRepo.id, opts());
    hub.log.length = 0;
    const r = await pullHubModel(esmRepo.id, opts());
    expect(r.files.every((f) => !f.downloaded)).toBe(true);
    expect(hub.requests((q) => !q.path.startsWith("/api/"))).toEqual([]);
  });

  test("PyTorch .bin shards and their index when there is no safetensors; flax and training_args skipped", async () => {
    const r = await pullHubModel(binRepo.id, opts());
    expect(r.files.map((f) => f.path).sort()).toEqual([
      "config.json",
      "pytorch_model-00001-of-00002.bin",
      "pytorch_model-00002-of-00002.bin",
      "pytorch_model.bin.index.json",
    ]);
    expect(bytesOf(join(r.path, "pytorch_model-00002-of-00002.bin"))).toEqual(shardB);
  });

  test("a connection dropped midway is resumed with a Range request", async () => {
    hub.dropOnce.add(`${esmRepo.id}/model.safetensors`);
    const r = await pullHubModel(esmRepo.id, opts());
    expect(bytesOf(join(r.path, "model.safetensors"))).toEqual(WEIGHTS);
    const cdn = hub.requests((q) => q.path.startsWith("/cdn/"));
    expect(cdn.length).toBe(2);
    expect(cdn[0].range).toBeUndefined();
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(cdn[1].range ?? "")?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThan(WEIGHTS.length);
  });

  test("a transfer that ends early without an error is detected and resumed", async () => {
    hub.truncateOnce.add(`${esmRepo.id}/model.safetensors`);
    const r = await pullHubModel(esmRepo.id, opts());
    expect(bytesOf(join(r.path, "model.safetensors"))).toEqual(WEIGHTS);
    expect(hub.requests((q) => q.path.startsWith("/cdn/"))[1].range).toBe(`bytes=${WEIGHTS.length >> 1}-`);
  });

  test("a stalled transfer is aborted after stallMs and resumed", async () => {
    hub.stallOnce.add(`${esmRepo.id}/model.safetensors`);
    const r = await pullHubModel(esmRepo.id, opts({ stallMs: 200 }));
    expect(bytesOf(join(r.path, "model.safetensors"))).toEqual(WEIGHTS);
    expect(hub.requests((q) => q.path.startsWith("/cdn/"))[1].range).toBe(`bytes=${WEIGHTS.length >> 1}-`);
  });

  test("a server error that persists: retried, then one line saying the partial file is kept for a rerun", async () => {
    const key = `${esmRepo.id}/model.safetensors`;
    hub.status.set(key, 503);
    try {
      const err = await rejection(pullHubModel(esmRepo.id, opts({ retries: 2 })));
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toContain("test-org/tiny-esm/model.safetensors: download failed 3 times in a row");
      expect(err.message).toContain("answered 503");
      expect(err.message).toContain("rerun the same command to resume");
      expect(hub.requests((q) => q.path.startsWith("/cdn/")).length).toBe(3);
      hub.log.length = 0;
      hub.status.set(key, 403);
      await rejection(pullHubModel(esmRepo.id, opts({ retries: 2 })));
      expect(hub.requests((q) => q.path.startsWith("/cdn/")).length).toBe(1);
    } finally {
      hub.status.clear();
    }
  });

  test("a transfer whose size disagrees with the Hub listing is rejected and not kept", async () => {
    const key = `${esmRepo.id}/model.safetensors`;
    hub.announcedSize.set(key, WEIGHTS.length + 10);
    try {
      const err = await rejection(pullHubModel(esmRepo.id, opts()));
      expect(err.message).toBe(
        `test-org/tiny-esm/model.safetensors: server announces ${WEIGHTS.length} bytes but ${WEIGHTS.length + 10} were expected; the partial file was deleted, rerun to download it again`,
      );
      expect(readdirSync(join(repoDir(esmRepo.id), "blobs")).filter((b) => b.startsWith(sha256(WEIGHTS)))).toEqual([]);
      // far more than any disk: refused before a byte is transferred
      hub.log.length = 0;
      hub.announcedSize.set(key, 1e17);
      expect((await rejection(pullHubModel(esmRepo.id, opts()))).message).toMatch(/^test-org\/tiny-esm: needs 100000 TB but .* free: free space/);
      expect(hub.requests((q) => !q.path.startsWith("/api/"))).toEqual([]);
    } finally {
      hub.announcedSize.clear();
    }
  });

  test("a .incomplete file left by an earlier run is continued, not restarted", async () => {
    const blobs = join(repoDir(esmRepo.id), "blobs");
    mkdirSync(blobs, { recursive: true });
    writeFileSync(join(blobs, `${sha256(WEIGHTS)}.incomplete`), WEIGHTS.subarray(0, 123_456));
    const r = await pullHubModel(esmRepo.id, opts());
    expect(bytesOf(join(r.path, "model.safetensors"))).toEqual(WEIGHTS);
    expect(hub.requests((q) => q.path.startsWith("/cdn/")).map((q) => q.range)).toEqual(["bytes=123456-"]);
  });

  test("a .incomplete that is already whole (killed before the rename) is verified without a request", async () => {
    const blobs = join(repoDir(esmRepo.id), "blobs");
    mkdirSync(blobs, { recursive: true });
    writeFileSync(join(blobs, `${sha256(WEIGHTS)}.incomplete`), WEIGHTS);
    const r = await pullHubModel(esmRepo.id, opts());
    expect(bytesOf(join(r.path, "model.safetensors"))).toEqual(WEIGHTS);
    expect(hub.requests((q) => q.path.startsWith("/cdn/"))).toEqual([]);
  });

  test("a server that ignores Range: the part is restarted and still verifies", async () => {
    const plain = new FakeHub({ repos: [esmRepo], ranges: false }).start();
    try {
      const blobs = join(repoDir(esmRepo.id), "blobs");
      mkdirSync(blobs, { recursive: true });
      writeFileSync(join(blobs, `${sha256(WEIGHTS)}.incomplete`), WEIGHTS.subarray(0, 1000));
      const r = await pullHubModel(esmRepo.id, opts({ endpoint: plain.url }));
      expect(bytesOf(join(r.path, "model.safetensors"))).toEqual(WEIGHTS);
    } finally {
      plain.stop();
    }
  });

  test("corrupted LFS bytes are rejected by sha256 and nothing is kept", async () => {
    hub.corrupt.add(`${esmRepo.id}/model.safetensors`);
    try {
      const err = await rejection(pullHubModel(esmRepo.id, opts()));
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toContain("test-org/tiny-esm/model.safetensors: sha256");
      expect(err.message).toContain(`does not match the Hub's ${sha256(WEIGHTS)}`);
      expect(err.message).toContain("virnuc models pull test-org/tiny-esm");
      const blobs = readdirSync(join(repoDir(esmRepo.id), "blobs"));
      expect(blobs.some((b) => b.startsWith(sha256(WEIGHTS)))).toBe(false);
      expect(existsSync(join(repoDir(esmRepo.id), "snapshots", COMMIT, "model.safetensors"))).toBe(false);
    } finally {
      hub.corrupt.clear();
    }
  });

  test("a corrupted partial download fails verification and is deleted", async () => {
    const blobs = join(repoDir(esmRepo.id), "blobs");
    mkdirSync(blobs, { recursive: true });
    const bad = WEIGHTS.slice(0, 1000);
    bad[10] ^= 1;
    const part = join(blobs, `${sha256(WEIGHTS)}.incomplete`);
    writeFileSync(part, bad);
    const err = await rejection(pullHubModel(esmRepo.id, opts()));
    expect(err.message).toContain("sha256");
    expect(existsSync(part)).toBe(false);
    // and the next run starts from scratch and succeeds
    const r = await pullHubModel(esmRepo.id, opts());
    expect(bytesOf(join(r.path, "model.safetensors"))).toEqual(WEIGHTS);
  });

  test("corrupted small (non-LFS) files are rejected by their git blob id", async () => {
    hub.corrupt.add(`${esmRepo.id}/config.json`);
    try {
      const err = await rejection(pullHubModel(esmRepo.id, opts()));
      expect(err.message).toContain("test-org/tiny-esm/config.json: git blob id");
      expect(err.message).toContain(gitBlobSha1(esmRepo.files[0].bytes));
    } finally {
      hub.corrupt.clear();
    }
  });

  test("a mirror without file metadata: hashes come from the resolve headers (X-Linked-Etag, ETag)", async () => {
    const mirror = new FakeHub({ repos: [esmRepo], metadata: "bare" }).start();
    try {
      const r = await pullHubModel(esmRepo.id, opts({ endpoint: mirror.url }));
      expect(r.files.find((f) => f.path === "model.safetensors")).toMatchObject({ blob: sha256(WEIGHTS), verified: "sha256" });
      expect(r.files.find((f) => f.path === "config.json")!.verified).toBe("git-sha1");
      expect(mirror.requests((q) => q.method === "HEAD" && q.path.includes("/resolve/")).length).toBe(3);
    } finally {
      mirror.stop();
    }
  });

  test("HF_TOKEN is sent as a bearer token; without it a clear error", async () => {
    const gated = new FakeHub({ repos: [esmRepo], requireToken: "hf_secret" }).start();
    try {
      const err = await rejection(pullHubModel(esmRepo.id, opts({ endpoint: gated.url })));
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toBe(`test-org/tiny-esm: ${gated.url} requires a token: set HF_TOKEN`);
      env.HF_TOKEN = "hf_wrong";
      expect((await rejection(pullHubModel(esmRepo.id, opts({ endpoint: gated.url })))).message).toContain("rejected HF_TOKEN");
      env.HF_TOKEN = "hf_secret";
      const r = await pullHubModel(esmRepo.id, opts({ endpoint: gated.url }));
      expect(r.files.length).toBe(3);
      expect(gated.requests((q) => q.path.includes("/resolve/")).every((q) => q.auth === "Bearer hf_secret")).toBe(true);
    } finally {
      gated.stop();
    }
  });

  test("the token file written by huggingface-cli login is used", async () => {
    const gated = new FakeHub({ repos: [esmRepo], requireToken: "hf_file" }).start();
    try {
      mkdirSync(join(dir, "hf"), { recursive: true });
      writeFileSync(join(dir, "hf", "token"), "hf_file\n");
      const r = await pullHubModel(esmRepo.id, opts({ endpoint: gated.url }));
      expect(r.commit).toBe(COMMIT);
    } finally {
      gated.stop();
    }
  });

  test("$HF_ENDPOINT is the default endpoint; unknown ids and unreachable endpoints are one-line errors", async () => {
    env.HF_ENDPOINT = hub.url;
    const r = await pullHubModel(esmRepo.id, { ...opts(), endpoint: undefined });
    expect(r.commit).toBe(COMMIT);
    const missing = await rejection(pullHubModel("test-org/nope", opts()));
    expect(missing.message).toBe(`test-org/nope: no such model on ${hub.url} (a private or gated model also needs HF_TOKEN); check the id`);
    const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    const deadUrl = `http://127.0.0.1:${closed.port}`;
    closed.stop(true);
    const dead = await rejection(pullHubModel(esmRepo.id, opts({ endpoint: deadUrl, retries: 0 })));
    expect(dead).toBeInstanceOf(UserError);
    expect(dead.message).toStartWith(`cannot reach ${deadUrl}`);
    expect(dead.message).toContain("HF_ENDPOINT");
  });
});

describe("classifiers", () => {
  const ids = { "300_model.pth": gitBlobSha1(CLS300), "500_model.pth": gitBlobSha1(CLS500) };

  test("pulled into $VIRNUC_HOME/classifiers, verified, then the default for the chunk size", async () => {
    const r = await pullClassifier("300_model.pth", opts({ classifierIds: ids }));
    expect(r.path).toBe(join(dir, "virnuc", "classifiers", "300_model.pth"));
    expect(bytesOf(r.path)).toEqual(CLS300);
    expect(await resolveModel("classifier", undefined, { chunkSize: 300, env, cwd: dir })).toBe(r.path);
    hub.log.length = 0;
    const again = await pullClassifier("300_model.pth", opts({ classifierIds: ids }));
    expect(again.files[0].downloaded).toBe(false);
    expect(hub.log).toEqual([]);
  });

  test("bytes that are not VirNucPro's release are rejected and deleted", async () => {
    // The real ids (spec §1.5) cannot match the fake bytes.
    const err = await rejection(pullClassifier("500_model.pth", opts()));
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain(`500_model.pth from ${hub.url}/gh/500_model.pth: git blob id ${gitBlobSha1(CLS500)}`);
    expect(err.message).toContain("fc35d5ef9f1f4564eea7036f34f4f8ec6000d33d");
    expect(readdirSync(join(dir, "virnuc", "classifiers"))).toEqual([]);
  });

  test("an interrupted classifier download resumes", async () => {
    hub.dropOnce.add("gh/500_model.pth");
    const r = await pullClassifier("500_model.pth", opts({ classifierIds: ids }));
    expect(bytesOf(r.path)).toEqual(CLS500);
    expect(hub.requests((q) => q.path === "/gh/500_model.pth").map((q) => q.range)).toEqual([undefined, `bytes=${CLS500.length >> 1}-`]);
  });

  test("GitHub never receives the Hub token", async () => {
    env.HF_TOKEN = "hf_secret";
    await pullClassifier("300_model.pth", opts({ classifierIds: ids }));
    expect(hub.requests((q) => q.path.startsWith("/gh/")).every((q) => q.auth === undefined)).toBe(true);
  });
});

describe("pullModels", () => {
  test("no ids: the default ESM-2, DNABERT-S and both classifiers", () => {
    expect(expandPullIds([])).toEqual(["facebook/esm2_t36_3B_UR50D", "zhihan1996/DNABERT-S", "300_model.pth", "500_model.pth"]);
    expect(expandPullIds(["esm", "classifiers", "esm"])).toEqual(["facebook/esm2_t36_3B_UR50D", "300_model.pth", "500_model.pth"]);
    expect(() => expandPullIds(["not an id"])).toThrow("'not an id': not a Hub id (org/name)");
  });

  test("a mix of Hub ids and classifiers, with an output directory", async () => {
    const out = join(dir, "weights");
    const res = await pullModels([esmRepo.id, "500_model.pth"], opts({ cacheDir: out, classifierDir: out, classifierIds: { "500_model.pth": gitBlobSha1(CLS500) } }));
    expect(res.map((r) => r.path)).toEqual([join(out, "models--test-org--tiny-esm", "snapshots", COMMIT), join(out, "500_model.pth")]);
    expect(await resolveModel("esm", esmRepo.id, { env: { ...env, HF_HUB_CACHE: out } })).toBe(res[0].path);
  });
});
