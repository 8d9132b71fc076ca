/**
 * DNABERT-S (MosaicBERT: ALiBi, fused Wqkv, gated GELU FFN) weights in the canonical names of
 * cuda/include/virnuc.h, from a Hugging Face directory (config.json, weights, tokenizer.json).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../util/errors.ts";
import { openCheckpoint } from "./checkpoint.ts";
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
  modelDir,
  readConfigJson,
} from "./layout.ts";
import type { EncoderConfig, HostTensor } from "./tensor.ts";

export type { EncoderModel } from "./layout.ts";

/** zhihan1996/DNABERT-S (models.md). */
export const DNABERT_S = { layers: 12, hidden: 768, heads: 12, intermediate: 3072, vocab: 4096 };

const IGNORED = [/^pooler\./, /^cls\./, /position_ids$/, /^embeddings\.position_embeddings\./];

/** Canonical names: without `bert.`, LayerNorm gamma/beta as weight/bias, heads dropped. */
export function canonicalDnabertNames(tensors: Map<string, HostTensor>): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [raw, t] of tensors) {
    const name = gammaBeta(raw).replace(/^bert\./, "");
    if (IGNORED.some((re) => re.test(name))) continue;
    out.set(name, t);
  }
  return out;
}

export function dnabertExpected(c: EncoderConfig): Expected[] {
  const H = c.hidden;
  const I = c.intermediate;
  const e: Expected[] = [
    { name: "embeddings.word_embeddings.weight", shape: [c.vocab, H] },
    { name: "embeddings.token_type_embeddings.weight", shape: [-1, H] },
    { name: "embeddings.LayerNorm.weight", shape: [H] },
    { name: "embeddings.LayerNorm.bias", shape: [H] },
  ];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `encoder.layer.${l}.`;
    e.push(
      { name: `${p}attention.self.Wqkv.weight`, shape: [3 * H, H] },
      { name: `${p}attention.self.Wqkv.bias`, shape: [3 * H] },
      { name: `${p}attention.output.dense.weight`, shape: [H, H] },
      { name: `${p}attention.output.dense.bias`, shape: [H] },
      { name: `${p}attention.output.LayerNorm.weight`, shape: [H] },
      { name: `${p}attention.output.LayerNorm.bias`, shape: [H] },
      { name: `${p}mlp.gated_layers.weight`, shape: [2 * I, H] },
      { name: `${p}mlp.wo.weight`, shape: [H, I] },
      { name: `${p}mlp.wo.bias`, shape: [H] },
      { name: `${p}mlp.layernorm.weight`, shape: [H] },
      { name: `${p}mlp.layernorm.bias`, shape: [H] },
    );
  }
  return e;
}

export function loadDnabert(path: string): EncoderModel {
  const ckpt = openCheckpoint(path);
  const tensors = canonicalDnabertNames(ckpt.tensors);
  const json = readConfigJson(path);
  const cfg = json && json.config.model_type !== "esm" ? json.config : undefined;
  const src = json?.path ?? path;
  if (![...tensors.keys()].some((n) => n.endsWith("attention.self.Wqkv.weight"))) {
    throw new UserError(`${path}: not a DNABERT-S checkpoint (no attention.self.Wqkv weights; ${firstNames(ckpt.tensors)})`);
  }
  const present = countLayers(tensors.keys());
  const hidden = configInt(cfg, "hidden_size", src) ?? dim(tensors, "embeddings.word_embeddings.weight", 1);
  const nLayers = configInt(cfg, "num_hidden_layers", src) ?? present;
  if (!hidden || nLayers === 0) {
    throw new UserError(`${path}: not a DNABERT-S checkpoint (no embeddings.word_embeddings.weight / encoder layers found)`);
  }
  if (present > nLayers) throw new UserError(`${path}: checkpoint has ${present} layers but the config says ${nLayers}`);
  // MosaicBERT heads are 64 wide; only a config.json can say otherwise
  const nHeads = configInt(cfg, "num_attention_heads", src) ?? (hidden % 64 === 0 ? hidden / 64 : undefined);
  if (!nHeads || hidden % nHeads !== 0) {
    throw new UserError(`${path}: cannot tell the number of attention heads for hidden size ${hidden}; add a config.json`);
  }
  const config: EncoderConfig = {
    arch: "dnabert",
    nLayers,
    hidden,
    nHeads,
    intermediate:
      configInt(cfg, "intermediate_size", src) ?? dim(tensors, "encoder.layer.0.mlp.wo.weight", 1) ?? 4 * hidden,
    vocab: configInt(cfg, "vocab_size", src) ?? dim(tensors, "embeddings.word_embeddings.weight", 0) ?? DNABERT_S.vocab,
    lnEps: configNumber(cfg, "layer_norm_eps", src) ?? 1e-12,
  };
  const tok = join(modelDir(path), "tokenizer.json");
  return {
    config,
    tensors: checkTensors(path, "DNABERT-S", tensors, dnabertExpected(config)),
    tokenizerPath: existsSync(tok) ? tok : undefined,
    files: ckpt.files,
  };
}
