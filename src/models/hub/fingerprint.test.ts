import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fingerprint, hubBlobSha256 } from "./fingerprint.ts";
import { gitBlobSha1, sha256 } from "./hash.ts";
import { verifyPath } from "./verify.ts";

const root = mkdtempSync(join(tmpdir(), "virnuc-fingerprint-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string) => {
  const d = join(root, `${name}-${n++}`);
  mkdirSync(d, { recursive: true });
  return d;
};
const bytes = (s: string) => new TextEncoder().encode(s);

/**
 * A Hugging Face cache repository as huggingface_hub leaves it: blobs/<name> and
 * snapshots/<rev>/<path> -> ../../blobs/<name> (LFS files named by sha256, others by git blob id).
 */
function fakeRepo(cache: string, id: string, files: { path: string; data: Uint8Array; lfs: boolean; blobName?: string }[]) {
  const repo = join(cache, `models--${id.replace("/", "--")}`);
  const rev = "0123456789abcdef0123456789abcdef01234567";
  const snap = join(repo, "snapshots", rev);
  mkdirSync(join(repo, "blobs"), { recursive: true });
  mkdirSync(join(repo, "refs"), { recursive: true });
  writeFileSync(join(repo, "refs", "main"), rev);
  const out: Record<string, { link: string; blob: string }> = {};
  for (const f of files) {
    const name = f.blobName ?? (f.lfs ? sha256(f.data) : gitBlobSha1(f.data));
    const blob = join(repo, "blobs", name);
    writeFileSync(blob, f.data);
    const link = join(snap, f.path);
    mkdirSync(join(link, ".."), { recursive: true });
    const depth = f.path.split("/").length + 1;
    symlinkSync(`${"../".repeat(depth)}blobs/${name}`, link);
    out[f.path] = { link, blob };
  }
  return { repo, snap, files: out };
}

describe("model file fingerprints", () => {
  test("an LFS file of the Hub cache: the blob name is its sha256, nothing is read or cached", () => {
    const dir = fresh("lfs");
    const weights = bytes("pretend safetensors ".repeat(1000));
    const r = fakeRepo(join(dir, "hub"), "facebook/esm2_t6_8M_UR50D", [
      { path: "model.safetensors", data: weights, lfs: true },
      { path: "sub/dir/shard.bin", data: bytes("nested shard"), lfs: true },
    ]);
    const cacheFile = join(dir, "virnuc", "file-hashes.json");
    const a = fingerprint(r.files["model.safetensors"].link, { cacheFile });
    expect(a.source).toBe("hub-blob-name");
    expect(a.fp).toEqual({ path: r.files["model.safetensors"].link, bytes: weights.length, sha256: sha256(weights) });
    const b = fingerprint(r.files["sub/dir/shard.bin"].link, { cacheFile });
    expect(b.source).toBe("hub-blob-name");
    expect(b.fp.sha256).toBe(sha256(bytes("nested shard")));
    expect(existsSync(cacheFile)).toBe(false);
  });

  test("the name is trusted without reading (a damaged blob keeps its name); models verify catches it", () => {
    const dir = fresh("damaged");
    const good = bytes("the published weights");
    const r = fakeRepo(join(dir, "hub"), "org/model", [{ path: "model.safetensors", data: good, lfs: true }]);
    writeFileSync(r.files["model.safetensors"].blob, bytes("the published weightz")); // same size, one byte off
    const f = fingerprint(r.files["model.safetensors"].link, { cacheFile: join(dir, "h.json") });
    expect(f.source).toBe("hub-blob-name");
    expect(f.fp.sha256).toBe(sha256(good));
    const v = verifyPath(r.snap);
    expect(v).toHaveLength(1);
    expect(v[0].status).toBe("MISMATCH");
    expect(v[0].expected).toBe(sha256(good));
    expect(v[0].actual).toBe(sha256(bytes("the published weightz")));
  });

  test("a snapshot reached through a linked folder is still the cache layout", () => {
    const dir = fresh("linked-dir");
    const data = bytes("weights behind a folder link");
    const r = fakeRepo(join(dir, "hub"), "org/model", [{ path: "model.safetensors", data, lfs: true }]);
    symlinkSync(r.snap, join(dir, "my-model"));
    const f = fingerprint(join(dir, "my-model", "model.safetensors"), { cacheFile: join(dir, "h.json") });
    expect(f.source).toBe("hub-blob-name");
    expect(f.fp.sha256).toBe(sha256(data));
  });

  test("files the layout does not vouch for are hashed, then cached", () => {
    const dir = fresh("hashed");
    const cacheFile = join(dir, "h.json");
    const hub = join(dir, "hub");
    const cfg = bytes('{"hidden_size": 320}');
    const lfs = bytes("lfs weights");
    const r = fakeRepo(hub, "org/model", [
      { path: "config.json", data: cfg, lfs: false }, // git blob id name: not a sha256
      { path: "model.safetensors", data: lfs, lfs: true },
    ]);
    const other = fakeRepo(hub, "org/other", [{ path: "x.bin", data: bytes("x"), lfs: true }]);
    // a link into the blobs of another repository
    symlinkSync(other.files["x.bin"].blob, join(r.snap, "foreign.bin"));
    // a link from outside any snapshot into a blob
    symlinkSync(r.files["model.safetensors"].blob, join(dir, "outside.safetensors"));
    // a copied cache (no links), and a blob name that only looks like a hash
    writeFileSync(join(r.snap, "copied.safetensors"), lfs);
    const fake = "F".repeat(64);
    writeFileSync(join(r.repo, "blobs", fake), lfs);
    symlinkSync(`../../blobs/${fake}`, join(r.snap, "upper.safetensors"));
    // a blob that is itself a link
    const linkedName = sha256(bytes("linked blob"));
    writeFileSync(join(dir, "elsewhere"), bytes("linked blob"));
    symlinkSync(join(dir, "elsewhere"), join(r.repo, "blobs", linkedName));
    symlinkSync(`../../blobs/${linkedName}`, join(r.snap, "linked.bin"));

    const cases: [string, Uint8Array][] = [
      [r.files["config.json"].link, cfg],
      [join(r.snap, "foreign.bin"), bytes("x")],
      [join(dir, "outside.safetensors"), lfs],
      [join(r.snap, "copied.safetensors"), lfs],
      [join(r.snap, "upper.safetensors"), lfs],
      [join(r.snap, "linked.bin"), bytes("linked blob")],
    ];
    for (const [path, data] of cases) {
      expect(hubBlobSha256(path)).toBeUndefined();
      const first = fingerprint(path, { cacheFile });
      expect([path, first.source]).toEqual([path, "hashed"]);
      expect(first.fp.sha256).toBe(sha256(data));
      const again = fingerprint(path, { cacheFile });
      expect([path, again.source]).toEqual([path, "cache"]);
      expect(again.fp).toEqual(first.fp);
    }
    const saved = JSON.parse(readFileSync(cacheFile, "utf8"));
    expect(Object.keys(saved)).toHaveLength(cases.length);
    expect(saved[join(dir, "outside.safetensors")]).toMatchObject({ bytes: lfs.length, sha256: sha256(lfs) });
    expect(typeof saved[join(dir, "outside.safetensors")].ino).toBe("number");
  });

  test("the cache key is (path, size, mtime, inode)", () => {
    const dir = fresh("key");
    const cacheFile = join(dir, "h.json");
    const p = join(dir, "model.bin");
    writeFileSync(p, bytes("AAAA"));
    const t = new Date("2026-01-02T03:04:05Z");
    utimesSync(p, t, t);
    expect(fingerprint(p, { cacheFile }).source).toBe("hashed");
    expect(fingerprint(p, { cacheFile }).source).toBe("cache");
    // replaced by another file of the same size and mtime (a copy-and-rename): new inode
    const tmp = join(dir, "model.bin.new");
    writeFileSync(tmp, bytes("BBBB"));
    utimesSync(tmp, t, t);
    renameSync(tmp, p);
    expect(statSync(p).size).toBe(4);
    const replaced = fingerprint(p, { cacheFile });
    expect(replaced.source).toBe("hashed");
    expect(replaced.fp.sha256).toBe(sha256(bytes("BBBB")));
    // rewritten in place with another size
    writeFileSync(p, bytes("CCCCC"));
    expect(fingerprint(p, { cacheFile }).fp.sha256).toBe(sha256(bytes("CCCCC")));
    // a newer mtime
    utimesSync(p, new Date(), new Date());
    expect(fingerprint(p, { cacheFile }).source).toBe("hashed");
  });

  test("entries of the older cache format (no inode) and damaged cache files are re-hashed", () => {
    const dir = fresh("old");
    const cacheFile = join(dir, "h.json");
    const p = join(dir, "w.bin");
    writeFileSync(p, bytes("weights"));
    const st = statSync(p);
    writeFileSync(cacheFile, JSON.stringify({ [p]: { bytes: st.size, mtimeMs: st.mtimeMs, sha256: "0".repeat(64) } }));
    const f = fingerprint(p, { cacheFile });
    expect(f.source).toBe("hashed");
    expect(f.fp.sha256).toBe(sha256(bytes("weights")));
    writeFileSync(cacheFile, "{not json");
    expect(fingerprint(p, { cacheFile }).source).toBe("hashed");
    expect(fingerprint(p, { cacheFile }).source).toBe("cache");
  });

  test("$VIRNUC_HOME holds the cache; an unwritable one only costs a re-hash", () => {
    const dir = fresh("home");
    const p = join(dir, "w.bin");
    writeFileSync(p, bytes("weights"));
    const env = { VIRNUC_HOME: join(dir, "vh") };
    expect(fingerprint(p, { env }).source).toBe("hashed");
    expect(existsSync(join(dir, "vh", "file-hashes.json"))).toBe(true);
    expect(fingerprint(p, { env }).source).toBe("cache");
    const ro = join(dir, "ro");
    mkdirSync(ro);
    chmodSync(ro, 0o500);
    try {
      const a = fingerprint(p, { cacheFile: join(ro, "sub", "h.json") });
      expect(a.fp.sha256).toBe(sha256(bytes("weights")));
    } finally {
      chmodSync(ro, 0o700);
    }
  });
});
