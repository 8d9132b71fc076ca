/** `virnuc models inspect`: the tensors of a checkpoint, and the model it holds when it is one we know. */
import { oneLine } from "../util/errors.ts";
import { collectTensors, openCheckpoint } from "./checkpoint.ts";
import { loadClassifier } from "./classifier.ts";
import { loadDnabert } from "./dnabert.ts";
import { shapeString } from "./dtype.ts";
import { loadEsm } from "./esm.ts";
import type { ClassifierModel, EncoderModel } from "./layout.ts";
import { PyObject } from "./pickle.ts";
import { numel, type HostTensor } from "./tensor.ts";

export type ModelKind = "esm2" | "dnabert" | "classifier";

/** Which known model a set of tensor names looks like. */
export function detectKind(names: Iterable<string>): ModelKind | undefined {
  let esm = false;
  for (const n of names) {
    if (/attention\.self\.Wqkv\.weight$/.test(n)) return "dnabert";
    if (/(^|\.)hidden_layer\.weight$/.test(n)) return "classifier";
    if (/(attention\.self\.query\.weight|self_attn\.q_proj\.weight|rotary_embeddings\.inv_freq|rot_emb\.inv_freq)$/.test(n)) esm = true;
  }
  return esm ? "esm2" : undefined;
}

/** One line per value at the top of a pickle: what a generic torch file (not a state dict) holds. */
function describe(v: unknown): string {
  if (v === null) return "None";
  if (Array.isArray(v)) return `list[${v.length}]`;
  if (v instanceof Map) return `dict[${v.size}]`;
  if (v instanceof PyObject) return v.__class__;
  if (typeof v === "object" && v !== null && "shape" in v) {
    const t = v as HostTensor;
    return `tensor ${t.dtype} ${shapeString(t.shape)}`;
  }
  return typeof v === "string" ? JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v) : String(v);
}

function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export function inspectModel(path: string): string {
  const ckpt = openCheckpoint(path);
  const lines: string[] = [];
  lines.push(`files: ${ckpt.files.join(", ")}`);
  let tensors = ckpt.tensors;
  if (ckpt.root instanceof Map) {
    lines.push(`top level: ${[...ckpt.root].map(([k, v]) => `${String(k)}: ${describe(v)}`).join(", ")}`);
    if (tensors.size === 0) tensors = collectTensors(ckpt.root);
  } else if (ckpt.root instanceof PyObject) {
    lines.push(`top level: ${ckpt.root.__class__} object`);
  }
  const nameWidth = Math.min(72, Math.max(4, ...[...tensors.keys()].map((n) => n.length)));
  let params = 0;
  let bytes = 0;
  for (const [name, t] of tensors) {
    lines.push(`${name.padEnd(nameWidth)}  ${t.dtype.padEnd(4)}  ${shapeString(t.shape)}`);
    params += numel(t.shape);
    bytes += t.data.byteLength;
  }
  lines.push(`${tensors.size} tensors, ${params.toLocaleString("en-US")} values, ${formatBytes(bytes)}`);
  const kind = detectKind(tensors.keys());
  if (kind) {
    try {
      lines.push(describeModel(kind, path));
    } catch (e) {
      lines.push(`model: looks like ${kind}, but cannot be used: ${oneLine(e)}`);
    }
  } else {
    lines.push("model: not a known layout (ESM-2, DNABERT-S or VirNucPro classifier)");
  }
  return `${lines.join("\n")}\n`;
}

function describeModel(kind: ModelKind, path: string): string {
  if (kind === "classifier") {
    const m: ClassifierModel = loadClassifier(path);
    const c = m.config;
    return `model: VirNucPro classifier: ${c.inFeatures} -> ${c.hidden} -> ${c.nClasses}, BatchNorm eps ${c.bnEps}`;
  }
  const m: EncoderModel = kind === "esm2" ? loadEsm(path) : loadDnabert(path);
  const c = m.config;
  const parts = [
    `${c.nLayers} layers`,
    `hidden ${c.hidden}`,
    `${c.nHeads} heads`,
    `intermediate ${c.intermediate}`,
    `vocab ${c.vocab}`,
    `LayerNorm eps ${c.lnEps}`,
  ];
  if (c.arch === "esm2") parts.push(`mask id ${c.maskTokenId}`, `token dropout ${c.tokenDropout ? "on" : "off"}`);
  if (m.tokenizerPath) parts.push(`tokenizer ${m.tokenizerPath}`);
  const name = c.arch === "esm2" ? "ESM-2" : "DNABERT-S";
  return `model: ${name}: ${parts.join(", ")}`;
}
