// The FP8 (E4M3) quantization rules of --precision fp8, through libvirnuc's host reference.
import { describe, expect, test } from "bun:test";
import { dequantizeFp8, fp8ExtColumns, fp8OutlierChannels, quantizeRowsFp8, quantizeRowsFp8Ext } from "./fp8.ts";
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

describe("outlier channels", () => {
  test("chosen from the LayerNorm gains: above 8x the median, the 16 largest, ascending", () => {
    const hidden = 320;
    const rnd = seeded(5);
    const gains = Float32Array.from({ length: 3 * hidden }, () => 1 + (rnd() - 0.5) * 0.2);
    expect(fp8OutlierChannels(gains, 3, hidden)).toEqual([]);
    // Channel 40 is an outlier in one LayerNorm only (negative gains count by magnitude); 7.9x is not.
    gains[hidden + 40] = -60;
    gains[2 * hidden + 200] = 55;
    gains[5] = 7.9;
    expect(fp8OutlierChannels(gains, 3, hidden)).toEqual([40, 200]);
    // More than 16 candidates: the 16 largest.
    for (let j = 0; j < 20; j++) gains[100 + j] = 30 + j;
    const many = fp8OutlierChannels(gains, 3, hidden);
    expect(many).toEqual([40, ...Array.from({ length: 14 }, (_, j) => 106 + j), 200]);
    expect(() => fp8OutlierChannels(gains, 3, hidden + 1)).toThrow("do not form");
  });

  test("extension: the main bytes as without it, hi/lo pairs that leave only lo x lo of the error", () => {
    const rnd = seeded(9);
    const k = 96;
    const channels = [3, 50, 77];
    const ext = fp8ExtColumns(channels.length, k);
    expect(ext).toBe(32); // 96 + 6 -> 128
    expect(fp8ExtColumns(0, 2560)).toBe(0);
    expect(fp8ExtColumns(6, 2560)).toBe(128);
    expect(fp8ExtColumns(6, 480)).toBe(32);
    expect(fp8ExtColumns(16, 120)).toBe(136);
    const rows = 5;
    const x = Float32Array.from({ length: rows * k }, () => (rnd() - 0.5) * 2);
    const w = Float32Array.from({ length: rows * k }, () => (rnd() - 0.5) * 0.2);
    for (let r = 0; r < rows; r++) for (const c of channels) x[r * k + c] *= 40; // outlier activations
    const plain = quantizeRowsFp8(x, rows, k);
    const xa = quantizeRowsFp8Ext(x, rows, k, channels, false);
    const wa = quantizeRowsFp8Ext(w, rows, k, channels, true);
    expect(xa.ld).toBe(k + ext);
    for (let r = 0; r < rows; r++) {
      expect([...xa.q.subarray(r * xa.ld, r * xa.ld + k)]).toEqual([...plain.q.subarray(r * k, (r + 1) * k)]);
      expect(xa.scales[r]).toBe(plain.scales[r]);
      expect([...xa.q.subarray(r * xa.ld + k + 2 * channels.length, (r + 1) * xa.ld)].every((b) => b === 0)).toBe(true);
      channels.forEach((c, j) => expect(xa.q[r * xa.ld + k + j]).toBe(xa.q[r * xa.ld + c])); // activation hi = main byte
      channels.forEach((c, j) => expect(wa.q[r * wa.ld + k + channels.length + j]).toBe(wa.q[r * wa.ld + c])); // weight hi
    }
    // The extended dot product (what the FP8 GEMM computes over K + ext) vs the exact one and vs
    // the plain FP8 one, on the outlier channels' share.
    const dx = dequantizeFp8(xa.q);
    const dw = dequantizeFp8(wa.q);
    let errExt = 0;
    let errPlain = 0;
    let mag = 0;
    for (let r = 0; r < rows; r++)
      for (let n = 0; n < rows; n++) {
        let exact = 0;
        let ext8 = 0;
        let plain8 = 0;
        for (let c = 0; c < xa.ld; c++) ext8 += dx[r * xa.ld + c] * dw[n * wa.ld + c];
        for (let c = 0; c < k; c++) {
          exact += x[r * k + c] * w[n * k + c];
          plain8 += dx[r * xa.ld + c] * dw[n * wa.ld + c];
        }
        ext8 *= xa.scales[r] * wa.scales[n];
        plain8 *= xa.scales[r] * wa.scales[n];
        let share = 0; // the outlier channels' part of the exact product
        for (const c of channels) share += Math.abs(x[r * k + c] * w[n * k + c]);
        errExt += (ext8 - exact) ** 2;
        errPlain += (plain8 - exact) ** 2;
        mag += share * share;
      }
    // Plain E4M3 is off by a few % of the outlier share; the extension cuts the error several-fold.
    expect(Math.sqrt(errPlain / mag)).toBeGreaterThan(0.005);
    expect(Math.sqrt(errExt / errPlain)).toBeLessThan(0.5);
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
