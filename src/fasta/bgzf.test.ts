import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { gunzipSync, gzipSync } from "node:zlib";
import { bgzfBlocks, bgzfCompress, bgzfText, isBgzf } from "./bgzf.ts";

const root = mkdtempSync(join(tmpdir(), "virnuc-bgzf-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function text(n: number): Uint8Array {
  let s = 1;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = i % 61 === 60 ? 10 : "ACGT".charCodeAt((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 30);
  return out;
}

describe("BGZF", () => {
  const data = text(300_000);
  const path = join(root, "x.fa.gz");
  writeFileSync(path, bgzfCompress(data, 10_000));

  test("bgzfCompress writes gzip that gunzip reads; its blocks decompress to the text with their offsets", () => {
    expect(Buffer.from(gunzipSync(readFileSync(path))).equals(Buffer.from(data))).toBe(true);
    expect(isBgzf(path)).toBe(true);
    const blocks = [...bgzfBlocks(path)];
    expect(blocks.length).toBe(30);
    let u = 0;
    for (const b of blocks) {
      expect(b.uoffset).toBe(u);
      expect(Buffer.from(b.data).equals(Buffer.from(data.subarray(u, u + b.data.length)))).toBe(true);
      u += b.data.length;
    }
    expect(u).toBe(data.length);
    const plain = join(root, "plain.gz");
    writeFileSync(plain, gzipSync(data));
    expect(isBgzf(plain)).toBe(false);
  });

  test("the text from any offset, starting at its block", async () => {
    const blocks = [...bgzfBlocks(path)];
    const b = blocks[17];
    for (const from of [b.uoffset, b.uoffset + 1, b.uoffset + 9_999]) {
      const parts: Uint8Array[] = [];
      let read = 0;
      for await (const c of bgzfText(path, from, b, (n) => (read += n))) parts.push(c.slice());
      expect(Buffer.concat(parts).equals(Buffer.from(data.subarray(from)))).toBe(true);
      expect(read).toBeLessThan(Bun.file(path).size - b.coffset + 1); // nothing before the block
    }
  });

  test("damage is one clear error", () => {
    const bytes = readFileSync(path);
    const bad = join(root, "bad.gz");
    const second = [...bgzfBlocks(path)][1].coffset;
    const flipped = Buffer.from(bytes);
    flipped[second] = 0; // the second block's magic
    writeFileSync(bad, flipped);
    expect(() => [...bgzfBlocks(bad)]).toThrow(new RegExp(`byte ${second} is not the start of a BGZF block`));
    writeFileSync(bad, bytes.subarray(0, second + 100));
    expect(() => [...bgzfBlocks(bad)]).toThrow(/truncated BGZF block/);
    const corrupt = Buffer.from(bytes);
    corrupt[second + 30] ^= 0xff;
    writeFileSync(bad, corrupt);
    expect(() => [...bgzfBlocks(bad)]).toThrow(/BGZF block at byte/);
  });
});
