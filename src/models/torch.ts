/**
 * PyTorch checkpoints (.bin/.pt/.pth, the zip format of torch >= 1.6) without Python:
 * `<root>/data.pkl` is unpickled with an allow-list, tensors become views on `<root>/data/<key>`.
 * Also a writer producing the same layout, for random models and tests.
 */
import { UserError } from "../util/errors.ts";
import { byteSize, isHostTensor } from "./dtype.ts";
import { FileSource } from "./file.ts";
import {
  type Callable,
  NewObj,
  OrderedDict,
  PersistentId,
  PyGlobal,
  PyObject,
  PickleWriter,
  Reduce,
  Tuple,
  unpickle,
} from "./pickle.ts";
import { DTYPE_BYTES, numel, type DType, type HostTensor } from "./tensor.ts";
import { entryBytes, readZipEntries, ZipWriter } from "./zip.ts";

/** torch.<X>Storage and torch.<dtype> names -> our dtype. */
const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: "f32", HalfStorage: "f16", BFloat16Storage: "bf16", DoubleStorage: "f64", LongStorage: "i64",
  IntStorage: "i32", ShortStorage: "i16", CharStorage: "i8", ByteStorage: "u8", BoolStorage: "bool",
  UntypedStorage: "u8",
  float32: "f32", float: "f32", float16: "f16", half: "f16", bfloat16: "bf16", float64: "f64", double: "f64",
  int64: "i64", long: "i64", int32: "i32", int: "i32", int16: "i16", short: "i16", int8: "i8", uint8: "u8", bool: "bool",
};
const DTYPE_STORAGE: Record<DType, string> = {
  f32: "FloatStorage", f16: "HalfStorage", bf16: "BFloat16Storage", f64: "DoubleStorage", i64: "LongStorage",
  i32: "IntStorage", i16: "ShortStorage", i8: "CharStorage", u8: "ByteStorage", bool: "BoolStorage",
};

/** A storage: a flat typed buffer that tensors view with offset, size and stride. */
interface Storage {
  dtype: DType;
  bytes: Uint8Array;
  key: string;
}

function isStorage(v: unknown): v is Storage {
  return typeof v === "object" && v !== null && "bytes" in v && "key" in v && "dtype" in v;
}

/** Bytes that gathering non-contiguous tensors may allocate beyond the file's own size. */
const GATHER_SLACK = 256 * 2 ** 20;

/**
 * A tensor from a storage; contiguous ones stay views, others are gathered into a new buffer.
 * `budget.bytes` bounds what gathering may allocate in all (strides of 0 can make a small storage
 * look like a huge tensor).
 */
function rebuildTensor(
  source: string,
  storage: unknown,
  offset: unknown,
  size: unknown,
  stride: unknown,
  budget: { bytes: number },
): HostTensor {
  if (!isStorage(storage)) throw new UserError(`${source}: tensor without a storage`);
  const shape = toInts(size, source);
  const strides = toInts(stride, source);
  const off = Number(offset);
  if (strides.length !== shape.length || !Number.isSafeInteger(off) || off < 0) {
    throw new UserError(`${source}: malformed tensor (size [${shape}], stride [${strides}])`);
  }
  const es = DTYPE_BYTES[storage.dtype];
  const storageNumel = storage.bytes.byteLength / es;
  const n = numel(shape);
  if (!Number.isSafeInteger(n * es)) throw new UserError(`${source}: tensor [${shape}] is impossibly large`);
  if (n === 0) return { dtype: storage.dtype, shape, data: new Uint8Array(0) };
  let maxIndex = off;
  for (let d = 0; d < shape.length; d++) maxIndex += (shape[d] - 1) * strides[d];
  if (!Number.isSafeInteger(maxIndex) || maxIndex >= storageNumel) {
    throw new UserError(`${source}: tensor [${shape}] runs past its storage '${storage.key}' (${storageNumel} elements)`);
  }
  let contiguous = true;
  for (let d = shape.length - 1, expect = 1; d >= 0; d--) {
    if (shape[d] !== 1 && strides[d] !== expect) contiguous = false;
    expect *= shape[d];
  }
  if (contiguous) return { dtype: storage.dtype, shape, data: storage.bytes.subarray(off * es, (off + n) * es) };
  budget.bytes -= n * es;
  if (budget.bytes < 0) {
    throw new UserError(`${source}: tensor [${shape}] with strides [${strides}] expands its storage beyond what the file can hold`);
  }
  // gather row by row over the innermost dimension
  const out = new Uint8Array(n * es);
  const src = storage.bytes;
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  const inner = shape[nd - 1];
  const innerStride = strides[nd - 1] * es;
  let o = 0;
  for (let row = 0; row < n / inner; row++) {
    let base = off;
    for (let d = 0; d < nd - 1; d++) base += idx[d] * strides[d];
    let s = base * es;
    for (let j = 0; j < inner; j++, s += innerStride) {
      for (let b = 0; b < es; b++) out[o++] = src[s + b];
    }
    for (let d = nd - 2; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return { dtype: storage.dtype, shape, data: out };
}

function toInts(v: unknown, source: string): number[] {
  if (!Array.isArray(v)) throw new UserError(`${source}: tensor size/stride is not a tuple`);
  return v.map((x) => {
    const n = Number(x);
    if (!Number.isInteger(n) || n < 0) throw new UserError(`${source}: bad tensor dimension ${String(x)}`);
    return n;
  });
}

export interface TorchArchive {
  /** The unpickled root value (dicts are Maps, tensors HostTensors, other classes PyObjects). */
  value: unknown;
  /** The zip's top folder (torch uses the file's stem, older versions "archive"). */
  root: string;
}

/** Read a torch zip checkpoint. */
export function readTorchArchive(path: string): TorchArchive {
  const src = FileSource.open(path);
  try {
    const entries = readZipEntries(src);
    let pklName: string | undefined;
    for (const name of entries.keys()) {
      if (name === "data.pkl" || name.endsWith("/data.pkl")) {
        if (!pklName || name.length < pklName.length) pklName = name;
      }
    }
    if (!pklName) throw new UserError(`${path}: zip file without data.pkl: not a PyTorch checkpoint`);
    const root = pklName.slice(0, pklName.length - "data.pkl".length);
    const order = entries.get(`${root}byteorder`);
    if (order) {
      const text = new TextDecoder().decode(entryBytes(src, order)).trim();
      if (text !== "little") throw new UserError(`${path}: stored in ${text}-endian byte order; only little-endian is supported`);
    }
    const storages = new Map<string, Storage>();
    const source = path;
    const persistentLoad = (pid: unknown): unknown => {
      if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length < 5) {
        throw new UserError(`${path}: unsupported persistent id in data.pkl`);
      }
      const [, type, keyRaw, , numelRaw] = pid as [string, unknown, unknown, unknown, unknown];
      const key = String(keyRaw);
      const typeName = type instanceof PyGlobal ? type.name : String(type);
      const dtype = STORAGE_DTYPES[typeName];
      if (!dtype || !(type instanceof PyGlobal && type.module === "torch")) {
        throw new UserError(`${path}: storage ${key} has unsupported type ${type instanceof PyGlobal ? type.qualname : typeName}`);
      }
      const seen = storages.get(key);
      if (seen) return seen;
      const entry = entries.get(`${root}data/${key}`);
      if (!entry) throw new UserError(`${path}: storage data/${key} is missing from the archive`);
      const count = Number(numelRaw);
      if (!Number.isSafeInteger(count) || count < 0) throw new UserError(`${path}: storage data/${key} has a bad element count ${String(numelRaw)}`);
      const want = byteSize(dtype, [count]);
      if (entry.size < want) throw new UserError(`${path}: storage data/${key} holds ${entry.size} bytes, needs ${want}`);
      const st: Storage = { dtype, key, bytes: entryBytes(src, entry).subarray(0, want) };
      storages.set(key, st);
      return st;
    };
    const budget = { bytes: src.size + GATHER_SLACK };
    const rebuildV2: Callable = (a) => rebuildTensor(source, a[0], a[1], a[2], a[3], budget);
    const callables: Record<string, Callable> = {
      "torch._utils._rebuild_tensor_v2": rebuildV2,
      "torch._utils._rebuild_tensor": rebuildV2,
      "torch._utils._rebuild_parameter": (a) => a[0],
      "torch._utils._rebuild_parameter_with_state": (a) => a[0],
      "torch._tensor._rebuild_from_type_v2": (a) => {
        const fn = a[0];
        const f = fn instanceof PyGlobal ? callables[fn.qualname] : undefined;
        if (!f || !Array.isArray(a[2])) return new PyObject("torch._tensor._rebuild_from_type_v2", a);
        return f(a[2]);
      },
      "torch.Size": (a) => (Array.isArray(a[0]) ? [...a[0]] : []),
    };
    const pkl = entries.get(pklName)!;
    const value = unpickle(entryBytes(src, pkl), { source: `${path} (${pklName})`, persistentLoad, callables });
    return { value, root: root.replace(/\/$/, "") };
  } finally {
    src.close();
  }
}

/** Read a torch checkpoint and return its root value (dicts as Maps, tensors as HostTensors). */
export function readTorch(path: string): unknown {
  return readTorchArchive(path).value;
}

// ---------------------------------------------------------------------------------------------
// Writing

/** A tensor viewing part of a storage tensor with explicit strides (to write non-contiguous tensors). */
export class TensorView {
  constructor(
    readonly storage: HostTensor,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** An nn.Parameter around a tensor (written through torch._utils._rebuild_parameter). */
export class Parameter {
  constructor(
    readonly tensor: HostTensor | TensorView,
    readonly requiresGrad = true,
  ) {}
}

function contiguousStride(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  for (let d = shape.length - 1, acc = 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/**
 * Write `value` as torch.save would: plain values, Maps, OrderedDict/NewObj/Reduce from pickle.ts,
 * HostTensors (each its own storage unless the same object repeats), TensorView and Parameter.
 */
export function writeTorch(path: string, value: unknown, opts: { root?: string; zip64?: boolean } = {}): void {
  const root = opts.root ?? "archive";
  const storageKeys = new Map<Uint8Array | HostTensor, { key: string; t: HostTensor }>();
  const storageOf = (t: HostTensor) => {
    let s = storageKeys.get(t);
    if (!s) {
      s = { key: String(storageKeys.size), t };
      storageKeys.set(t, s);
    }
    return s;
  };
  const rebuild = new PyGlobal("torch._utils", "_rebuild_tensor_v2");
  const tensorValue = (storage: HostTensor, offset: number, shape: number[], stride: number[], grad: boolean) => {
    const { key, t } = storageOf(storage);
    const pid = new PersistentId(
      new Tuple(["storage", new PyGlobal("torch", DTYPE_STORAGE[t.dtype]), key, "cpu", numel(t.shape)]),
    );
    return new Reduce(rebuild, [pid, offset, new Tuple(shape), new Tuple(stride), grad, new OrderedDict(new Map())]);
  };
  const replace = (v: unknown): unknown => {
    if (v instanceof Parameter) {
      return new Reduce(new PyGlobal("torch._utils", "_rebuild_parameter"), [
        replace(v.tensor),
        v.requiresGrad,
        new OrderedDict(new Map()),
      ]);
    }
    if (v instanceof TensorView) return tensorValue(v.storage, v.offset, v.shape, v.stride, false);
    if (isHostTensor(v)) return tensorValue(v, 0, v.shape, contiguousStride(v.shape), false);
    return v;
  };
  const pkl = new PickleWriter(replace).dump(value);
  const zip = new ZipWriter(path, { zip64: opts.zip64 });
  try {
    zip.add(`${root}/data.pkl`, pkl);
    zip.add(`${root}/byteorder`, new TextEncoder().encode("little"));
    for (const { key, t } of storageKeys.values()) zip.add(`${root}/data/${key}`, t.data);
    zip.add(`${root}/version`, new TextEncoder().encode("3\n"));
    zip.close();
  } catch (e) {
    zip.abort();
    throw e;
  }
}

/** Fields every nn.Module instance carries in its __dict__ (torch 2.x), so torch.load accepts the object. */
function moduleBase(): Map<string, unknown> {
  const empty = () => new OrderedDict(new Map());
  return new Map<string, unknown>([
    ["training", false],
    ["_parameters", empty()],
    ["_buffers", empty()],
    ["_non_persistent_buffers_set", new Set()],
    ["_backward_pre_hooks", empty()],
    ["_backward_hooks", empty()],
    ["_is_full_backward_hook", null],
    ["_forward_hooks", empty()],
    ["_forward_hooks_with_kwargs", empty()],
    ["_forward_hooks_always_called", empty()],
    ["_forward_pre_hooks", empty()],
    ["_forward_pre_hooks_with_kwargs", empty()],
    ["_state_dict_hooks", empty()],
    ["_state_dict_pre_hooks", empty()],
    ["_load_state_dict_pre_hooks", empty()],
    ["_load_state_dict_post_hooks", empty()],
    ["_modules", empty()],
  ]);
}

/** An nn.Module object as torch.save(model) pickles it: NEWOBJ of the class, then its __dict__. */
export function torchModule(
  qualname: string,
  parts: {
    parameters?: Record<string, HostTensor | null>;
    buffers?: Record<string, HostTensor | null>;
    modules?: Record<string, NewObj>;
    fields?: Record<string, unknown>;
  },
): NewObj {
  const dot = qualname.lastIndexOf(".");
  const state = moduleBase();
  const params = new Map<unknown, unknown>();
  for (const [k, t] of Object.entries(parts.parameters ?? {})) params.set(k, t ? new Parameter(t) : null);
  state.set("_parameters", new OrderedDict(params));
  state.set("_buffers", new OrderedDict(new Map(Object.entries(parts.buffers ?? {}))));
  state.set("_modules", new OrderedDict(new Map(Object.entries(parts.modules ?? {}))));
  for (const [k, v] of Object.entries(parts.fields ?? {})) state.set(k, v);
  return new NewObj(new PyGlobal(qualname.slice(0, dot), qualname.slice(dot + 1)), [], state);
}
