/**
 * float32 scores printed the way VirNucPro's text files show them: `str(np.float32(x))`.
 *
 * numpy prints the shortest decimal that reads back as the same float32 (the nearest such one),
 * positional for 1e-4 <= |x| < 1e16 ("0.12100612", "1.0", "100.0") and scientific otherwise
 * ("1e-05", "3.4028235e+38"). The 1e16 bound is numpy 1.14 - 2.2 (VirNucPro's Python 3.9
 * environments); numpy >= 2.3 switched float32 to scientific from 1e6, which probabilities never reach.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

const POSITIONAL_MIN = 1e-4;
const POSITIONAL_MAX = 1e16;

/** Shortest round-trip digits of a positive finite float32. */
export interface Float32Digits {
  digits: string; // no leading or trailing zeros
  exp10: number; // decimal exponent of the first digit: value = d1.d2..dn * 10^exp10
}

export function formatFloat32(x: number): string {
  f32[0] = x;
  const v = f32[0];
  const bits = u32[0];
  if (v !== v) return "nan";
  if (v === Infinity) return "inf";
  if (v === -Infinity) return "-inf";
  if (v === 0) return bits >>> 31 ? "-0.0" : "0.0";
  const neg = v < 0;
  const a = neg ? -v : v;
  const { digits, exp10 } = shortestDigits(a, bits & 0x7fffffff);
  // numpy compares the float32 against the double constants (so float32(1e-4) prints "1e-04").
  const body = a >= POSITIONAL_MIN && a < POSITIONAL_MAX ? positional(digits, exp10) : scientific(digits, exp10);
  return neg ? "-" + body : body;
}

function positional(digits: string, e: number): string {
  if (e < 0) return "0." + "0".repeat(-e - 1) + digits;
  if (digits.length <= e + 1) return digits + "0".repeat(e + 1 - digits.length) + ".0";
  return digits.slice(0, e + 1) + "." + digits.slice(e + 1);
}

function scientific(digits: string, e: number): string {
  const mant = digits.length > 1 ? digits[0] + "." + digits.slice(1) : digits;
  const ae = e < 0 ? -e : e;
  return mant + (e < 0 ? "e-" : "e+") + (ae < 10 ? "0" + ae : String(ae));
}

/**
 * Shortest digits for a positive finite float32 `a` whose bits without the sign are `absBits`.
 * Fast path: the nearest p-significant-digit decimal (toExponential rounds the exact value) is
 * tested against the float32's rounding interval as doubles; exact BigInt arithmetic settles the
 * rare candidates that land on an interval boundary and the asymmetric intervals of powers of two.
 */
export function shortestDigits(a: number, absBits: number): Float32Digits {
  const expField = absBits >>> 23;
  const mant = absBits & 0x7fffff;
  if (mant === 0 && expField > 1) return shortestDigitsExact(a, absBits);
  const e2 = expField === 0 ? -149 : expField - 150; // a = m * 2^e2
  const half = Math.pow(2, e2 - 1);
  const lo = a - half; // exact: float32 midpoints fit in a double
  const hi = a + half;
  const evenMant = (mant & 1) === 0; // IEEE ties-to-even: a boundary reads back as `a` only then

  // Probabilities mostly need 8 or 9 digits: probe 8 and 7 first, then bisect 1..6. Closer
  // candidates never leave a symmetric interval, so "round-trips at p" is monotone in p.
  let best = a.toExponential(7);
  let p = 8;
  if (!inInterval(best, lo, hi, evenMant)) {
    best = a.toExponential(8);
    p = 9; // nine significant digits always identify a float32
  } else {
    const s7 = a.toExponential(6);
    if (inInterval(s7, lo, hi, evenMant)) {
      best = s7;
      p = 7;
      let pLo = 1;
      let pHi = 7;
      while (pLo < pHi) {
        const mid = (pLo + pHi) >> 1;
        const s = a.toExponential(mid - 1);
        if (inInterval(s, lo, hi, evenMant)) {
          pHi = mid;
          best = s;
        } else {
          pLo = mid + 1;
        }
      }
      p = pHi;
    }
  }
  // toExponential breaks an exact tie upwards; numpy's Dragon4 takes the even digit.
  if (isTie(a, best, p)) return shortestDigitsExact(a, absBits);
  return splitExponential(best);
}

/** Whether `a` lies exactly halfway between two p-digit decimals (then `s` was rounded up). */
function isTie(a: number, s: string, p: number): boolean {
  const j = p - 1 - Number(s.slice(s.indexOf("e") + 1));
  // A float32 can only be such a midpoint for -10 <= j <= 13, where 10^|j| is an exact double
  // and a product or quotient equal to n + 0.5 comes out exact; a false alarm costs the exact path.
  if (j < -10 || j > 13) return false;
  const t = j >= 0 ? a * 10 ** j : a / 10 ** -j;
  return t - Math.floor(t) === 0.5;
}

function inInterval(s: string, lo: number, hi: number, evenMant: boolean): boolean {
  const d = Number(s);
  if (d > lo && d < hi) return true;
  if (d !== lo && d !== hi) return false;
  // The decimal's nearest double is the boundary itself: compare the exact decimal with it.
  const c = compareDecimalToDouble(s, d);
  if (c === 0) return evenMant;
  return d === lo ? c > 0 : c < 0;
}

function splitExponential(s: string): Float32Digits {
  const m = s.indexOf("e");
  let digits = s[1] === "." ? s[0] + s.slice(2, m) : s.slice(0, m);
  let end = digits.length;
  while (end > 1 && digits.charCodeAt(end - 1) === 48) end--;
  digits = digits.slice(0, end);
  return { digits, exp10: Number(s.slice(m + 1)) };
}

// ---- exact arithmetic (BigInt) -------------------------------------------------------------

/** A positive rational num / den. */
interface Ratio {
  num: bigint;
  den: bigint;
}

function pow2(k: number): bigint {
  return 1n << BigInt(k);
}

function pow10(k: number): bigint {
  return 10n ** BigInt(k);
}

/** m * 2^e as a ratio. */
function dyadic(m: bigint, e: number): Ratio {
  return e >= 0 ? { num: m << BigInt(e), den: 1n } : { num: m, den: pow2(-e) };
}

function cmpRatio(x: Ratio, y: Ratio): number {
  const l = x.num * y.den;
  const r = y.num * x.den;
  return l < r ? -1 : l > r ? 1 : 0;
}

/** Exact value of a decimal string like "1.2345e-7" as a ratio. */
function decimalRatio(s: string): Ratio {
  const m = s.indexOf("e");
  const mant = m < 0 ? s : s.slice(0, m);
  let exp = m < 0 ? 0 : Number(s.slice(m + 1));
  const dot = mant.indexOf(".");
  let intDigits = mant;
  if (dot >= 0) {
    intDigits = mant.slice(0, dot) + mant.slice(dot + 1);
    exp -= mant.length - dot - 1;
  }
  const n = BigInt(intDigits);
  return exp >= 0 ? { num: n * pow10(exp), den: 1n } : { num: n, den: pow10(-exp) };
}

/** Exact value of a finite positive double as a ratio. */
function doubleRatio(d: number): Ratio {
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, d);
  const hiWord = buf.getUint32(0);
  const loWord = buf.getUint32(4);
  const expField = (hiWord >>> 20) & 0x7ff;
  let m = (BigInt(hiWord & 0xfffff) << 32n) | BigInt(loWord);
  let e: number;
  if (expField === 0) e = -1074;
  else {
    m |= 1n << 52n;
    e = expField - 1075;
  }
  return dyadic(m, e);
}

function compareDecimalToDouble(s: string, d: number): number {
  return cmpRatio(decimalRatio(s), doubleRatio(d));
}

/** Float32 rounding interval of a positive finite float32 with the given bits (sign cleared). */
export function float32Interval(absBits: number): { value: Ratio; lo: Ratio; hi: Ratio; inclusive: boolean } {
  const expField = absBits >>> 23;
  const mant = absBits & 0x7fffff;
  const m = BigInt(expField === 0 ? mant : mant | 0x800000);
  const e2 = expField === 0 ? -149 : expField - 150;
  // Work in units of 2^(e2-2) so that the quarter-ulp lower margin of a power of two is whole.
  const unit = e2 - 2;
  const lowerMargin = mant === 0 && expField > 1 ? 1n : 2n;
  return {
    value: dyadic(m * 4n, unit),
    lo: dyadic(m * 4n - lowerMargin, unit),
    hi: dyadic(m * 4n + 2n, unit),
    inclusive: (m & 1n) === 0n,
  };
}

/** floor(r * 10^k) for a ratio r. */
function floorScaled(r: Ratio, k: number): bigint {
  return k >= 0 ? (r.num * pow10(k)) / r.den : r.num / (r.den * pow10(-k));
}

function inside(x: Ratio, iv: { lo: Ratio; hi: Ratio; inclusive: boolean }): boolean {
  const a = cmpRatio(x, iv.lo);
  const b = cmpRatio(x, iv.hi);
  return iv.inclusive ? a >= 0 && b <= 0 : a > 0 && b < 0;
}

/**
 * Shortest digits by exact search: for p = 1.., the two p-digit decimals around the value,
 * keeping those inside the rounding interval and then the nearer one.
 */
export function shortestDigitsExact(a: number, absBits: number): Float32Digits {
  const iv = float32Interval(absBits);
  const e10 = Number(a.toExponential().split("e")[1]); // floor(log10(a)): a is a double exactly
  for (let p = 1; p <= 17; p++) {
    const k = p - 1 - e10; // candidates are n * 10^-k with p digits
    const n0 = floorScaled(iv.value, k);
    let best: bigint | null = null;
    let bestDist: Ratio | null = null;
    for (const n of [n0, n0 + 1n]) {
      const cand = k >= 0 ? { num: n, den: pow10(k) } : { num: n * pow10(-k), den: 1n };
      if (!inside(cand, iv)) continue;
      const dNum = cand.num * iv.value.den - iv.value.num * cand.den;
      const dist = { num: dNum < 0n ? -dNum : dNum, den: cand.den * iv.value.den };
      const c = bestDist === null ? -1 : cmpRatio(dist, bestDist);
      // Exactly halfway: the even last digit wins, as in numpy's Dragon4.
      if (c < 0 || (c === 0 && n % 2n === 0n)) {
        best = n;
        bestDist = dist;
      }
    }
    if (best !== null) {
      let digits = best.toString();
      // Rounding up can carry into a new leading digit (e.g. 9.99.. -> 10).
      const exp10 = e10 + (digits.length - p);
      digits = digits.replace(/0+$/, "");
      return { digits: digits === "" ? "0" : digits, exp10 };
    }
  }
  throw new Error(`no round-trip decimal for float32 bits ${absBits.toString(16)}`);
}
