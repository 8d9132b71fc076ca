import { describe, expect, test } from "bun:test";
import { windowBounds, windowsOf } from "./windows.ts";

/** The original's chunking, line by line (Python list arithmetic and slicing semantics). */
function pythonChunks(L: number, c: number): [number, number][] {
  const n = Math.ceil(L / c);
  const r = n * c - L;
  const lower = Math.floor(r / n);
  const need = r - lower * (n - 1);
  const steps: number[] = [];
  for (let i = 0; i < need; i++) steps.push(lower + 1);
  for (let i = 0; i < Math.max(0, n - 1 - need); i++) steps.push(lower);
  steps.push(0);
  const starts: number[] = [];
  for (let a = 0; a < L; a += c) starts.push(a);
  // Python slice seq[s:e] of a length-L list: negative indices count from the end, then clip.
  const norm = (i: number) => (i < 0 ? Math.max(0, L + i) : Math.min(i, L));
  const out: [number, number][] = [];
  let move = 0;
  for (let k = 0; k < Math.min(steps.length, starts.length); k++) {
    const a = starts[k];
    const s = a === 0 ? 0 : norm(a - move);
    const e = a === 0 ? Math.min(c, L) : norm(a - move + c);
    out.push([s, Math.max(s, e)]);
    move += steps[k];
  }
  return out;
}

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

describe("windowBounds", () => {
  test("the worked examples of the spec", () => {
    expect(windowBounds(600, 500)).toEqual([
      [0, 500],
      [299, 600],
    ]);
    expect(windowBounds(1100, 500)).toEqual([
      [0, 500],
      [366, 866],
      [732, 1100],
    ]);
    expect(windowBounds(1499, 500).map(([s, e]) => e - s)).toEqual([500, 500, 500]);
    expect(windowBounds(1000, 500)).toEqual([
      [0, 500],
      [500, 1000],
    ]);
    expect(windowBounds(150, 300)).toEqual([[0, 150]]);
    expect(windowBounds(300, 300)).toEqual([[0, 300]]);
    expect(windowBounds(1, 500)).toEqual([[0, 1]]);
    expect(windowBounds(0, 500)).toEqual([]);
  });

  test("matches the transliterated pseudo-code on many random (L, c)", () => {
    const rnd = rng(12345);
    let checked = 0;
    for (let i = 0; i < 20000; i++) {
      const c = 1 + Math.floor(rnd() * (i % 3 === 0 ? 20 : 700));
      const L = 1 + Math.floor(rnd() * (i % 2 === 0 ? c * 4 : c * 40));
      const got = windowBounds(L, c);
      const want = pythonChunks(L, c);
      if (JSON.stringify(got) !== JSON.stringify(want)) expect({ L, c, got }).toEqual({ L, c, got: want });
      checked++;
    }
    // Exhaustive over small sizes, where the slip's edge cases live.
    for (let c = 1; c <= 40; c++)
      for (let L = 1; L <= 400; L++) {
        const got = windowBounds(L, c);
        const want = pythonChunks(L, c);
        if (JSON.stringify(got) !== JSON.stringify(want)) expect({ L, c, got }).toEqual({ L, c, got: want });
        checked++;
      }
    expect(checked).toBe(20000 + 40 * 400);
  });

  test("windows stay inside the record and cover it", () => {
    const rnd = rng(7);
    for (let i = 0; i < 5000; i++) {
      const c = [300, 500][i & 1];
      const L = 1 + Math.floor(rnd() * 5000);
      const w = windowBounds(L, c);
      expect(w.length).toBe(Math.ceil(L / c));
      expect(w[0][0]).toBe(0);
      expect(w[w.length - 1][1]).toBe(L);
      for (const [s, e] of w) {
        expect(s >= 0 && e <= L && e > s && e - s <= c).toBe(true);
      }
    }
  });

  test("a non-positive chunk size is refused", () => {
    expect(() => windowBounds(10, 0)).toThrow();
    expect(() => windowBounds(10, -3)).toThrow();
  });
});

describe("windowsOf", () => {
  test("ids, 1-based k, coordinates and views into the record", () => {
    const seq = new TextEncoder().encode("A".repeat(600));
    seq[299] = 67;
    const ws = windowsOf({ id: "read7", seq, index: 3 }, 500);
    expect(ws.map((w) => [w.id, w.recordId, w.recordIndex, w.k, w.start, w.end, w.seq.length])).toEqual([
      ["read7_chunk_1", "read7", 3, 1, 0, 500, 500],
      ["read7_chunk_2", "read7", 3, 2, 299, 600, 301],
    ]);
    expect(ws[1].seq[0]).toBe(67);
    expect(ws[1].seq.buffer).toBe(seq.buffer);
  });
});
