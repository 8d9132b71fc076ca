/** Read-only access to a weight file: small reads by pread, tensor bytes as zero-copy mapped views. */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { UserError } from "../util/errors.ts";

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
      fd = openSync(path, "r");
    } catch (e) {
      throw new UserError(`${path}: cannot open (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    const st = fstatSync(fd);
    if (!st.isFile()) {
      closeSync(fd);
      throw new UserError(`${path}: not a regular file`);
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
      const n = readSync(this.fd, out, done, length - done, offset + done);
      if (n <= 0) throw new UserError(`${this.path}: unexpected end of file`);
      done += n;
    }
    return out;
  }

  /** Bytes at `offset` without copying: a view of the mapped file (private mapping, never written). */
  view(offset: number, length: number): Uint8Array {
    this.check(offset, length);
    if (length === 0) return new Uint8Array(0);
    if (this.size <= WHOLE_MAP_LIMIT) {
      this.whole ??= Bun.mmap(this.path, { shared: false });
      return this.whole.subarray(offset, offset + length);
    }
    return Bun.mmap(this.path, { shared: false, offset, size: length });
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
