import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseContentRange } from "./download.ts";
import { fakeBytes } from "./fake-hub.ts";
import { gitBlobSha1, gitBlobSha1File, sha256, sha256File } from "./hash.ts";
import { normalizeEtag } from "./http.ts";
import { parseRevisionInfo, parseTree, resolveUrl, selectModelFiles } from "./hub-api.ts";
import { formatBytes, formatDuration, plainProgress, terminalProgress } from "./progress.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "virnuc-units-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("hashes", () => {
  test("git blob ids match git hash-object", () => {
    expect(gitBlobSha1(new TextEncoder().encode("hello\n"))).toBe("ce013625030ba8dba906f756967f9e9ca394464a");
    expect(gitBlobSha1(new Uint8Array(0))).toBe("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
  });

  test("file hashes equal in-memory hashes across the read-buffer boundary", () => {
    const bytes = fakeBytes((8 << 20) + 12_345, 42);
    const p = join(dir, "big.bin");
    writeFileSync(p, bytes);
    const seen: number[] = [];
    expect(sha256File(p, (n) => seen.push(n))).toBe(sha256(bytes));
    expect(seen).toEqual([8 << 20, bytes.length]);
    expect(gitBlobSha1File(p)).toBe(gitBlobSha1(bytes));
    expect(sha256(new Uint8Array(0))).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  });
});

describe("Hub API answers", () => {
  test("revision endpoint with ?blobs=true", () => {
    const info = parseRevisionInfo("facebook/esm2_t6_8M_UR50D", {
      _id: "621ffdc036468d709f17434d",
      id: "facebook/esm2_t6_8M_UR50D",
      sha: "c731040fc0dfd3b6a2f4cbf2cbe2ba4e1b6f1a43",
      siblings: [
        { rfilename: ".gitattributes", blobId: "c7d9f3332a950355d5a77d85000f05e6f45435ea", size: 1477 },
        { rfilename: "config.json", blobId: "1ac1a9e3c1d1e1f6e2b5d8c4b6f4f0b2d4a7c1e9", size: 724 },
        {
          rfilename: "model.safetensors",
          blobId: "8b7f0f8b3e2d7a1f4e6d5c3b2a1f0e9d8c7b6a59",
          size: 31_384_424,
          lfs: { sha256: "a".repeat(64), size: 31_384_424, pointerSize: 134 },
        },
      ],
    });
    expect(info.commit).toBe("c731040fc0dfd3b6a2f4cbf2cbe2ba4e1b6f1a43");
    expect(info.files[1]).toEqual({ path: "config.json", size: 724, blobId: "1ac1a9e3c1d1e1f6e2b5d8c4b6f4f0b2d4a7c1e9", lfsSha256: undefined });
    expect(info.files[2].lfsSha256).toBe("a".repeat(64));
    expect(() => parseRevisionInfo("x/y", { error: "nope" })).toThrow("no 'sha'");
  });

  test("tree endpoint (lfs.oid is the sha256)", () => {
    const files = parseTree([
      { type: "directory", oid: "1".repeat(40), path: "onnx" },
      { type: "file", oid: "2".repeat(40), size: 134, path: "pytorch_model.bin", lfs: { oid: "b".repeat(64), size: 5_000, pointerSize: 134 } },
    ]);
    expect(files).toEqual([{ path: "pytorch_model.bin", size: 5_000, blobId: "2".repeat(40), lfsSha256: "b".repeat(64) }]);
  });

  test("which files a pull takes", () => {
    const esm3b = [
      ".gitattributes",
      "README.md",
      "config.json",
      "pytorch_model-00001-of-00002.bin",
      "pytorch_model-00002-of-00002.bin",
      "pytorch_model.bin.index.json",
      "special_tokens_map.json",
      "tf_model-00001-of-00002.h5",
      "tf_model-00002-of-00002.h5",
      "tf_model.h5.index.json",
      "tokenizer_config.json",
      "vocab.txt",
    ];
    expect(selectModelFiles(esm3b)).toEqual([
      "config.json",
      "special_tokens_map.json",
      "tokenizer_config.json",
      "vocab.txt",
      "pytorch_model-00001-of-00002.bin",
      "pytorch_model-00002-of-00002.bin",
      "pytorch_model.bin.index.json",
    ]);
    const both = ["config.json", "model.safetensors", "pytorch_model.bin", "flax_model.msgpack", "onnx/model.onnx", "rust_model.ot"];
    expect(selectModelFiles(both)).toEqual(["config.json", "model.safetensors"]);
  });

  test("resolve URLs and etags", () => {
    expect(resolveUrl("https://huggingface.co", "o/m", "abc", "sub dir/a+b.json")).toBe("https://huggingface.co/o/m/resolve/abc/sub%20dir/a%2Bb.json");
    expect(normalizeEtag('W/"abc"')).toBe("abc");
    expect(normalizeEtag('"abc"')).toBe("abc");
    expect(normalizeEtag(null)).toBeUndefined();
    expect(parseContentRange("bytes 100-199/1000")).toEqual({ start: 100, total: 1000 });
    expect(parseContentRange("bytes */1000")).toEqual({ start: undefined, total: 1000 });
    expect(parseContentRange("garbage")).toEqual({});
  });
});

describe("progress", () => {
  test("sizes and durations", () => {
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(1500)).toBe("1.50 kB");
    expect(formatBytes(11_400_000_000)).toBe("11.4 GB");
    expect(formatDuration(65)).toBe("1:05");
    expect(formatDuration(3725)).toBe("1:02:05");
    expect(formatDuration(Infinity)).toBe("--:--");
  });

  test("plain lines: start, every 30 s, done (for logs)", () => {
    const lines: string[] = [];
    let t = 0;
    const sink = plainProgress({ write: (s: string) => lines.push(s) }, () => t);
    const bar = sink.start("o/m/model.bin", 100_000_000, 20_000_000);
    t = 10_000;
    bar.update(30_000_000);
    t = 40_000;
    bar.update(60_000_000);
    t = 50_000;
    bar.update(100_000_000);
    bar.finish();
    expect(lines).toEqual([
      "o/m/model.bin: 100 MB (resuming at 20.0 MB)\n",
      "o/m/model.bin: 60% 60.0 MB at 1.00 MB/s, ETA 0:40\n",
      "o/m/model.bin: done, 100 MB in 0:50 (1.60 MB/s)\n",
    ]);
  });

  test("terminal bar: percent, bytes, rate and ETA on one redrawn line", () => {
    let buf = "";
    let t = 0;
    const sink = terminalProgress({ write: (s: string) => (buf += s), columns: 100 }, () => t);
    const bar = sink.start("model.safetensors", 1_000_000);
    t = 1000;
    bar.update(250_000);
    const line = buf.split("\r").at(-1)!;
    expect(line).toContain("model.safetensors");
    expect(line).toContain(" 25% 250 kB/1.00 MB 250 kB/s ETA 0:03");
    expect(line.replace("\x1b[2K", "").length).toBeLessThanOrEqual(100);
    t = 2000;
    bar.finish();
    expect(buf.endsWith("\n")).toBe(true);
  });
});
