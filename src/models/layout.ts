/** Shared pieces of the model layouts: renaming, shape checks, config files. */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { UserError } from "../util/errors.ts";
import { castFloat, shapeString } from "./dtype.ts";
import type { ClassifierConfig, EncoderConfig, HostTensor } from "./tensor.ts";

/** An encoder ready for vn_model_load: canonical tensor names (cuda/include/virnuc.h) and its config. */
export interface EncoderModel {
  config: EncoderConfig;
  tensors: Map<string, HostTensor>;
  tokenizerPath?: string;
  /** Weight files used. */
  files: string[];
}

export interface ClassifierModel {
  config: ClassifierConfig;
  tensors: Map<string, HostTensor>;
  files: string[];
}

/** One expected tensor; -1 in a shape accepts any size in that dimension. */
export interface Expected {
  name: string;
  shape: number[];
}

/** Model folder of a path: the directory itself, or the folder a weight file sits in. */
export function modelDir(path: string): string {
  return statSync(path).isDirectory() ? path : dirname(path);
}

/** config.json of a model directory (or beside a weight file), if there is one. */
export function readConfigJson(path: string): { path: string; config: Record<string, unknown> } | undefined {
  const p = join(modelDir(path), "config.json");
  if (!existsSync(p)) return undefined;
  try {
    return { path: p, config: JSON.parse(readFileSync(p, "utf8")) };
  } catch {
    throw new UserError(`${p}: not valid JSON`);
  }
}

/** LayerNorm parameters of old BERT checkpoints are called gamma/beta. */
export function gammaBeta(name: string): string {
  if (name.endsWith(".gamma")) return `${name.slice(0, -6)}.weight`;
  if (name.endsWith(".beta")) return `${name.slice(0, -5)}.bias`;
  return name;
}

/**
 * Keep the expected tensors under their canonical names, in the expected order, as float tensors;
 * one UserError line names what is missing and what has the wrong shape.
 */
export function checkTensors(
  source: string,
  kind: string,
  tensors: Map<string, HostTensor>,
  expected: Expected[],
): Map<string, HostTensor> {
  const missing: string[] = [];
  const wrong: string[] = [];
  const out = new Map<string, HostTensor>();
  for (const e of expected) {
    const t = tensors.get(e.name);
    if (!t) {
      missing.push(e.name);
      continue;
    }
    const ok = t.shape.length === e.shape.length && e.shape.every((d, i) => d === -1 || d === t.shape[i]);
    if (!ok) {
      wrong.push(`${e.name} is ${shapeString(t.shape)}, expected ${shapeString(e.shape).replace(/-1/g, "*")}`);
      continue;
    }
    if (t.dtype === "f32" || t.dtype === "f16" || t.dtype === "bf16") out.set(e.name, t);
    else if (t.dtype === "f64") out.set(e.name, castFloat(t, "f32"));
    else wrong.push(`${e.name} has dtype ${t.dtype}, expected a float type`);
  }
  if (missing.length || wrong.length) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing ${missing.length} tensor${missing.length > 1 ? "s" : ""} (${few(missing)})`);
    if (wrong.length) parts.push(`${wrong.length} wrong (${few(wrong)})`);
    throw new UserError(`${source}: not a usable ${kind} checkpoint: ${parts.join("; ")}`);
  }
  return out;
}

/** "found a, b, c, ..." for error messages about the wrong kind of checkpoint. */
export function firstNames(tensors: Map<string, unknown>): string {
  return tensors.size === 0 ? "it holds no tensors" : `found ${few([...tensors.keys()])}`;
}

function few(items: string[], n = 3): string {
  return items.length <= n ? items.join(", ") : `${items.slice(0, n).join(", ")}, ... ${items.length - n} more`;
}

/** Number of transformer layers present: 1 + the largest N in `<prefix>N.` names. */
export function countLayers(names: Iterable<string>, prefix = "encoder.layer."): number {
  let n = 0;
  const re = new RegExp(`^${prefix.replace(/\./g, "\\.")}(\\d+)\\.`);
  for (const name of names) {
    const m = re.exec(name);
    if (m) n = Math.max(n, Number(m[1]) + 1);
  }
  return n;
}

/** A positive integer from a config object, or undefined when absent. */
export function configInt(cfg: Record<string, unknown> | undefined, key: string, source: string): number | undefined {
  const v = cfg?.[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new UserError(`${source}: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function configNumber(cfg: Record<string, unknown> | undefined, key: string, source: string): number | undefined {
  const v = cfg?.[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new UserError(`${source}: ${key} must be a number`);
  return v;
}

/** Size of one dimension of a tensor, or undefined when the tensor is absent. */
export function dim(tensors: Map<string, HostTensor>, name: string, axis: number): number | undefined {
  const t = tensors.get(name);
  return t && t.shape.length > axis ? t.shape[axis] : undefined;
}
