/**
 * Seeded random-weight models in the Hugging Face / VirNucPro layouts, for benchmarks and tests.
 * Weights are written tensor by tensor (the 3B model never sits in memory); every tensor draws from its
 * own stream (seed, name), so the values do not depend on dtype or write order.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../util/errors.ts";
import { syntheticDnaTokenizer } from "./bpe.ts";
import { DNABERT_S } from "./dnabert.ts";
import { f32ToBf16Bits, f32ToF16Bits } from "./dtype.ts";
import { ESM2_ARCHS, ESM_MASK_ID, ESM_VOCAB, esmInvFreq } from "./esm.ts";
import { hash32, normalTable, Xoshiro128 } from "./prng.ts";
import { type TensorSpec, writeSafetensorsStreaming } from "./safetensors.ts";
import { DTYPE_BYTES, numel, type HostTensor } from "./tensor.ts";
import { torchModule, writeTorch } from "./torch.ts";

export type RandomDtype = "f32" | "f16";

export interface RandomModelOptions {
  /** Weight dtype (default f16 for ESM-2 3B/15B, f32 otherwise). */
  dtype?: RandomDtype;
  /** dnabert archs: copy this tokenizer.json instead of training a synthetic one. */
  tokenizer?: string;
  /**
   * esm archs: give a handful of hidden channels (outlierChannels) 20-50x LayerNorm gains in every
   * layer, as real ESM-2 weights produce a few activation channels far larger than the rest
   * (what FP8 checks must survive).
   */
  outliers?: boolean;
}

/** The hidden channels that `outliers` models amplify. */
export function outlierChannels(hidden: number): number[] {
  return [0, 1, 2, 3, 4, 5].map((i) => (i * 977 + 13) % hidden);
}

/** A LayerNorm weight with the outlier channels scaled by 20-50 (seeded per tensor). */
function outlierLnWeight(name: string, hidden: number, seed: number): Float32Array {
  const rng = new Xoshiro128(seed, hash32(name));
  const v = new Float32Array(hidden);
  fillFromTable(v, valueTable(LN_WEIGHT, "f32"), rng);
  for (const c of outlierChannels(hidden)) v[c] *= 20 + 30 * rng.next();
  return v;
}

interface EsmArch {
  kind: "esm";
  layers: number;
  hidden: number;
  heads: number;
  intermediate: number;
}
interface DnabertArch {
  kind: "dnabert";
  layers: number;
  hidden: number;
  heads: number;
  intermediate: number;
  vocab: number;
}
interface ClassifierArch {
  kind: "classifier";
  inFeatures: number;
  hidden: number;
  nClasses: number;
}
type Arch = EsmArch | DnabertArch | ClassifierArch;

export const RANDOM_ARCHS: Record<string, Arch> = {
  ...Object.fromEntries(
    Object.entries(ESM2_ARCHS).map(([name, a]) => [name, { kind: "esm", ...a, intermediate: 4 * a.hidden } as EsmArch]),
  ),
  "dnabert-s": { kind: "dnabert", ...DNABERT_S },
  classifier: { kind: "classifier", inFeatures: 3328, hidden: 512, nClasses: 2 },
  "tiny-esm": { kind: "esm", layers: 3, hidden: 128, heads: 2, intermediate: 512 },
  "tiny-dnabert": { kind: "dnabert", layers: 2, hidden: 128, heads: 2, intermediate: 256, vocab: 4096 },
  "tiny-classifier": { kind: "classifier", inFeatures: 256, hidden: 32, nClasses: 2 },
};

/** How a tensor is filled: normal(mean, std) per element, or fixed values. */
type Init = { mean: number; std: number } | { values: Float32Array };

interface RandomSpec extends TensorSpec {
  init: Init;
}

const LINEAR = { mean: 0, std: 0.02 };
const BIAS = { mean: 0, std: 0.01 };
const LN_WEIGHT = { mean: 1, std: 0.05 };
const LN_BIAS = { mean: 0, std: 0.02 };

/** Element tables per (init, dtype): a 16-bit random index picks one pre-converted value. */
const tableCache = new Map<string, Uint16Array | Float32Array>();
function valueTable(init: { mean: number; std: number }, dtype: "f32" | "f16" | "bf16"): Uint16Array | Float32Array {
  const key = `${init.mean}/${init.std}/${dtype}`;
  let t = tableCache.get(key);
  if (t) return t;
  const z = normalTable();
  if (dtype === "f32") {
    t = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) t[i] = init.mean + init.std * z[i];
  } else {
    const conv = dtype === "f16" ? f32ToF16Bits : f32ToBf16Bits;
    t = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) t[i] = conv(init.mean + init.std * z[i]);
  }
  tableCache.set(key, t);
  return t;
}

const CHUNK = 1 << 20;

/** Stream a tensor's bytes in chunks of at most 1 Mi elements. */
function produceTensor(spec: RandomSpec, seed: number, write: (chunk: Uint8Array) => void): void {
  const n = numel(spec.shape);
  const dtype = spec.dtype;
  if (dtype !== "f32" && dtype !== "f16" && dtype !== "bf16") throw new Error(`random: no float dtype for ${spec.name}`);
  if ("values" in spec.init) {
    const v = spec.init.values;
    if (dtype === "f32") return write(new Uint8Array(v.slice().buffer));
    const conv = dtype === "f16" ? f32ToF16Bits : f32ToBf16Bits;
    return write(new Uint8Array(Uint16Array.from(v, conv).buffer));
  }
  const rng = new Xoshiro128(seed, hash32(spec.name));
  const table = valueTable(spec.init, dtype);
  for (let start = 0; start < n; start += CHUNK) {
    const m = Math.min(CHUNK, n - start);
    const out = dtype === "f32" ? new Float32Array(m) : new Uint16Array(m);
    fillFromTable(out, table, rng);
    write(new Uint8Array(out.buffer));
  }
}

function fillFromTable(out: Float32Array | Uint16Array, table: Float32Array | Uint16Array, rng: Xoshiro128): void {
  const m = out.length;
  let i = 0;
  for (; i + 1 < m; i += 2) {
    const r = rng.nextU32();
    out[i] = table[r & 0xffff];
    out[i + 1] = table[r >>> 16];
  }
  if (i < m) out[i] = table[rng.nextU32() & 0xffff];
}

/** A whole random tensor in memory (for the small classifier pickle). */
function randomTensor(spec: RandomSpec, seed: number): HostTensor {
  const data = new Uint8Array(numel(spec.shape) * DTYPE_BYTES[spec.dtype]);
  let off = 0;
  produceTensor(spec, seed, (c) => {
    data.set(c, off);
    off += c.byteLength;
  });
  return { dtype: spec.dtype, shape: spec.shape, data };
}

function esmSpecs(a: EsmArch, dtype: RandomDtype, outliers = false, seed = 0): RandomSpec[] {
  const H = a.hidden;
  const I = a.intermediate;
  const s = (name: string, shape: number[], init: Init): RandomSpec => ({ name, dtype, shape, init });
  const lnW = (name: string): RandomSpec => s(name, [H], outliers ? { values: outlierLnWeight(name, H, seed) } : LN_WEIGHT);
  const inv = esmInvFreq(H / a.heads);
  const specs: RandomSpec[] = [s("esm.embeddings.word_embeddings.weight", [ESM_VOCAB, H], LINEAR)];
  for (let l = 0; l < a.layers; l++) {
    const p = `esm.encoder.layer.${l}.`;
    specs.push(lnW(`${p}attention.LayerNorm.weight`), s(`${p}attention.LayerNorm.bias`, [H], LN_BIAS));
    for (const x of ["query", "key", "value"]) {
      specs.push(s(`${p}attention.self.${x}.weight`, [H, H], LINEAR), s(`${p}attention.self.${x}.bias`, [H], BIAS));
    }
    specs.push(
      s(`${p}attention.self.rotary_embeddings.inv_freq`, [inv.length], { values: inv }),
      s(`${p}attention.output.dense.weight`, [H, H], LINEAR),
      s(`${p}attention.output.dense.bias`, [H], BIAS),
      lnW(`${p}LayerNorm.weight`),
      s(`${p}LayerNorm.bias`, [H], LN_BIAS),
      s(`${p}intermediate.dense.weight`, [I, H], LINEAR),
      s(`${p}intermediate.dense.bias`, [I], BIAS),
      s(`${p}output.dense.weight`, [H, I], LINEAR),
      s(`${p}output.dense.bias`, [H], BIAS),
    );
  }
  specs.push(
    s("esm.encoder.emb_layer_norm_after.weight", [H], LN_WEIGHT),
    s("esm.encoder.emb_layer_norm_after.bias", [H], LN_BIAS),
    // the heads EsmForMaskedLM checkpoints carry (loaders ignore them)
    s("esm.contact_head.regression.weight", [1, a.layers * a.heads], LINEAR),
    s("esm.contact_head.regression.bias", [1], BIAS),
    s("lm_head.dense.weight", [H, H], LINEAR),
    s("lm_head.dense.bias", [H], BIAS),
    s("lm_head.layer_norm.weight", [H], LN_WEIGHT),
    s("lm_head.layer_norm.bias", [H], LN_BIAS),
    s("lm_head.bias", [ESM_VOCAB], BIAS),
  );
  return specs;
}

function dnabertSpecs(a: DnabertArch, dtype: RandomDtype): RandomSpec[] {
  const H = a.hidden;
  const I = a.intermediate;
  const s = (name: string, shape: number[], init: Init): RandomSpec => ({ name, dtype, shape, init });
  const specs: RandomSpec[] = [
    s("embeddings.word_embeddings.weight", [a.vocab, H], LINEAR),
    s("embeddings.token_type_embeddings.weight", [2, H], LINEAR),
    s("embeddings.LayerNorm.weight", [H], LN_WEIGHT),
    s("embeddings.LayerNorm.bias", [H], LN_BIAS),
  ];
  for (let l = 0; l < a.layers; l++) {
    const p = `encoder.layer.${l}.`;
    specs.push(
      s(`${p}attention.self.Wqkv.weight`, [3 * H, H], LINEAR),
      s(`${p}attention.self.Wqkv.bias`, [3 * H], BIAS),
      s(`${p}attention.output.dense.weight`, [H, H], LINEAR),
      s(`${p}attention.output.dense.bias`, [H], BIAS),
      s(`${p}attention.output.LayerNorm.weight`, [H], LN_WEIGHT),
      s(`${p}attention.output.LayerNorm.bias`, [H], LN_BIAS),
      s(`${p}mlp.gated_layers.weight`, [2 * I, H], LINEAR),
      s(`${p}mlp.wo.weight`, [H, I], LINEAR),
      s(`${p}mlp.wo.bias`, [H], BIAS),
      s(`${p}mlp.layernorm.weight`, [H], LN_WEIGHT),
      s(`${p}mlp.layernorm.bias`, [H], LN_BIAS),
    );
  }
  return specs;
}

/** Float fields must stay floats in config.json (transformers 5 rejects `"hidden_dropout_prob": 0`). */
const FLOAT_FIELD = /^(\s*"\w*(?:_prob|_eps|_range|dropout)": )(-?\d+)(,?)$/gm;

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2).replace(FLOAT_FIELD, "$1$2.0$3")}\n`);
}

const ESM_TOKENS = [
  "<cls>", "<pad>", "<eos>", "<unk>", "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N", "F",
  "Y", "M", "H", "W", "C", "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>",
];

function writeEsm(name: string, a: EsmArch, seed: number, dir: string, dtype: RandomDtype, outliers = false): void {
  writeJson(join(dir, "config.json"), {
    _name_or_path: `random/${name}`,
    architectures: ["EsmForMaskedLM"],
    attention_probs_dropout_prob: 0.0,
    classifier_dropout: null,
    emb_layer_norm_before: false,
    esmfold_config: null,
    hidden_act: "gelu",
    hidden_dropout_prob: 0.0,
    hidden_size: a.hidden,
    initializer_range: 0.02,
    intermediate_size: a.intermediate,
    is_folding_model: false,
    layer_norm_eps: 1e-5,
    mask_token_id: ESM_MASK_ID,
    max_position_embeddings: 1026,
    model_type: "esm",
    num_attention_heads: a.heads,
    num_hidden_layers: a.layers,
    pad_token_id: 1,
    position_embedding_type: "rotary",
    token_dropout: true,
    torch_dtype: dtype === "f16" ? "float16" : "float32",
    use_cache: true,
    vocab_list: null,
    vocab_size: ESM_VOCAB,
  });
  writeFileSync(join(dir, "vocab.txt"), `${ESM_TOKENS.join("\n")}\n`);
  writeJson(join(dir, "special_tokens_map.json"), {
    cls_token: "<cls>", eos_token: "<eos>", mask_token: "<mask>", pad_token: "<pad>", unk_token: "<unk>",
  });
  writeJson(join(dir, "tokenizer_config.json"), { model_max_length: 1000000000000000019884624838656, tokenizer_class: "EsmTokenizer" });
  const specs = esmSpecs(a, dtype, outliers, seed);
  const byName = new Map(specs.map((s) => [s.name, s]));
  writeSafetensorsStreaming(join(dir, "model.safetensors"), specs, (s, w) => produceTensor(byName.get(s.name)!, seed, w), {
    format: "pt",
  });
}

function writeDnabert(name: string, a: DnabertArch, seed: number, dir: string, dtype: RandomDtype, tokenizer?: string): void {
  writeJson(join(dir, "config.json"), {
    _name_or_path: `random/${name}`,
    alibi_starting_size: 512,
    architectures: ["BertModel"],
    attention_probs_dropout_prob: 0.0,
    classifier_dropout: null,
    gradient_checkpointing: false,
    hidden_act: "gelu",
    hidden_dropout_prob: 0.1,
    hidden_size: a.hidden,
    initializer_range: 0.02,
    intermediate_size: a.intermediate,
    layer_norm_eps: 1e-12,
    max_position_embeddings: 512,
    model_type: "bert",
    num_attention_heads: a.heads,
    num_hidden_layers: a.layers,
    pad_token_id: 0,
    position_embedding_type: "absolute",
    torch_dtype: dtype === "f16" ? "float16" : "float32",
    type_vocab_size: 2,
    use_cache: true,
    vocab_size: a.vocab,
  });
  if (tokenizer) {
    if (!existsSync(tokenizer)) throw new UserError(`${tokenizer}: tokenizer file not found`);
    copyFileSync(tokenizer, join(dir, "tokenizer.json"));
  } else {
    writeJson(join(dir, "tokenizer.json"), syntheticDnaTokenizer(seed, a.vocab));
  }
  writeJson(join(dir, "special_tokens_map.json"), {
    cls_token: "[CLS]", mask_token: "[MASK]", pad_token: "[PAD]", sep_token: "[SEP]", unk_token: "[UNK]",
  });
  writeJson(join(dir, "tokenizer_config.json"), {
    clean_up_tokenization_spaces: true,
    cls_token: "[CLS]",
    mask_token: "[MASK]",
    model_max_length: 1000000000000000019884624838656,
    pad_token: "[PAD]",
    sep_token: "[SEP]",
    tokenizer_class: "PreTrainedTokenizerFast",
    unk_token: "[UNK]",
  });
  const specs = dnabertSpecs(a, dtype);
  const byName = new Map(specs.map((s) => [s.name, s]));
  writeSafetensorsStreaming(join(dir, "model.safetensors"), specs, (s, w) => produceTensor(byName.get(s.name)!, seed, w), {
    format: "pt",
  });
}

function writeClassifier(a: ClassifierArch, seed: number, dir: string): void {
  const t = (name: string, shape: number[], init: Init) => randomTensor({ name, dtype: "f32", shape, init }, seed);
  const U = a.hidden;
  const hidden = torchModule("torch.nn.modules.linear.Linear", {
    parameters: {
      weight: t("hidden_layer.weight", [U, a.inFeatures], LINEAR),
      bias: t("hidden_layer.bias", [U], BIAS),
    },
    fields: { in_features: a.inFeatures, out_features: U },
  });
  const bn = torchModule("torch.nn.modules.batchnorm.BatchNorm1d", {
    parameters: { weight: t("bn1.weight", [U], LN_WEIGHT), bias: t("bn1.bias", [U], LN_BIAS) },
    buffers: {
      running_mean: t("bn1.running_mean", [U], { mean: 0, std: 0.05 }),
      running_var: t("bn1.running_var", [U], { mean: 1, std: 0.1 }),
      num_batches_tracked: { dtype: "i64", shape: [], data: new Uint8Array(new BigInt64Array([1000n]).buffer) },
    },
    fields: { num_features: U, eps: 1e-5, momentum: 0.1, affine: true, track_running_stats: true },
  });
  const out = torchModule("torch.nn.modules.linear.Linear", {
    parameters: {
      weight: t("output_layer.weight", [a.nClasses, U], LINEAR),
      bias: t("output_layer.bias", [a.nClasses], BIAS),
    },
    fields: { in_features: U, out_features: a.nClasses },
  });
  const dropout = torchModule("torch.nn.modules.dropout.Dropout", { fields: { p: 0.5, inplace: false } });
  const model = torchModule("__main__.MLPClassifier", {
    modules: { hidden_layer: hidden, bn1: bn, output_layer: out, dropout },
  });
  writeTorch(join(dir, "model.pth"), model, { root: "model" });
}

/** f16 for the models too big to want in f32 (ESM-2 3B and 15B), f32 for the rest. */
export function defaultRandomDtype(arch: string): RandomDtype {
  const a = RANDOM_ARCHS[arch];
  return a?.kind === "esm" && a.hidden >= 2560 ? "f16" : "f32";
}

/** Write a seeded random model of a named architecture into `outDir` (created if needed). */
export function writeRandomModel(arch: string, seed: number, outDir: string, opts: RandomModelOptions = {}): void {
  const a = RANDOM_ARCHS[arch];
  if (!a) throw new UserError(`unknown architecture '${arch}' (one of: ${Object.keys(RANDOM_ARCHS).join(", ")})`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new UserError(`seed must be an integer between 0 and 4294967295, got ${seed}`);
  }
  const dtype: RandomDtype = opts.dtype ?? defaultRandomDtype(arch);
  if (dtype !== "f32" && dtype !== "f16") throw new UserError(`--dtype must be f32 or f16, got ${String(dtype)}`);
  mkdirSync(outDir, { recursive: true });
  if (opts.outliers && a.kind !== "esm") throw new UserError(`--outliers applies to ESM-2 architectures only, not ${arch}`);
  if (a.kind === "esm") writeEsm(arch, a, seed, outDir, dtype, opts.outliers ?? false);
  else if (a.kind === "dnabert") writeDnabert(arch, a, seed, outDir, dtype, opts.tokenizer);
  else writeClassifier(a, seed, outDir);
}
