import { describe, expect, test } from "bun:test";
import { formatFloat32, shortestDigits, shortestDigitsExact } from "./float32.ts";

const f = new Float32Array(1);
const u = new Uint32Array(f.buffer);
function fromBits(bits: number): number {
  u[0] = bits >>> 0;
  return f[0];
}
function bitsOf(x: number): number {
  f[0] = x;
  return u[0];
}

// str(np.float32(x)) under numpy's 1.14-2.2 printing rules, recorded from numpy.
const NUMPY: [number, string][] = [
  [0x3df7d20f, "0.12100612"],
  [0x3a97fcc0, "0.0011595711"],
  [0x3f6105bf, "0.8789939"],
  [0x3f800000, "1.0"],
  [0x3f000000, "0.5"],
  [0x00000000, "0.0"],
  [0x80000000, "-0.0"],
  [0x3727c5ac, "1e-05"],
  [0x7f7fffff, "3.4028235e+38"],
  [0x34048f8b, "1.2345679e-07"],
  [0x38d1b717, "1e-04"], // float32(1e-4) is just below the double 1e-4
  [0x38d1bc76, "0.00010001"],
  [0x38d1b68e, "9.9999e-05"],
  [0x48a78ac4, "343126.12"], // exactly 343126.125: the tie goes to the even digit
  [0x48a78acc, "343126.38"], // 343126.375
  [0x50061c46, "9000000000.0"], // 9e9 is the upper boundary, mantissa even: accepted
  [0x5023e9ab, "10999999000.0"], // 1.1e10 is the upper boundary, mantissa odd: rejected
  [0x50061c47, "9000001000.0"],
  [0x5a0e1bca, "1e+16"],
  [0x5a0e1bc9, "9999999000000000.0"],
  [0x58635fa9, "1000000000000000.0"],
  [0x4996b43c, "1234567.5"],
  [0x4b800000, "16777216.0"],
  [0x00000001, "1e-45"],
  [0x00000005, "7e-45"],
  [0x00000600, "2.152e-42"],
  [0x00800000, "1.1754944e-38"],
  [0x007fffff, "1.1754942e-38"],
  [0x42c80000, "100.0"],
  [0x3dcccccd, "0.1"],
  [0x3e4ccccd, "0.2"],
  [0x3e99999a, "0.3"],
  [0x3eaaaaab, "0.33333334"],
  [0x3f2aaaab, "0.6666667"],
  [0x3f7fffef, "0.999999"],
  [0x3f7fffff, "0.99999994"],
  [0x4ceb79a3, "123456790.0"],
  [0x3900f990, "0.000123"],
  [0x477fe000, "65504.0"],
  [0xc0200000, "-2.5"],
];

// ---- brute-force oracle: exact decimal -> float32 parsing, then the shortest that reads back ----

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** Bits of the float32 nearest to n * 10^q (n > 0), ties to even: a correctly rounding parser. */
function parseFloat32Exact(n: bigint, q: number): number {
  let num = q >= 0 ? n * 10n ** BigInt(q) : n;
  let den = q >= 0 ? 1n : 10n ** BigInt(-q);
  // Choose e with 2^23 <= num / (den * 2^e) < 2^24, clamped to the subnormal exponent.
  let e = bitLength(num) - bitLength(den) - 24;
  const scaled = (k: number) => (k >= 0 ? [num, den << BigInt(k)] : [num << BigInt(-k), den]);
  for (;;) {
    const [a, b] = scaled(e);
    const m = a / b;
    if (m >= 1n << 24n) e++;
    else if (m < 1n << 23n && e > -149) e--;
    else break;
  }
  if (e < -149) e = -149;
  const [a, b] = scaled(e);
  let m = a / b;
  const r2 = (a % b) * 2n;
  if (r2 > b || (r2 === b && (m & 1n) === 1n)) m++;
  if (m === 1n << 24n) {
    m >>= 1n;
    e++;
  }
  if (m === 0n) return 0;
  if (e > 104) return 0x7f800000;
  if (m < 1n << 23n) return Number(m); // subnormal
  return ((e + 150) << 23) | Number(m & 0x7fffffn);
}

/** Exact decimal digits of a positive float32 and the exponent of its first digit. */
function exactDecimal(bits: number): { digits: string; exp10: number } {
  const expField = bits >>> 23;
  const mant = bits & 0x7fffff;
  const m = BigInt(expField === 0 ? mant : mant | 0x800000);
  const e = expField === 0 ? -149 : expField - 150;
  // value = m * 2^e = (m * 5^-e) * 10^e for e < 0
  const [int, scale] = e >= 0 ? [m << BigInt(e), 0] : [m * 5n ** BigInt(-e), -e];
  const s = int.toString();
  return { digits: s, exp10: s.length - 1 - scale };
}

/** Shortest digits found by trying every nearby p-digit decimal and parsing it back. */
function bruteForce(bits: number): { digits: string; exp10: number } {
  const exact = exactDecimal(bits);
  for (let p = 1; p <= 9; p++) {
    // p-digit integers around the value: value * 10^(p-1-exp10), truncated.
    const head = BigInt(exact.digits.slice(0, p).padEnd(p, "0"));
    const q = exact.exp10 - (p - 1);
    const hits: bigint[] = [];
    for (let n = head - 2n; n <= head + 3n; n++) if (n > 0n && parseFloat32Exact(n, q) === bits) hits.push(n);
    if (hits.length === 0) continue;
    // Nearest to the exact value; an exact tie goes to the even digit.
    // Distances in units of the smaller of the two last-digit places.
    const D = BigInt(exact.digits);
    const L = exact.digits.length;
    const dist = (n: bigint) => {
      const d = L >= p ? n * 10n ** BigInt(L - p) - D : n - D * 10n ** BigInt(p - L);
      return d < 0n ? -d : d;
    };
    hits.sort((a, b) => {
      const da = dist(a);
      const db = dist(b);
      if (da !== db) return da < db ? -1 : 1;
      return Number(a % 2n) - Number(b % 2n);
    });
    let digits = hits[0].toString();
    const exp10 = exact.exp10 + (digits.length - p);
    digits = digits.replace(/0+$/, "") || "0";
    return { digits, exp10 };
  }
  throw new Error("no 9-digit round trip");
}

/** Simple LCG so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

describe("formatFloat32", () => {
  test("matches numpy on recorded values", () => {
    for (const [bits, want] of NUMPY) expect([bits, formatFloat32(fromBits(bits))]).toEqual([bits, want]);
  });

  test("reference prediction_results.txt scores print back unchanged", async () => {
    const text = await Bun.file("test/fixtures/reference/virnucpro/reference_output/prediction_results.txt").text();
    const cells = text
      .trim()
      .split("\n")
      .slice(1)
      .flatMap((l) => l.split("\t").slice(2));
    expect(cells.length).toBe(8);
    for (const c of cells) expect(formatFloat32(Math.fround(Number(c)))).toBe(c);
  });

  test("special values", () => {
    expect(formatFloat32(NaN)).toBe("nan");
    expect(formatFloat32(Infinity)).toBe("inf");
    expect(formatFloat32(-Infinity)).toBe("-inf");
    expect(formatFloat32(1e39)).toBe("inf"); // rounds to float32 first
    expect(formatFloat32(0.1)).toBe("0.1"); // double 0.1 -> float32 0.1
  });

  test("positional/scientific switch at 1e-4 and 1e16", () => {
    expect(formatFloat32(0.00012345)).toBe("0.00012345");
    expect(formatFloat32(1.2345e-5)).toBe("1.2345e-05");
    expect(formatFloat32(123.25)).toBe("123.25");
    expect(formatFloat32(2e16)).toBe("2e+16");
    expect(formatFloat32(-3e-7)).toBe("-3e-07");
  });

  test("agrees with the brute-force search on random bit patterns", () => {
    const next = rng(12345);
    for (let i = 0; i < 4000; i++) {
      const bits = next() & 0x7fffffff;
      if (bits >>> 23 === 0xff || bits === 0) continue; // inf/nan/zero handled above
      const a = fromBits(bits);
      expect([bits, shortestDigits(a, bits)]).toEqual([bits, bruteForce(bits)]);
    }
  });

  test("agrees with the brute-force search on probabilities", () => {
    const next = rng(777);
    for (let i = 0; i < 4000; i++) {
      const a = Math.fround(next() / 2 ** 32);
      if (a === 0) continue;
      const bits = bitsOf(a);
      expect([bits, shortestDigits(a, bits)]).toEqual([bits, bruteForce(bits)]);
    }
  });

  test("powers of two, halfway values and subnormals", () => {
    const cases: number[] = [];
    for (let e = 1; e < 255; e++) cases.push(e << 23); // every power of two
    for (let m = 1; m < 400; m++) cases.push(m); // smallest subnormals
    const next = rng(99);
    for (let i = 0; i < 300; i++) {
      // x.125 / x.375 style values: few decimal digits, where ties between candidates happen
      const x = Math.fround((next() % 5_000_000) + (next() % 8) / 8);
      if (x > 0) cases.push(bitsOf(x));
    }
    for (const bits of cases) {
      const a = fromBits(bits);
      const want = bruteForce(bits);
      expect([bits, shortestDigits(a, bits)]).toEqual([bits, want]);
      expect([bits, shortestDigitsExact(a, bits)]).toEqual([bits, want]);
    }
  });

  test("every output reads back as the same float32", () => {
    const next = rng(4242);
    for (let i = 0; i < 20000; i++) {
      const bits = next();
      if (((bits >>> 23) & 0xff) === 0xff) continue;
      const x = fromBits(bits);
      const s = formatFloat32(x);
      expect(Object.is(Math.fround(Number(s)), x)).toBe(true);
    }
  });
});
