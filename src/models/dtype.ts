/** Conversions between host tensor dtypes (IEEE half, bfloat16, float32) and typed-array helpers. */
import { DTYPE_BYTES, numel, type DType, type HostTensor } from "./tensor.ts";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> IEEE half bits, round to nearest even (what torch's .half() does). */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // subnormal half (or zero): shift the implicit 1 in, then round to nearest even
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && (r & 1))) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) r++; // carry into the exponent is the right answer
  return sign | r;
}

let f16Table: Float32Array | undefined;
/** All 65536 half values as float32 (256 KiB), so converting a tensor is one lookup per element. */
export function f16ToF32Table(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = f16BitsDecode(h);
  return (f16Table = t);
}

function f16BitsDecode(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function f16BitsToF32(h: number): number {
  return f16ToF32Table()[h & 0xffff];
}

/** float32 -> bfloat16 bits, round to nearest even. */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff; // keep NaN a NaN
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** Round a float32 value through half precision (checkpoints store rotary inv_freq this way). */
export function roundToF16(x: number): number {
  return f16BitsToF32(f32ToF16Bits(x));
}

/** A copy of the bytes in a fresh, aligned buffer (mapped views may sit at odd offsets). */
function alignedBytes(data: Uint8Array, elemBytes: number): ArrayBuffer {
  if (data.byteOffset % elemBytes === 0 && data.buffer instanceof ArrayBuffer) {
    return data.buffer;
  }
  return data.slice().buffer;
}

function typed<T>(data: Uint8Array, elemBytes: number, make: (buf: ArrayBuffer, off: number, n: number) => T): T {
  const n = data.byteLength / elemBytes;
  if (data.byteOffset % elemBytes === 0 && data.buffer instanceof ArrayBuffer) return make(data.buffer, data.byteOffset, n);
  return make(alignedBytes(data, elemBytes), 0, n);
}

/** Values of any numeric tensor as float32 (a new array unless the tensor is aligned f32, then a view). */
export function toFloat32(t: HostTensor): Float32Array {
  const n = numel(t.shape);
  const d = t.data;
  switch (t.dtype) {
    case "f32":
      return typed(d, 4, (b, o, k) => new Float32Array(b, o, k));
    case "f16": {
      const src = typed(d, 2, (b, o, k) => new Uint16Array(b, o, k));
      const table = f16ToF32Table();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[src[i]];
      return out;
    }
    case "bf16": {
      const src = typed(d, 2, (b, o, k) => new Uint16Array(b, o, k));
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
      return out;
    }
    case "f64":
      return Float32Array.from(typed(d, 8, (b, o, k) => new Float64Array(b, o, k)));
    case "i64": {
      const src = typed(d, 8, (b, o, k) => new BigInt64Array(b, o, k));
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(src[i]);
      return out;
    }
    case "i32":
      return Float32Array.from(typed(d, 4, (b, o, k) => new Int32Array(b, o, k)));
    case "i16":
      return Float32Array.from(typed(d, 2, (b, o, k) => new Int16Array(b, o, k)));
    case "i8":
      return Float32Array.from(new Int8Array(d.buffer, d.byteOffset, n));
    case "u8":
    case "bool":
      return Float32Array.from(d.subarray(0, n));
  }
}

/** A float tensor of the given dtype from float32 values. */
export function fromFloat32(values: Float32Array, shape: number[], dtype: "f32" | "f16" | "bf16" = "f32"): HostTensor {
  if (values.length !== numel(shape)) throw new Error(`fromFloat32: ${values.length} values for shape [${shape}]`);
  if (dtype === "f32") return { dtype, shape, data: new Uint8Array(values.slice().buffer) };
  const out = new Uint16Array(values.length);
  const conv = dtype === "f16" ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < values.length; i++) out[i] = conv(values[i]);
  return { dtype, shape, data: new Uint8Array(out.buffer) };
}

/** The tensor in another float dtype (itself when already there). */
export function castFloat(t: HostTensor, dtype: "f32" | "f16" | "bf16"): HostTensor {
  if (t.dtype === dtype) return t;
  return fromFloat32(toFloat32(t), t.shape, dtype);
}

/** Bytes a tensor of this dtype and shape occupies. */
export function byteSize(dtype: DType, shape: readonly number[]): number {
  return numel(shape) * DTYPE_BYTES[dtype];
}

export function isHostTensor(v: unknown): v is HostTensor {
  return (
    typeof v === "object" &&
    v !== null &&
    (v as HostTensor).data instanceof Uint8Array &&
    Array.isArray((v as HostTensor).shape) &&
    typeof (v as HostTensor).dtype === "string" &&
    (v as HostTensor).dtype in DTYPE_BYTES
  );
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}
