/**
 * Read-only access to a weight file: small reads by pread, tensor bytes as zero-copy mapped views.
 * The file is opened O_RDONLY and mapped from that descriptor (private, copy-on-write), so files
 * the user may only read (a shared Hugging Face cache, another user's models) load.
 */
import { dlopen, FFIType, toArrayBuffer, type Pointer } from "bun:ffi";
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { fileError, UserError } from "../util/errors.ts";

/** How weight files are opened: read-only; non-blocking so that a FIFO given as a model is refused, not waited on. */
export const OPEN_FLAGS = constants.O_RDONLY | ((constants as Record<string, number>).O_CLOEXEC ?? 0) | (constants.O_NONBLOCK ?? 0);

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_PRIVATE = 2;
const MAP_FAILED = 0xffffffffffffffffn;

const libcSymbols = {
  mmap: { args: [FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i64], returns: FFIType.u64 },
  munmap: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  getpagesize: { args: [], returns: FFIType.i32 },
} as const;
type Libc = ReturnType<typeof dlopen<typeof libcSymbols>>["symbols"];
let libc: Libc | null | undefined;

/** libc's mmap/munmap through bun:ffi (Bun.mmap opens files for writing); null where unavailable. */
function mapper(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  const name = process.platform === "linux" ? "libc.so.6" : process.platform === "darwin" ? "libc.dylib" : "";
  if (name) {
    try {
      libc = dlopen(name, libcSymbols).symbols;
    } catch {
      libc = null;
    }
  }
  return libc;
}

/** toArrayBuffer with its deallocator arguments (callback(bytes, context) when collected), untyped in bun-types. */
const externalBuffer = toArrayBuffer as unknown as (ptr: Pointer, offset: number, length: number, context: number, deallocator: Pointer) => ArrayBuffer;

/**
 * `length` bytes at `offset` of an open file as a private, copy-on-write mapping. The mapping is
 * unmapped by munmap when the last view of it is garbage collected (the array buffer's native
 * deallocator, called with the mapping's address and length). Null when mapping is not possible.
 */
function mapRegion(fd: number, offset: number, length: number): Uint8Array | null {
  const c = mapper();
  if (!c) return null;
  const page = c.getpagesize();
  const base = Math.floor(offset / page) * page;
  const span = offset - base + length;
  const addr = c.mmap(null, span, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, base);
  if (addr === MAP_FAILED || addr === 0n) return null;
  const buf = externalBuffer(Number(addr) as Pointer, 0, span, span, (c.munmap as unknown as { ptr: Pointer }).ptr);
  return new Uint8Array(buf, offset - base, length);
}

/** One typed array may not exceed 4 GiB in Bun, so files past this map one region at a time. */
const WHOLE_MAP_LIMIT = 2 ** 31;

export class FileSource {
  readonly size: number;
  private fd: number;
  private whole: Uint8Array | undefined;

  private constructor(readonly path: string, fd: number, size: number) {
    this.fd = fd;
    this.size = size;
  }

  static open(path: string): FileSource {
    let fd: number;
    try {
      fd = openSync(path, OPEN_FLAGS);
    } catch (e) {
      throw fileError(e, path, "opening a model file");
    }
    const st = fstatSync(fd);
    if (!st.isFile()) {
      closeSync(fd);
      throw new UserError(`${path}: not a regular file${st.isDirectory() ? " but a directory" : ""}: give the model file or its folder`);
    }
    return new FileSource(path, fd, st.size);
  }

  /** Copy `length` bytes at `offset` (for headers and pickles). */
  read(offset: number, length: number): Uint8Array {
    this.check(offset, length);
    if (this.whole) return this.whole.slice(offset, offset + length);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = readSync(this.fd, out, done, length - done, offset + done);
      } catch (e) {
        throw fileError(e, this.path, "reading a model file");
      }
      if (n <= 0) throw new UserError(`${this.path}: unexpected end of file`);
      done += n;
    }
    return out;
  }

  /**
   * Bytes at `offset` without copying: a view of the mapped file (private mapping, never written
   * back). Where the file cannot be mapped, a copy read from it.
   */
  view(offset: number, length: number): Uint8Array {
    this.check(offset, length);
    if (length === 0) return new Uint8Array(0);
    if (this.whole) return this.whole.subarray(offset, offset + length);
    if (this.fd < 0) throw new Error(`${this.path}: view() after close()`);
    if (this.size <= WHOLE_MAP_LIMIT) {
      this.whole = mapRegion(this.fd, 0, this.size) ?? undefined;
      if (this.whole) return this.whole.subarray(offset, offset + length);
      return this.read(offset, length);
    }
    return mapRegion(this.fd, offset, length) ?? this.read(offset, length);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private check(offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new UserError(`${this.path}: truncated or corrupt (needs bytes ${offset}..${offset + length}, file has ${this.size})`);
    }
  }
}

/** The first bytes of a file (for format sniffing); fewer when the file is short. */
export function readMagic(path: string, n = 8): Uint8Array {
  const src = FileSource.open(path);
  try {
    return src.read(0, Math.min(n, src.size));
  } finally {
    src.close();
  }
}
