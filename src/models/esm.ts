/**
 * ESM-2 weights in the canonical names of cuda/include/virnuc.h, from a Hugging Face directory or file
 * (EsmModel / EsmForMaskedLM, with or without `esm.`) or a fair-esm `.pt` ({"model", "cfg"/"args"}).
 */
import { UserError } from "../util/errors.ts";
import { openCheckpoint } from "./checkpoint.ts";
import { fromFloat32, roundToF16 } from "./dtype.ts";
import {
  checkTensors,
  configInt,
  configNumber,
  countLayers,
  dim,
  type EncoderModel,
  type Expected,
  firstNames,
  gammaBeta,
  readConfigJson,
} from "./layout.ts";
import { PyObject } from "./pickle.ts";
import type { EncoderConfig, HostTensor } from "./tensor.ts";

export type { EncoderModel } from "./layout.ts";

/** The released ESM-2 models (models.md): vocab 33, FFN 4x hidden. */
export const ESM2_ARCHS: Record<string, { layers: number; hidden: number; heads: number }> = {
  esm2_t6_8M_UR50D: { layers: 6, hidden: 320, heads: 20 },
  esm2_t12_35M_UR50D: { layers: 12, hidden: 480, heads: 20 },
  esm2_t30_150M_UR50D: { layers: 30, hidden: 640, heads: 20 },
  esm2_t33_650M_UR50D: { layers: 33, hidden: 1280, heads: 20 },
  esm2_t36_3B_UR50D: { layers: 36, hidden: 2560, heads: 40 },
  esm2_t48_15B_UR50D: { layers: 48, hidden: 5120, heads: 40 },
};

export const ESM_VOCAB = 33;
export const ESM_MASK_ID = 32;

const IGNORED = [/^lm_head\./, /^contact_head\./, /^embeddings\.position_embeddings\./, /position_ids$/, /^pooler\./];

const FAIR_LAYER: [RegExp, string][] = [
  [/^layers\.(\d+)\.self_attn\.q_proj\./, "encoder.layer.$1.attention.self.query."],
  [/^layers\.(\d+)\.self_attn\.k_proj\./, "encoder.layer.$1.attention.self.key."],
  [/^layers\.(\d+)\.self_attn\.v_proj\./, "encoder.layer.$1.attention.self.value."],
  [/^layers\.(\d+)\.self_attn\.out_proj\./, "encoder.layer.$1.attention.output.dense."],
  [/^layers\.(\d+)\.self_attn\.rot_emb\.inv_freq$/, "encoder.layer.$1.attention.self.rotary_embeddings.inv_freq"],
  [/^layers\.(\d+)\.self_attn_layer_norm\./, "encoder.layer.$1.attention.LayerNorm."],
  [/^layers\.(\d+)\.fc1\./, "encoder.layer.$1.intermediate.dense."],
  [/^layers\.(\d+)\.fc2\./, "encoder.layer.$1.output.dense."],
  [/^layers\.(\d+)\.final_layer_norm\./, "encoder.layer.$1.LayerNorm."],
  [/^embed_tokens\./, "embeddings.word_embeddings."],
  [/^emb_layer_norm_after\./, "encoder.emb_layer_norm_after."],
];

const FAIR_DETECT = /(^|\.)layers\.\d+\.self_attn\./;
const PER_LAYER_INV_FREQ = /^encoder\.layer\.\d+\.attention\.self\.rotary_embeddings\.inv_freq$/;

/**
 * Canonical names for every ESM-2 naming variant. A shared `inv_freq` (one for all layers) is returned
 * separately so the caller can replicate it.
 */
export function canonicalEsmNames(tensors: Map<string, HostTensor>): {
  tensors: Map<string, HostTensor>;
  sharedInvFreq?: HostTensor;
} {
  const fair = [...tensors.keys()].some((n) => FAIR_DETECT.test(n));
  const out = new Map<string, HostTensor>();
  let sharedInvFreq: HostTensor | undefined;
  for (const [raw, t] of tensors) {
    let name = gammaBeta(raw);
    if (fair) {
      name = name.replace(/^encoder\.sentence_encoder\.|^encoder\./, "");
      for (const [re, to] of FAIR_LAYER) {
        if (re.test(name)) {
          name = name.replace(re, to);
          break;
        }
      }
    } else {
      name = name.replace(/^esm\./, "");
    }
    if (IGNORED.some((re) => re.test(name))) continue;
    if (name.endsWith("inv_freq") && !PER_LAYER_INV_FREQ.test(name)) {
      sharedInvFreq ??= t;
      continue;
    }
    out.set(name, t);
  }
  return { tensors: out, sharedInvFreq };
}

export function esmExpected(c: EncoderConfig): Expected[] {
  const H = c.hidden;
  const I = c.intermediate;
  const half = H / c.nHeads / 2;
  const e: Expected[] = [{ name: "embeddings.word_embeddings.weight", shape: [c.vocab, H] }];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `encoder.layer.${l}.`;
    e.push(
      { name: `${p}attention.LayerNorm.weight`, shape: [H] },
      { name: `${p}attention.LayerNorm.bias`, shape: [H] },
    );
    for (const x of ["query", "key", "value"]) {
      e.push({ name: `${p}attention.self.${x}.weight`, shape: [H, H] }, { name: `${p}attention.self.${x}.bias`, shape: [H] });
    }
    e.push(
      { name: `${p}attention.self.rotary_embeddings.inv_freq`, shape: [half] },
      { name: `${p}attention.output.dense.weight`, shape: [H, H] },
      { name: `${p}attention.output.dense.bias`, shape: [H] },
      { name: `${p}LayerNorm.weight`, shape: [H] },
      { name: `${p}LayerNorm.bias`, shape: [H] },
      { name: `${p}intermediate.dense.weight`, shape: [I, H] },
      { name: `${p}intermediate.dense.bias`, shape: [I] },
      { name: `${p}output.dense.weight`, shape: [H, I] },
      { name: `${p}output.dense.bias`, shape: [H] },
    );
  }
  e.push(
    { name: "encoder.emb_layer_norm_after.weight", shape: [H] },
    { name: "encoder.emb_layer_norm_after.bias", shape: [H] },
  );
  return e;
}

/** Rotary frequencies 1/10000^(2i/d), rounded through fp16 as the released checkpoints hold them. */
export function esmInvFreq(headDim: number): Float32Array {
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < out.length; i++) out[i] = roundToF16(1 / 10000 ** ((2 * i) / headDim));
  return out;
}

/** The fair-esm hyperparameters (`cfg["model"]` or `args`, a Namespace or dict) as a plain object. */
export function fairEsmConfig(root: unknown): Record<string, unknown> | undefined {
  const seen = new Set<unknown>();
  const queue: [unknown, number][] = [[root, 0]];
  while (queue.length) {
    const [v, depth] = queue.shift()!;
    if (v === null || typeof v !== "object" || seen.has(v) || depth > 4) continue;
    seen.add(v);
    const m = v instanceof PyObject ? (v.__state__ instanceof Map ? v.__state__ : v.__items__) : v instanceof Map ? v : undefined;
    if (!m) continue;
    if (m.has("encoder_layers") || m.has("encoder_embed_dim")) {
      const rec: Record<string, unknown> = {};
      for (const [k, x] of m) if (typeof k === "string") rec[k] = x;
      return rec;
    }
    // look at the config-like entries only, never into the weights
    for (const [k, x] of m) if (k !== "model" || !(x instanceof Map)) queue.push([x, depth + 1]);
  }
  return undefined;
}

export function loadEsm(path: string): EncoderModel {
  const ckpt = openCheckpoint(path);
  const { tensors, sharedInvFreq } = canonicalEsmNames(ckpt.tensors);
  const json = readConfigJson(path);
  // a config.json of another model type (a BERT one beside the file) says nothing about this model
  const mt = json?.config.model_type;
  const hf = json && (mt === "esm" || (mt === undefined && "num_hidden_layers" in json.config)) ? json.config : undefined;
  const src = json?.path ?? path;
  const fair = ckpt.root !== undefined ? fairEsmConfig(ckpt.root) : undefined;
  const fsrc = `${path} (cfg)`;

  if (![...tensors.keys()].some((n) => n.endsWith("attention.self.query.weight"))) {
    throw new UserError(`${path}: not an ESM-2 checkpoint (no attention query weights; ${firstNames(ckpt.tensors)})`);
  }
  const present = countLayers(tensors.keys());
  const nLayers = configInt(hf, "num_hidden_layers", src) ?? configInt(fair, "encoder_layers", fsrc) ?? present;
  const hidden =
    configInt(hf, "hidden_size", src) ??
    configInt(fair, "encoder_embed_dim", fsrc) ??
    dim(tensors, "embeddings.word_embeddings.weight", 1);
  if (!hidden || nLayers === 0) {
    throw new UserError(`${path}: not an ESM-2 checkpoint (no embeddings.word_embeddings.weight / encoder layers found)`);
  }
  if (present > nLayers) throw new UserError(`${path}: checkpoint has ${present} layers but the config says ${nLayers}`);
  const invLen = sharedInvFreq?.shape[0] ?? dim(tensors, "encoder.layer.0.attention.self.rotary_embeddings.inv_freq", 0);
  const nHeads =
    configInt(hf, "num_attention_heads", src) ??
    configInt(fair, "encoder_attention_heads", fsrc) ??
    (invLen ? hidden / (2 * invLen) : undefined) ??
    Object.values(ESM2_ARCHS).find((a) => a.hidden === hidden)?.heads;
  if (!nHeads || !Number.isInteger(nHeads) || hidden % nHeads !== 0 || (hidden / nHeads) % 2 !== 0) {
    throw new UserError(`${path}: cannot tell the number of attention heads for hidden size ${hidden}; add a config.json`);
  }
  const config: EncoderConfig = {
    arch: "esm2",
    nLayers,
    hidden,
    nHeads,
    intermediate:
      configInt(hf, "intermediate_size", src) ??
      configInt(fair, "encoder_ffn_embed_dim", fsrc) ??
      dim(tensors, "encoder.layer.0.intermediate.dense.weight", 0) ??
      4 * hidden,
    vocab: configInt(hf, "vocab_size", src) ?? dim(tensors, "embeddings.word_embeddings.weight", 0) ?? ESM_VOCAB,
    lnEps: configNumber(hf, "layer_norm_eps", src) ?? 1e-5,
    maskTokenId: hf?.mask_token_id === undefined ? ESM_MASK_ID : (configInt(hf, "mask_token_id", src) ?? ESM_MASK_ID),
    tokenDropout: typeof hf?.token_dropout === "boolean" ? hf.token_dropout : typeof fair?.token_dropout === "boolean" ? fair.token_dropout : true,
    maxPoolPositions: 1024,
  };
  // every layer needs its inv_freq: replicate a shared one, or rebuild the values the checkpoints store
  const inv = sharedInvFreq ?? fromFloat32(esmInvFreq(hidden / nHeads), [hidden / nHeads / 2]);
  for (let l = 0; l < nLayers; l++) {
    const name = `encoder.layer.${l}.attention.self.rotary_embeddings.inv_freq`;
    if (!tensors.has(name)) tensors.set(name, inv);
  }
  return { config, tensors: checkTensors(path, "ESM-2", tensors, esmExpected(config)), files: ckpt.files };
}
