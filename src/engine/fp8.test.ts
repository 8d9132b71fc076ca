// The FP8 (E4M3) quantization rules of --precision fp8, through libvirnuc's host reference.
import { describe, expect, test } from "bun:test";
import { dequantizeFp8, quantizeRowsFp8 } from "./fp8.ts";
import { Engine } from "./engine.ts";
import { tinyEsm } from "../../test/engine/tiny.ts";

/** Encodes single values exactly: a row whose amax is 448 has scale 1. */
function encode(values: number[]): number[] {
  const row = Float32Array.from([448, ...values]);
  const { q, scales } = quantizeRowsFp8(row, 1, row.length);
  expect(scales[0]).toBe(1);
  return [...q.subarray(1)];
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("E4M3 encoding", () => {
  test("known codes: normals, subnormals, the largest value, signs", () => {
    expect(encode([1, 0.5, 2 ** -6, 2 ** -9, 448, 1.75, 416, 0])).toEqual([0x38, 0x30, 0x08, 0x01, 0x7e, 0x3e, 0x7d, 0]);
    expect(encode([-1, -448, -(2 ** -9)])).toEqual([0xb8, 0xfe, 0x81]);
  });

  test("rounds to nearest, ties to even", () => {
    // 1 + 1/16 lies halfway between 1 (mantissa 0) and 1.125 (mantissa 1): even wins.
    expect(encode([1 + 1 / 16, 1 + 3 / 16, 1 + 1 / 16 + 2 ** -12])).toEqual([0x38, 0x3a, 0x39]);
    // Subnormals are multiples of 2^-9: 2^-10 ties to 0, 3 * 2^-10 to 2 * 2^-9.
    expect(encode([2 ** -10, 3 * 2 ** -10, 2 ** -10 + 2 ** -14])).toEqual([0, 0x02, 0x01]);
    // 15.5 * 2^-10 ties between 7 * 2^-9 (subnormal) and 2^-6 (first normal, even).
    expect(encode([15 * 2 ** -10])).toEqual([0x08]);
  });

  test("saturates past 448; NaN stays NaN", () => {
    const { q } = quantizeRowsFp8(Float32Array.from([1, Number.NaN, -2]), 1, 3);
    expect(q[1] & 0x7f).toBe(0x7f);
    expect(q[0]).toBe(0x76); // amax 2 (NaN ignored): 1 -> 224 = 1.75 * 2^7, -2 -> -448
    expect(q[2]).toBe(0xfe);
  });

  test("every finite code decodes to a value that encodes back to itself", () => {
    const codes = Uint8Array.from({ length: 256 }, (_, i) => i).filter((c) => (c & 0x7f) !== 0x7f);
    const values = dequantizeFp8(codes);
    expect(values[0x7e]).toBe(448);
    expect(values[0x01]).toBe(2 ** -9);
    expect(values[0x08]).toBe(2 ** -6);
    expect(Number.isNaN(dequantizeFp8(Uint8Array.from([0x7f, 0xff]))[0])).toBe(true);
    for (let i = 1; i < 0x7e; i++) expect(values[i]).toBeGreaterThan(values[i - 1]);
    const back = encode([...values]);
    // +0 and -0 (0x80) both round-trip by value.
    back.forEach((c, i) => expect(dequantizeFp8(Uint8Array.of(c))[0]).toBe(values[i]));
  });
});

describe("per-row scales", () => {
  test("scale = amax / 448 per row, an all-zero row gets 1, and q * scale is within E4M3's rounding", () => {
    const rows = 6;
    const cols = 257;
    const rnd = seeded(7);
    const x = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const mag = r === 3 ? 0 : 10 ** (r - 2); // 0.01 .. 1000, row 3 zero
      for (let c = 0; c < cols; c++) x[r * cols + c] = r === 3 ? 0 : (rnd() * 2 - 1) * mag;
      if (r === 5) x[r * cols + 11] = 40 * mag; // an outlier channel sets the row's scale
    }
    const { q, scales } = quantizeRowsFp8(x, rows, cols);
    const deq = dequantizeFp8(q);
    for (let r = 0; r < rows; r++) {
      let amax = 0;
      for (let c = 0; c < cols; c++) amax = Math.max(amax, Math.abs(x[r * cols + c]));
      expect(scales[r]).toBe(amax > 0 ? Math.fround(amax / 448) : 1);
      for (let c = 0; c < cols; c++) {
        const v = x[r * cols + c];
        const back = deq[r * cols + c] * scales[r];
        // Normals keep 3 mantissa bits (half an ulp = 2^-4 relative); subnormals are 2^-9 apart.
        const tol = Math.max(Math.abs(v) * 2 ** -4, 2 ** -10 * scales[r]) * (1 + 1e-6);
        expect(Math.abs(back - v)).toBeLessThanOrEqual(tol);
      }
    }
    expect([...q.subarray(3 * cols, 4 * cols)].every((b) => b === 0)).toBe(true);
  });

  test("rows are independent: a row quantizes the same alone or among others", () => {
    const rnd = seeded(11);
    const x = Float32Array.from({ length: 4 * 64 }, () => (rnd() - 0.5) * 3);
    const all = quantizeRowsFp8(x, 4, 64);
    const one = quantizeRowsFp8(x.slice(2 * 64, 3 * 64), 1, 64);
    expect([...one.q]).toEqual([...all.q.subarray(2 * 64, 3 * 64)]);
    expect(one.scales[0]).toBe(all.scales[2]);
  });

  test("bad sizes are refused", () => {
    expect(() => quantizeRowsFp8(new Float32Array(5), 2, 3)).toThrow("do not form 2 x 3");
    expect(() => quantizeRowsFp8(new Float32Array(0), -1, 0)).toThrow("do not form -1 x 0");
    expect(quantizeRowsFp8(new Float32Array(0), 2, 0).scales).toEqual(Float32Array.of(1, 1));
  });
});

describe("--precision fp8 where it does not apply", () => {
  test("the CPU backend refuses it with one clear line", () => {
    const e = Engine.create("cpu", { threads: 1 });
    try {
      const m = tinyEsm(3);
      expect(() => e.loadEncoder(m.config, m.tensors, "fp8")).toThrow(/computes in fp32 only \(fp8 requested\)/);
    } finally {
      e.close();
    }
  });
});
