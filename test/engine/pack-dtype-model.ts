// Models for pack_dtype.test.ts: the CPU backend packs Linear weights straight from their stored
// dtype (fp16/bf16/fp32, converted inside the packing tasks). A model and its "FP32 twin" (every
// tensor replaced by the FP32 values its stored bits decode to, exactly) must give bit-identical
// outputs: the same FP32 values reach the packed layers. Run directly (argument: "esm" or
// "dnabert"), prints {same, n} for one model on this process's kernels (VIRNUC_CPU_ISA).
import { Engine } from "../../src/engine/engine.ts";
import { f16ToF32Table, f32ToBf16Bits, f32ToF16Bits } from "../../src/models/dtype.ts";
import type { EncoderConfig, HostTensor } from "../../src/models/tensor.ts";
import { dnaTokens, embed, protein, rng, tinyDnabert, tinyEsm } from "./tiny.ts";

export type Store = "mixed" | "f16" | "bf16";

/** The FP32 values of a tensor's stored bits (f16 via the exact table, bf16 by a shift). */
export function decode(t: HostTensor): Float32Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const bytes = t.data.slice(); // aligned copy
  if (t.dtype === "f32") return new Float32Array(bytes.buffer, 0, n);
  const u16 = new Uint16Array(bytes.buffer, 0, n);
  if (t.dtype === "f16") {
    const table = f16ToF32Table();
    return Float32Array.from(u16, (h) => table[h]);
  }
  if (t.dtype === "bf16") {
    const out = new Uint32Array(n);
    for (let i = 0; i < n; i++) out[i] = u16[i] << 16;
    return new Float32Array(out.buffer);
  }
  throw new Error(`decode: unexpected dtype ${t.dtype}`);
}

/** The same tensor at an odd address (as in a mapped checkpoint: tensors need not be aligned). */
function unaligned(data: Uint8Array): Uint8Array {
  const buf = new Uint8Array(data.byteLength + 1);
  buf.set(data, 1);
  return buf.subarray(1);
}

const isLinearWeight = (name: string, t: HostTensor) => t.shape.length === 2 && !name.startsWith("embeddings.");

/**
 * Linear weights re-stored as `store` (mixed: as the builder cycled them), with special values
 * written into the 16-bit ones (subnormals of both signs, -0, the smallest normals), every tensor
 * at an odd address.
 */
export function restore(tensors: Map<string, HostTensor>, store: Store, seed: number): Map<string, HostTensor> {
  const next = rng(seed);
  const out = new Map<string, HostTensor>();
  for (const [name, t] of tensors) {
    if (!isLinearWeight(name, t)) {
      out.set(name, { ...t, data: unaligned(t.data) });
      continue;
    }
    let dtype = t.dtype;
    let u16: Uint16Array | undefined;
    if (store !== "mixed" && dtype !== store) {
      const v = decode(t);
      const enc = store === "f16" ? f32ToF16Bits : f32ToBf16Bits;
      u16 = Uint16Array.from(v, (x) => enc(x));
      dtype = store;
    } else if (dtype !== "f32") {
      u16 = new Uint16Array(t.data.slice().buffer);
    }
    let data = t.data;
    if (u16) {
      const specials =
        dtype === "f16" ? [0x0001, 0x8001, 0x03ff, 0x83ff, 0x8000, 0x0400, 0x8400] : [0x0001, 0x8001, 0x007f, 0x8000, 0x0080];
      for (let i = 0; i < u16.length; i += 37 + Math.floor(next() * 40)) {
        u16[i] = specials[Math.floor(next() * specials.length)];
        if (dtype === "f16" && next() < 0.5) u16[i] = (next() < 0.5 ? 0x8000 : 0) | (1 + Math.floor(next() * 0x3ff)); // any subnormal
      }
      data = new Uint8Array(u16.buffer);
    }
    out.set(name, { dtype, shape: t.shape, data: unaligned(data) });
  }
  return out;
}

/** Every tensor as the FP32 values of its stored bits. */
export function f32Twin(tensors: Map<string, HostTensor>): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, t] of tensors) out.set(name, { dtype: "f32", shape: t.shape, data: new Uint8Array(decode(t).buffer) });
  return out;
}

export interface DtypeCase {
  config: EncoderConfig;
  tensors: Map<string, HostTensor>;
  seqs: number[][];
}

/** ESM-2 whose FFN is wider than a K block of the packing (256) and whose layers span several 2 MiB tasks. */
export function esmCase(store: Store): DtypeCase {
  const m = tinyEsm(21, { nLayers: 2, hidden: 256, nHeads: 4, intermediate: 2100 });
  const next = rng(4);
  return { config: m.config, tensors: restore(m.tensors, store, 8), seqs: [protein(next, 40), protein(next, 3), protein(next, 17)] };
}

export function dnabertCase(store: Store): DtypeCase {
  const m = tinyDnabert(22, { hidden: 96, nHeads: 6, intermediate: 300 });
  const next = rng(6);
  return { config: m.config, tensors: restore(m.tensors, store, 9), seqs: [dnaTokens(next, 30, 40), dnaTokens(next, 5, 40)] };
}

export function embedWith(c: DtypeCase, tensors: Map<string, HostTensor>, threads = 2): Float32Array {
  const e = Engine.create("cpu", { threads });
  try {
    const h = e.loadEncoder(c.config, tensors, "fp32");
    return embed(e, h, c.seqs);
  } finally {
    e.close();
  }
}

export function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

if (import.meta.main) {
  const c = process.argv[2] === "dnabert" ? dnabertCase("mixed") : esmCase("f16");
  const got = embedWith(c, c.tensors);
  const want = embedWith(c, f32Twin(c.tensors));
  process.stdout.write(JSON.stringify({ same: sameBits(got, want), n: got.length, finite: got.every(Number.isFinite) }));
}
