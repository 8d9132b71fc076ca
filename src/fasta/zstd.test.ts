import { describe, expect, test } from "bun:test";
import { ZstdFrames } from "./zstd.ts";

const enc = (s: string) => new Uint8Array(Bun.zstdCompressSync(Buffer.from(s)));
const walk = (b: Uint8Array, pieces = 1): string | null => {
  const f = new ZstdFrames();
  const step = Math.max(1, Math.ceil(b.length / pieces));
  for (let i = 0; i < b.length; i += step) {
    const e = f.feed(b.subarray(i, i + step));
    if (e) return e;
  }
  return f.end();
};

describe("ZstdFrames", () => {
  const big = enc(">a\n" + Array.from({ length: 20000 }, (_, i) => `ACGT${i % 97}`).join("\n"));
  const small = enc(">b\nAC\n");

  test("complete streams pass, fed whole or byte by byte; several frames; a skippable frame", () => {
    expect(walk(big)).toBeNull();
    expect(walk(big, big.length)).toBeNull();
    const skippable = new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9]);
    expect(walk(new Uint8Array([...small, ...skippable, ...big, ...small]), 7)).toBeNull();
  });

  test("every truncation point is an error", () => {
    for (let cut = 0; cut < small.length; cut++) expect(walk(small.subarray(0, cut))).not.toBeNull();
    for (let cut = 1; cut < big.length; cut += Math.ceil(big.length / 300)) expect(walk(big.subarray(0, cut))).toContain("truncated");
  });

  test("bytes after the last frame that are not zstd are an error", () => {
    expect(walk(new Uint8Array([...small, 1, 2, 3, 4]))).toContain("not zstd data");
  });
});
