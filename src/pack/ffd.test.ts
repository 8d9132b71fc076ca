import { describe, expect, test } from "bun:test";
import { fillBatch, packFFD, type Packing } from "./ffd.ts";

/** Textbook first-fit decreasing with a linear scan over the batches. */
function bruteFFD(lengths: number[], budget: number, maxSeqs = Infinity): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b] - lengths[a] || a - b);
  const batches: { idx: number[]; used: number; closed: boolean }[] = [];
  for (const i of order) {
    const len = lengths[i];
    if (len > budget) {
      batches.push({ idx: [i], used: len, closed: true });
      continue;
    }
    const b = batches.find((x) => !x.closed && x.idx.length < maxSeqs && x.used + len <= budget);
    if (b) {
      b.idx.push(i);
      b.used += len;
    } else batches.push({ idx: [i], used: len, closed: false });
  }
  return batches.map((b) => b.idx);
}

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Checks the packing invariants; returns the batches as plain arrays. */
function checkInvariants(p: Packing, lengths: number[], budget: number, maxSeqs = Infinity): number[][] {
  const seen = new Uint8Array(lengths.length);
  let total = 0;
  for (const b of p.batches) {
    let sum = 0;
    for (const i of b.indices) {
      expect(seen[i]).toBe(0);
      seen[i] = 1;
      sum += lengths[i];
    }
    expect(b.tokens).toBe(sum);
    expect(b.indices.length).toBeGreaterThan(0);
    expect(b.indices.length).toBeLessThanOrEqual(maxSeqs);
    if (sum > budget) expect(b.indices.length).toBe(1); // only a single oversize sequence may exceed
    total += sum;
  }
  expect(seen.every((x) => x === 1)).toBe(true);
  expect(p.budget).toBe(budget);
  expect(p.efficiency).toBeCloseTo(p.batches.length ? total / (p.batches.length * budget) : 0, 12);
  return p.batches.map((b) => Array.from(b.indices));
}

describe("packFFD", () => {
  test("a small exact case", () => {
    const lengths = [3, 7, 5, 2, 5, 1];
    const p = packFFD(lengths, 10);
    // decreasing: 7(1) 5(2) 5(4) 3(0) 2(3) 1(5)
    expect(p.batches.map((b) => Array.from(b.indices))).toEqual([[1, 0], [2, 4], [3, 5]]);
    expect(p.batches.map((b) => b.tokens)).toEqual([10, 10, 3]);
    expect(p.efficiency).toBeCloseTo(23 / 30, 12);
  });

  test("oversize sequences get a batch of their own", () => {
    const p = packFFD([4, 15, 3, 12, 6], 10);
    expect(p.batches.map((b) => Array.from(b.indices))).toEqual([[1], [3], [4, 0], [2]]);
    expect(p.batches.map((b) => b.tokens)).toEqual([15, 12, 10, 3]);
  });

  test("maxSeqs caps sequences per batch", () => {
    const p = packFFD([1, 1, 1, 1, 1, 1, 1], 100, { maxSeqs: 3 });
    expect(p.batches.map((b) => Array.from(b.indices))).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
  });

  test("empty input, zero lengths, exact fits", () => {
    const empty = packFFD([], 8);
    expect(empty.batches).toEqual([]);
    expect(empty.efficiency).toBe(0);
    const p = packFFD([8, 0, 8, 0], 8);
    expect(p.batches.map((b) => Array.from(b.indices))).toEqual([[0, 1, 3], [2]]);
    expect(p.efficiency).toBe(1);
  });

  test("matches brute-force first-fit decreasing on random cases", () => {
    const r = rng(11);
    for (let c = 0; c < 400; c++) {
      const n = Math.floor(r() * 60);
      const budget = 1 + Math.floor(r() * 200);
      const maxLen = Math.floor(r() * budget * 1.3) + 1;
      const lengths = Array.from({ length: n }, () => Math.floor(r() * maxLen));
      const maxSeqs = c % 3 === 0 ? 1 + Math.floor(r() * 6) : undefined;
      const p = packFFD(lengths, budget, maxSeqs === undefined ? {} : { maxSeqs });
      const got = checkInvariants(p, lengths, budget, maxSeqs);
      expect(got).toEqual(bruteFFD(lengths, budget, maxSeqs));
    }
  });

  test("lengths beyond the counting-sort range sort the same way", () => {
    const lengths = [3_000_000, 5, 2_000_000, 5, 3_000_000, 1];
    const p = packFFD(lengths, 4_000_000);
    expect(checkInvariants(p, lengths, 4_000_000)).toEqual(bruteFFD(lengths, 4_000_000));
  });

  test("deterministic, and typed-array input equals plain arrays", () => {
    const r = rng(5);
    const lengths = Array.from({ length: 5000 }, () => 10 + Math.floor(r() * 160));
    const a = packFFD(lengths, 4096);
    const b = packFFD(Int32Array.from(lengths), 4096);
    expect(b.batches.map((x) => Array.from(x.indices))).toEqual(a.batches.map((x) => Array.from(x.indices)));
    expect(b.efficiency).toBe(a.efficiency);
    // VirNucPro-shaped proteins pack nearly perfectly
    expect(a.efficiency).toBeGreaterThan(0.99);
  });

  test("invalid budget, lengths or maxSeqs are rejected", () => {
    expect(() => packFFD([1], 0)).toThrow(RangeError);
    expect(() => packFFD([1], 2.5)).toThrow(RangeError);
    expect(() => packFFD([-1], 4)).toThrow(RangeError);
    expect(() => packFFD([1.5], 4)).toThrow(RangeError);
    expect(() => packFFD([1], 4, { maxSeqs: 0 })).toThrow(RangeError);
  });
});

describe("fillBatch", () => {
  test("writes tokens back to back and cu_seqlens from 0", () => {
    const seqs = [Int32Array.of(1, 10, 2), Int32Array.of(1, 20, 21, 22, 2), Int32Array.of(1, 2)];
    const p = packFFD(seqs.map((s) => s.length), 16);
    expect(p.batches.length).toBe(1);
    const tokens = new Int32Array(16).fill(-1);
    const cu = new Int32Array(5).fill(-1);
    expect(fillBatch(p.batches[0], seqs, tokens, cu)).toEqual({ nTokens: 10, nSeqs: 3 });
    // placement order: longest first
    expect(Array.from(tokens.subarray(0, 10))).toEqual([1, 20, 21, 22, 2, 1, 10, 2, 1, 2]);
    expect(Array.from(cu.subarray(0, 4))).toEqual([0, 5, 8, 10]);
    expect(tokens[10]).toBe(-1);
    expect(cu[4]).toBe(-1);
  });

  test("every batch of a packing round-trips its sequences", () => {
    const r = rng(9);
    const seqs = Array.from({ length: 300 }, (_, i) => Int32Array.from({ length: 2 + Math.floor(r() * 60) }, (_, j) => i * 1000 + j));
    const p = packFFD(seqs.map((s) => s.length), 256);
    const tokens = new Int32Array(256);
    const cu = new Int32Array(300 + 1);
    for (const b of p.batches) {
      const { nTokens, nSeqs } = fillBatch(b, seqs, tokens, cu);
      expect(nTokens).toBe(b.tokens);
      expect(nSeqs).toBe(b.indices.length);
      for (let k = 0; k < nSeqs; k++) {
        expect(Array.from(tokens.subarray(cu[k], cu[k + 1]))).toEqual(Array.from(seqs[b.indices[k]]));
      }
    }
  });

  test("buffers that are too small are rejected", () => {
    const seqs = [Int32Array.of(1, 2, 3), Int32Array.of(4, 5)];
    const batch = { indices: Int32Array.of(0, 1), tokens: 5 };
    expect(() => fillBatch(batch, seqs, new Int32Array(4), new Int32Array(3))).toThrow(RangeError);
    expect(() => fillBatch(batch, seqs, new Int32Array(5), new Int32Array(2))).toThrow(RangeError);
  });
});
