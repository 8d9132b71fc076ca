/**
 * safetensors: u64 LE header length, a JSON header {name: {dtype, shape, data_offsets}}, raw bytes.
 * Reading maps the file and hands out views; writing is deterministic and can stream tensor by tensor.
 */
import { closeSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { UserError } from "../util/errors.ts";
import { byteSize } from "./dtype.ts";
import { FileSource } from "./file.ts";
import { DTYPE_BYTES, type DType, type HostTensor } from "./tensor.ts";

const TO_DTYPE: Record<string, DType> = {
  F64: "f64", F32: "f32", F16: "f16", BF16: "bf16", I64: "i64", I32: "i32", I16: "i16", I8: "i8", U8: "u8", BOOL: "bool",
};
const FROM_DTYPE: Record<DType, string> = {
  f64: "F64", f32: "F32", f16: "F16", bf16: "BF16", i64: "I64", i32: "I32", i16: "I16", i8: "I8", u8: "U8", bool: "BOOL",
};

export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string> | null;
}

/** True when the bytes look like a safetensors header ("{" right after the 8-byte length). */
export function isSafetensors(magic: Uint8Array): boolean {
  return magic.length >= 9 && magic[8] === 0x7b;
}

/** Largest header accepted (the format's reference reader allows 100 MB). */
const MAX_HEADER = 100 * 2 ** 20;

/**
 * Read a safetensors file, checking everything the format requires: a header that fits the file,
 * a known dtype and a byte size matching the shape for every tensor, and tensors that cover the
 * data section exactly once (no overlap, no gap, nothing after the last one).
 */
export function readSafetensors(path: string): SafetensorsFile {
  const src = FileSource.open(path);
  const bad = (why: string) => new UserError(`${path}: invalid safetensors file: ${why}`);
  try {
    if (src.size < 8) throw bad(`${src.size} bytes, too short for a header`);
    const lenBytes = src.read(0, 8);
    const headerLen = new DataView(lenBytes.buffer).getBigUint64(0, true);
    if (headerLen < 2n || headerLen > BigInt(MAX_HEADER) || 8n + headerLen > BigInt(src.size)) {
      throw bad(`header length ${headerLen} does not fit the file (${src.size} bytes)`);
    }
    const hlen = Number(headerLen);
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(src.read(8, hlen)));
    } catch {
      throw bad("the header is not valid UTF-8 JSON");
    }
    if (typeof header !== "object" || header === null || Array.isArray(header)) throw bad("the header is not a JSON object");
    const dataStart = 8 + hlen;
    const dataLen = src.size - dataStart;
    const tensors = new Map<string, HostTensor>();
    const spans: { name: string; begin: number; end: number }[] = [];
    let metadata: Record<string, string> | null = null;
    for (const [name, raw] of Object.entries(header)) {
      if (name === "__metadata__") {
        if (raw !== null && (typeof raw !== "object" || Array.isArray(raw) || Object.values(raw).some((v) => typeof v !== "string"))) {
          throw bad("__metadata__ is not a map of strings");
        }
        metadata = raw as Record<string, string> | null;
        continue;
      }
      const t = `tensor '${name}'`;
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw bad(`${t}: the entry is not an object`);
      const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const dtype = typeof info.dtype === "string" && Object.hasOwn(TO_DTYPE, info.dtype) ? TO_DTYPE[info.dtype] : undefined;
      if (!dtype) {
        const d = typeof info.dtype === "string" ? info.dtype : JSON.stringify(info.dtype);
        throw bad(`${t} has unsupported dtype ${d} (supported: ${Object.keys(TO_DTYPE).join(", ")})`);
      }
      const shape = info.shape;
      if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
        throw bad(`${t}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
      }
      const offs = info.data_offsets;
      if (!Array.isArray(offs) || offs.length !== 2 || offs.some((o) => !Number.isSafeInteger(o) || o < 0)) {
        throw bad(`${t}: data_offsets ${JSON.stringify(offs)} is not a pair of non-negative integers`);
      }
      const [begin, end] = offs as [number, number];
      if (end < begin || end > dataLen) {
        throw bad(`${t}: data_offsets ${begin}..${end} lie outside the data section (${dataLen} bytes)`);
      }
      const want = byteSize(dtype, shape);
      if (!Number.isSafeInteger(want) || end - begin !== want) {
        throw bad(`${t}: ${end - begin} bytes at ${begin}..${end}, but ${info.dtype} [${shape.join(", ")}] needs ${want}`);
      }
      spans.push({ name, begin, end });
      tensors.set(name, { dtype, shape: [...shape], data: new Uint8Array(0) });
    }
    // The tensors must tile the data section: sorted by offset, each starts where the previous ended.
    spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
    let at = 0;
    let prev = "";
    for (const s of spans) {
      if (s.begin < at) throw bad(`tensors '${prev}' and '${s.name}' overlap (bytes ${s.begin}..${at})`);
      if (s.begin > at) throw bad(`bytes ${at}..${s.begin} of the data section belong to no tensor (before '${s.name}')`);
      at = s.end;
      prev = s.name;
    }
    if (at !== dataLen) throw bad(`bytes ${at}..${dataLen} at the end of the file belong to no tensor`);
    for (const s of spans) tensors.get(s.name)!.data = src.view(dataStart + s.begin, s.end - s.begin);
    return { tensors, metadata };
  } finally {
    src.close();
  }
}

export interface TensorSpec {
  name: string;
  dtype: DType;
  shape: number[];
}

/**
 * Data order: wider dtypes first, then by name. Every offset then stays a multiple of its element size
 * without padding holes (the format forbids holes), and the file is the same for the same tensors.
 */
function dataOrder(specs: TensorSpec[]): TensorSpec[] {
  return [...specs].sort(
    (a, b) => DTYPE_BYTES[b.dtype] - DTYPE_BYTES[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
}

function headerBytes(ordered: TensorSpec[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let off = 0;
  for (const s of ordered) {
    const n = byteSize(s.dtype, s.shape);
    header[s.name] = { dtype: FROM_DTYPE[s.dtype], shape: s.shape, data_offsets: [off, off + n] };
    off += n;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  // pad with spaces so the data section starts 8-byte aligned
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

/**
 * Write a safetensors file, producing one tensor at a time (`produce` calls `write` with consecutive
 * chunks that add up to the tensor's bytes). Written to a temporary name, then renamed into place.
 */
export function writeSafetensorsStreaming(
  path: string,
  specs: TensorSpec[],
  produce: (spec: TensorSpec, write: (chunk: Uint8Array) => void) => void,
  metadata?: Record<string, string>,
): void {
  const names = new Set<string>();
  for (const s of specs) {
    if (names.has(s.name)) throw new Error(`writeSafetensors: duplicate tensor name ${s.name}`);
    names.add(s.name);
  }
  const ordered = dataOrder(specs);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w");
  try {
    writeAll(fd, headerBytes(ordered, metadata));
    for (const s of ordered) {
      const want = byteSize(s.dtype, s.shape);
      let got = 0;
      produce(s, (chunk) => {
        got += chunk.byteLength;
        if (got > want) throw new Error(`writeSafetensors: too many bytes for ${s.name}`);
        writeAll(fd, chunk);
      });
      if (got !== want) throw new Error(`writeSafetensors: ${s.name} got ${got} bytes, expected ${want}`);
    }
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {}
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Write tensors already in memory. */
export function writeSafetensors(
  path: string,
  tensors: Map<string, HostTensor> | Iterable<[string, HostTensor]>,
  metadata?: Record<string, string>,
): void {
  const byName = new Map(tensors);
  const specs = [...byName].map(([name, t]) => {
    if (t.data.byteLength !== byteSize(t.dtype, t.shape)) {
      throw new Error(`writeSafetensors: ${name} holds ${t.data.byteLength} bytes for ${t.dtype} [${t.shape}]`);
    }
    return { name, dtype: t.dtype, shape: t.shape };
  });
  writeSafetensorsStreaming(path, specs, (s, write) => write(byName.get(s.name)!.data), metadata);
}

export function writeAll(fd: number, bytes: Uint8Array, position?: number): void {
  let done = 0;
  while (done < bytes.byteLength) {
    const n = writeSync(fd, bytes, done, bytes.byteLength - done, position === undefined ? null : position + done);
    done += n;
  }
}
