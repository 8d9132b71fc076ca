/**
 * State dicts from any checkpoint layout: one safetensors or torch file (told apart by magic bytes),
 * a Hugging Face directory, or shards listed by an `*.index.json` weight map.
 * Whole-module pickles (torch.save(model)) are flattened into dotted names like `bn1.running_mean`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { UserError } from "../util/errors.ts";
import { isHostTensor } from "./dtype.ts";
import { readMagic } from "./file.ts";
import { PyObject } from "./pickle.ts";
import { isSafetensors, readSafetensors } from "./safetensors.ts";
import type { HostTensor } from "./tensor.ts";
import { readTorchArchive } from "./torch.ts";
import { isZip } from "./zip.ts";

export interface Checkpoint {
  tensors: Map<string, HostTensor>;
  /** Weight files read, in order. */
  files: string[];
  /** For a single torch file: the unpickled root value (fair-esm keeps its config there). */
  root?: unknown;
}

/** Weight file names looked for in a model directory, in order of preference (as transformers does). */
export const WEIGHT_FILES = [
  "model.safetensors",
  "model.safetensors.index.json",
  "pytorch_model.bin",
  "pytorch_model.bin.index.json",
];

export function loadStateDict(path: string): Map<string, HostTensor> {
  return openCheckpoint(path).tensors;
}

export function openCheckpoint(path: string): Checkpoint {
  if (!existsSync(path)) throw new UserError(`${path}: no such file or directory`);
  if (statSync(path).isDirectory()) return openDirectory(path);
  if (path.endsWith(".index.json")) return openSharded(path);
  return openFile(path);
}

function openDirectory(dir: string): Checkpoint {
  for (const name of WEIGHT_FILES) {
    const p = join(dir, name);
    if (existsSync(p)) return openCheckpoint(p);
  }
  const candidates = readdirSync(dir).filter((f) => /\.(safetensors|bin|pt|pth)$/.test(f));
  if (candidates.length === 1) return openFile(join(dir, candidates[0]));
  throw new UserError(
    `${dir}: no weights found (expected one of ${WEIGHT_FILES.join(", ")}${candidates.length ? `; found ${candidates.join(", ")}` : ""})`,
  );
}

function openSharded(indexPath: string): Checkpoint {
  let weightMap: Record<string, string>;
  try {
    weightMap = JSON.parse(readFileSync(indexPath, "utf8")).weight_map;
  } catch {
    throw new UserError(`${indexPath}: not a valid JSON index`);
  }
  if (!weightMap || typeof weightMap !== "object") throw new UserError(`${indexPath}: no weight_map in the index`);
  const byFile = new Map<string, string[]>();
  for (const [name, file] of Object.entries(weightMap)) {
    if (typeof file !== "string" || file.includes("..")) throw new UserError(`${indexPath}: bad shard name for ${name}`);
    let list = byFile.get(file);
    if (!list) byFile.set(file, (list = []));
    list.push(name);
  }
  const tensors = new Map<string, HostTensor>();
  const files: string[] = [];
  for (const [file, names] of [...byFile].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const p = join(dirname(indexPath), file);
    if (!existsSync(p)) throw new UserError(`${indexPath}: shard ${file} is missing (download it next to the index)`);
    const shard = openFile(p);
    for (const name of names) {
      const t = shard.tensors.get(name);
      if (!t) throw new UserError(`${p}: tensor ${name} listed in ${basename(indexPath)} is not in the shard`);
      tensors.set(name, t);
    }
    files.push(p);
  }
  return { tensors, files };
}

function openFile(path: string): Checkpoint {
  const magic = readMagic(path, 16);
  if (isZip(magic)) {
    const { value } = readTorchArchive(path);
    return { tensors: stateDictFrom(value, path), files: [path], root: value };
  }
  if (isSafetensors(magic)) return { tensors: readSafetensors(path).tensors, files: [path] };
  if (magic[0] === 0x80 && magic[1] <= 5) {
    throw new UserError(`${path}: legacy (pre-1.6) PyTorch format; re-save it with a recent torch.save to get the zip format`);
  }
  throw new UserError(`${path}: not a safetensors or PyTorch checkpoint`);
}

const WRAPPER_KEYS = ["state_dict", "model_state_dict", "model", "module", "net"];

/**
 * How deep a checkpoint's values are walked (modules in modules, dicts in dicts). Real models nest
 * a few levels; a pickle can nest a value a million deep, or in itself.
 */
const MAX_DEPTH = 200;
/** Module objects walked for one state dict, counting repeats (the 3B ESM-2 has a few hundred). */
const MAX_MODULE_VISITS = 200_000;

function tooDeep(source: string): UserError {
  return new UserError(`${source}: the checkpoint's values nest more than ${MAX_DEPTH} levels deep: not a model`);
}

/** The state dict inside an unpickled checkpoint: a dict of tensors, a module object, or a wrapper dict. */
export function stateDictFrom(value: unknown, source: string, depth = 0): Map<string, HostTensor> {
  if (depth > WRAPPER_KEYS.length * 2) throw tooDeep(source);
  if (isModule(value)) return moduleStateDict(value, "", new Map(), source);
  if (value instanceof PyObject && value.__items__) value = value.__items__;
  if (value instanceof Map) {
    let direct = 0;
    for (const v of value.values()) if (isHostTensor(v)) direct++;
    if (direct === 0) {
      for (const k of WRAPPER_KEYS) {
        const inner: unknown = value.get(k);
        if (inner !== value && (inner instanceof Map || isModule(inner) || (inner instanceof PyObject && inner.__items__))) {
          return stateDictFrom(inner, source, depth + 1);
        }
      }
    }
    const out = collectTensors(value, "", new Map(), source);
    if (out.size > 0) return out;
  }
  throw new UserError(`${source}: no tensors found (not a state dict or a saved model)`);
}

function isModule(v: unknown): v is PyObject {
  return v instanceof PyObject && v.__state__ instanceof Map && v.__state__.has("_modules");
}

/**
 * What module.state_dict() would return: parameters, persistent buffers, then submodules, dotted.
 * A module met again below itself (a cycle) is not walked twice.
 */
export function moduleStateDict(
  mod: PyObject,
  prefix = "",
  out = new Map<string, HostTensor>(),
  source = "checkpoint",
  walk: { path: Set<unknown>; visits: number } = { path: new Set(), visits: 0 },
): Map<string, HostTensor> {
  const path = walk.path;
  if (path.has(mod)) return out;
  if (path.size >= MAX_DEPTH) throw tooDeep(source);
  // a module shared under many names is walked under each, as torch does; but not without end
  if (++walk.visits > MAX_MODULE_VISITS) throw new UserError(`${source}: more than ${MAX_MODULE_VISITS} modules: not a model`);
  path.add(mod);
  const params = asMap(mod.get("_parameters"));
  const buffers = asMap(mod.get("_buffers"));
  const skip = mod.get("_non_persistent_buffers_set");
  for (const [k, t] of params) if (isHostTensor(t)) out.set(`${prefix}${String(k)}`, t);
  for (const [k, t] of buffers) {
    if (skip instanceof Set && skip.has(k)) continue;
    if (isHostTensor(t)) out.set(`${prefix}${String(k)}`, t);
  }
  for (const [k, child] of asMap(mod.get("_modules"))) {
    if (isModule(child)) moduleStateDict(child, `${prefix}${String(k)}.`, out, source, walk);
  }
  path.delete(mod);
  return out;
}

function asMap(v: unknown): Map<unknown, unknown> {
  if (v instanceof Map) return v;
  if (v instanceof PyObject && v.__items__) return v.__items__;
  return new Map();
}

/**
 * Every tensor reachable from a value, named by its path (dict keys, list indices, module names).
 * Each container is walked once (a pickle may share one, or hold a container inside itself).
 */
export function collectTensors(
  value: unknown,
  prefix = "",
  out = new Map<string, HostTensor>(),
  source = "checkpoint",
  seen: Set<unknown> = new Set(),
  depth = 0,
): Map<string, HostTensor> {
  const join = (k: unknown) => (prefix ? `${prefix}.${String(k)}` : String(k));
  if (isHostTensor(value)) {
    out.set(prefix, value);
    return out;
  }
  if (typeof value !== "object" || value === null || seen.has(value)) return out;
  if (depth >= MAX_DEPTH) throw tooDeep(source);
  seen.add(value);
  if (isModule(value)) {
    for (const [k, t] of moduleStateDict(value, "", new Map(), source)) out.set(join(k), t);
  } else if (value instanceof Map) {
    for (const [k, v] of value) collectTensors(v, join(k), out, source, seen, depth + 1);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => collectTensors(v, join(i), out, source, seen, depth + 1));
  } else if (value instanceof PyObject) {
    if (value.__items__) collectTensors(value.__items__, prefix, out, source, seen, depth + 1);
    if (value.__state__ !== undefined) collectTensors(value.__state__, prefix, out, source, seen, depth + 1);
  }
  return out;
}
