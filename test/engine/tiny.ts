/**
 * Tiny random models for engine tests: seeded weights given to libvirnuc as f32/f16/bf16 host
 * tensors, and the same (already rounded) values as float64 for the reference.
 */
import type { Engine, EncoderHandle, HostBuffer } from "../../src/engine/engine.ts";
import type { ClassifierConfig, DType, EncoderConfig, HostTensor } from "../../src/models/tensor.ts";
import type { Weights } from "./reference.ts";

/** mulberry32: small, seeded, good enough for test weights. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TinyModel {
  tensors: Map<string, HostTensor>;
  weights: Weights;
}

/** Rounds v to what dtype can hold and encodes it; returns the stored value too. */
function encode(values: Float64Array, dtype: "f32" | "f16" | "bf16"): { bytes: Uint8Array; exact: Float64Array } {
  const n = values.length;
  if (dtype === "f32") {
    const f = Float32Array.from(values);
    return { bytes: new Uint8Array(f.buffer), exact: Float64Array.from(f) };
  }
  if (dtype === "f16") {
    const f = Float16Array.from(values);
    return { bytes: new Uint8Array(f.buffer), exact: Float64Array.from(f) };
  }
  const f = Float32Array.from(values);
  const bits = new Uint32Array(f.buffer);
  const out = new Uint16Array(n);
  const exact = new Float64Array(n);
  const tmp = new Uint32Array(1);
  const tmpF = new Float32Array(tmp.buffer);
  for (let i = 0; i < n; i++) {
    const b = bits[i];
    const rounded = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16; // round to nearest even
    out[i] = rounded;
    tmp[0] = rounded << 16;
    exact[i] = tmpF[0];
  }
  return { bytes: new Uint8Array(out.buffer), exact };
}

export class TinyBuilder {
  readonly tensors = new Map<string, HostTensor>();
  readonly weights: Weights = new Map();
  private dtypeTurn = 0;
  constructor(private readonly next: () => number) {}

  /** Cycles the storage dtype so that every conversion path is exercised. */
  private pickDtype(): "f32" | "f16" | "bf16" {
    const order = ["f32", "f16", "bf16"] as const;
    return order[this.dtypeTurn++ % 3];
  }

  add(name: string, shape: number[], gen: (i: number) => number, dtype?: "f32" | "f16" | "bf16"): void {
    const n = shape.reduce((a, b) => a * b, 1);
    const raw = new Float64Array(n);
    for (let i = 0; i < n; i++) raw[i] = gen(i);
    const dt = dtype ?? this.pickDtype();
    const { bytes, exact } = encode(raw, dt);
    this.tensors.set(name, { dtype: dt as DType, shape, data: bytes });
    this.weights.set(name, { shape, data: exact });
  }

  /** Uniform in [-scale, scale]. */
  uniform(name: string, shape: number[], scale: number, dtype?: "f32" | "f16" | "bf16"): void {
    this.add(name, shape, () => (this.next() * 2 - 1) * scale, dtype);
  }

  /** Around `center`, for LayerNorm/BatchNorm gains. */
  near(name: string, shape: number[], center: number, spread: number): void {
    this.add(name, shape, () => center + (this.next() * 2 - 1) * spread);
  }

  linear(prefix: string, out: number, inn: number, bias = true): void {
    this.uniform(`${prefix}.weight`, [out, inn], 1 / Math.sqrt(inn));
    if (bias) this.uniform(`${prefix}.bias`, [out], 0.1);
  }

  layerNorm(prefix: string, h: number): void {
    this.near(`${prefix}.weight`, [h], 1, 0.2);
    this.uniform(`${prefix}.bias`, [h], 0.1);
  }
}

export function tinyEsm(
  seed: number,
  cfg: Partial<EncoderConfig> = {},
): TinyModel & { config: EncoderConfig } {
  const config: EncoderConfig = {
    arch: "esm2",
    nLayers: 2,
    hidden: 32,
    nHeads: 4,
    intermediate: 64,
    vocab: 33,
    lnEps: 1e-5,
    maskTokenId: 32,
    tokenDropout: true,
    maxPoolPositions: 1024,
    ...cfg,
  };
  const H = config.hidden;
  const d = H / config.nHeads;
  const b = new TinyBuilder(rng(seed));
  b.uniform("embeddings.word_embeddings.weight", [config.vocab, H], 1);
  for (let l = 0; l < config.nLayers; l++) {
    const p = `encoder.layer.${l}.`;
    b.layerNorm(p + "attention.LayerNorm", H);
    for (const m of ["query", "key", "value"]) b.linear(p + `attention.self.${m}`, H, H);
    // As in the checkpoints: 1 / 10000^(2i/d), stored rounded to fp16 precision.
    b.add(p + "attention.self.rotary_embeddings.inv_freq", [d / 2], (i) => Math.f16round(1 / 10000 ** ((2 * i) / d)), "f32");
    b.linear(p + "attention.output.dense", H, H);
    b.layerNorm(p + "LayerNorm", H);
    b.linear(p + "intermediate.dense", config.intermediate, H);
    b.linear(p + "output.dense", H, config.intermediate);
  }
  b.layerNorm("encoder.emb_layer_norm_after", H);
  return { config, tensors: b.tensors, weights: b.weights };
}

export function tinyDnabert(
  seed: number,
  cfg: Partial<EncoderConfig> = {},
): TinyModel & { config: EncoderConfig } {
  const config: EncoderConfig = {
    arch: "dnabert",
    nLayers: 2,
    hidden: 48,
    nHeads: 12,
    intermediate: 64,
    vocab: 40,
    lnEps: 1e-12,
    ...cfg,
  };
  const H = config.hidden;
  const I = config.intermediate;
  const b = new TinyBuilder(rng(seed));
  b.uniform("embeddings.word_embeddings.weight", [config.vocab, H], 1);
  b.uniform("embeddings.token_type_embeddings.weight", [2, H], 0.5);
  b.layerNorm("embeddings.LayerNorm", H);
  for (let l = 0; l < config.nLayers; l++) {
    const p = `encoder.layer.${l}.`;
    // Larger Q/K weights make the ALiBi slopes matter relative to the scores.
    b.uniform(p + "attention.self.Wqkv.weight", [3 * H, H], 2 / Math.sqrt(H));
    b.uniform(p + "attention.self.Wqkv.bias", [3 * H], 0.1);
    b.linear(p + "attention.output.dense", H, H);
    b.layerNorm(p + "attention.output.LayerNorm", H);
    b.linear(p + "mlp.gated_layers", 2 * I, H, false);
    b.linear(p + "mlp.wo", H, I);
    b.layerNorm(p + "mlp.layernorm", H);
  }
  return { config, tensors: b.tensors, weights: b.weights };
}

export function tinyMlp(seed: number, cfg: Partial<ClassifierConfig> = {}): TinyModel & { config: ClassifierConfig } {
  const config: ClassifierConfig = { inFeatures: 80, hidden: 40, nClasses: 2, bnEps: 1e-5, ...cfg };
  const b = new TinyBuilder(rng(seed));
  b.linear("hidden_layer", config.hidden, config.inFeatures);
  b.near("bn1.weight", [config.hidden], 1, 0.3);
  b.uniform("bn1.bias", [config.hidden], 0.2);
  b.uniform("bn1.running_mean", [config.hidden], 0.3);
  b.near("bn1.running_var", [config.hidden], 1, 0.5);
  b.linear("output_layer", config.nClasses, config.hidden);
  return { config, tensors: b.tensors, weights: b.weights };
}

/** Random ESM-2 protein tokens: <cls> residues <eos>, residues from the 20 standard ids 4..23. */
export function protein(next: () => number, residues: number): number[] {
  const out = [0];
  for (let i = 0; i < residues; i++) out.push(4 + Math.floor(next() * 20));
  out.push(2);
  return out;
}

/** Random DNABERT-S tokens: [CLS] ids in 5..vocab-1 [SEP]. */
export function dnaTokens(next: () => number, inner: number, vocab: number): number[] {
  const out = [1];
  for (let i = 0; i < inner; i++) out.push(5 + Math.floor(next() * (vocab - 5)));
  out.push(2);
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

/** One packed batch in engine buffers: tokens, cu_seqlens and room for the pooled outputs. */
export function packBatch(e: Engine, h: EncoderHandle, seqs: number[][]): { tokens: HostBuffer; cu: HostBuffer; out: HostBuffer } {
  const total = seqs.reduce((s, q) => s + q.length, 0);
  const tokens = e.alloc(total * 4);
  const cu = e.alloc((seqs.length + 1) * 4);
  const out = e.alloc(seqs.length * h.outputDim * 4);
  const tv = tokens.i32();
  const cv = cu.i32();
  let at = 0;
  seqs.forEach((q, i) => {
    cv[i] = at;
    tv.set(q, at);
    at += q.length;
  });
  cv[seqs.length] = at;
  return { tokens, cu, out };
}

/** Packs sequences, runs one batch, returns the n x dim embeddings. */
export function embed(e: Engine, h: EncoderHandle, seqs: number[][]): Float32Array {
  const { tokens, cu, out } = packBatch(e, h, seqs);
  try {
    h.submitEmbed(tokens, cu, seqs.length, out).wait();
    return new Float32Array(out.f32().subarray(0, seqs.length * h.outputDim));
  } finally {
    tokens.free();
    cu.free();
    out.free();
  }
}

