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

export function readSafetensors(path: string): SafetensorsFile {
  const src = FileSource.open(path);
  try {
    if (src.size < 8) throw new UserError(`${path}: not a safetensors file (too short)`);
    const lenBytes = src.read(0, 8);
    const headerLen = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
    if (headerLen < 2 || 8 + headerLen > src.size || headerLen > 100 * 2 ** 20) {
      throw new UserError(`${path}: not a safetensors file (header length ${headerLen} does not fit the file)`);
    }
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(new TextDecoder().decode(src.read(8, headerLen)));
    } catch {
      throw new UserError(`${path}: safetensors header is not valid JSON`);
    }
    const dataStart = 8 + headerLen;
    const dataLen = src.size - dataStart;
    const tensors = new Map<string, HostTensor>();
    let metadata: Record<string, string> | null = null;
    for (const [name, raw] of Object.entries(header)) {
      if (name === "__metadata__") {
        metadata = raw as Record<string, string>;
        continue;
      }
      const info = raw as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
      const dtype = TO_DTYPE[info.dtype ?? ""];
      if (!dtype) throw new UserError(`${path}: tensor '${name}' has unsupported dtype ${info.dtype}`);
      const shape = info.shape;
      const offs = info.data_offsets;
      if (!Array.isArray(shape) || !Array.isArray(offs) || offs.length !== 2) {
        throw new UserError(`${path}: tensor '${name}' has a malformed header entry`);
      }
      const [begin, end] = offs;
      if (!(begin >= 0 && end >= begin && end <= dataLen) || end - begin !== byteSize(dtype, shape)) {
        throw new UserError(`${path}: tensor '${name}' offsets ${begin}..${end} do not match its shape [${shape}] or the file size`);
      }
      tensors.set(name, { dtype, shape: [...shape], data: src.view(dataStart + begin, end - begin) });
    }
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
