/**
 * The zip container of PyTorch checkpoints: stored (uncompressed) entries, zip64 past 4 GiB.
 * Reading walks the central directory; writing aligns each entry's data to 64 bytes like torch.save.
 */
import { closeSync, openSync, renameSync, rmSync } from "node:fs";
import { crc32 } from "node:zlib";
import { UserError } from "../util/errors.ts";
import type { FileSource } from "./file.ts";
import { writeAll } from "./safetensors.ts";

export interface ZipEntry {
  name: string;
  /** Absolute file offset of the entry's data. */
  dataOffset: number;
  size: number;
  compressedSize: number;
  method: number;
  /** CRC-32 of the data, from the central directory. */
  crc: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;
const U32_MAX = 0xffffffff;

/** True for a zip local-file header ("PK\x03\x04"). */
export function isZip(magic: Uint8Array): boolean {
  return magic.length >= 4 && magic[0] === 0x50 && magic[1] === 0x4b && magic[2] === 3 && magic[3] === 4;
}

/**
 * The entries of a zip archive, from its central directory. Every field is checked against the
 * file: records inside the file and inside the directory, each entry's data between its local
 * header and the central directory, the local header agreeing with the central one.
 */
export function readZipEntries(src: FileSource): Map<string, ZipEntry> {
  const bad = (why: string) => new UserError(`${src.path}: not a valid zip archive (${why}): the checkpoint is damaged; download or save it again`);
  const u64 = (dv: DataView, off: number, what: string): number => {
    const v = dv.getBigUint64(off, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${what} ${v} is out of range`);
    return Number(v);
  };
  if (src.size < 22) throw bad("too short");
  const tailLen = Math.min(src.size, 22 + 65535);
  const tailStart = src.size - tailLen;
  const tail = src.read(tailStart, tailLen);
  const tdv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    // the record's comment must reach exactly to the end of the file
    if (tdv.getUint32(i, true) === SIG_EOCD && i + 22 + tdv.getUint16(i + 20, true) === tailLen) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad("no end of central directory record");
  const eocdAbs = tailStart + eocd;
  let count = tdv.getUint16(eocd + 10, true);
  let cdSize = tdv.getUint32(eocd + 12, true);
  let cdOffset = tdv.getUint32(eocd + 16, true);
  let cdLimit = eocdAbs; // the central directory ends before the end records
  if (count === 0xffff || cdSize === U32_MAX || cdOffset === U32_MAX) {
    const locAbs = eocdAbs - 20;
    if (locAbs < 0) throw bad("zip64 locator missing");
    const loc = src.read(locAbs, 20);
    const ldv = new DataView(loc.buffer);
    if (ldv.getUint32(0, true) !== SIG_LOCATOR64) throw bad("zip64 locator missing");
    const recOff = u64(ldv, 8, "zip64 end record offset");
    if (recOff + 56 > locAbs) throw bad("zip64 end record outside the file");
    const rec = src.read(recOff, 56);
    const rdv = new DataView(rec.buffer);
    if (rdv.getUint32(0, true) !== SIG_EOCD64) throw bad("zip64 end record missing");
    count = u64(rdv, 32, "entry count");
    cdSize = u64(rdv, 40, "central directory size");
    cdOffset = u64(rdv, 48, "central directory offset");
    cdLimit = recOff;
  }
  if (cdOffset + cdSize > cdLimit) throw bad(`central directory (${cdSize} bytes at ${cdOffset}) runs past its end records`);
  if (count * 46 > cdSize) throw bad(`${count} entries cannot fit a central directory of ${cdSize} bytes`);
  const cd = src.read(cdOffset, cdSize);
  const dv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  const dec = new TextDecoder();
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || dv.getUint32(p, true) !== SIG_CENTRAL) throw bad(`central directory entry ${i} is corrupt`);
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    const crc = dv.getUint32(p + 16, true);
    let compressedSize = dv.getUint32(p + 20, true);
    let size = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let localOffset = dv.getUint32(p + 42, true);
    const recEnd = p + 46 + nameLen + extraLen + commentLen;
    if (recEnd > cd.length) throw bad(`central directory entry ${i} runs past the directory`);
    const nameBytes = cd.subarray(p + 46, p + 46 + nameLen);
    const name = dec.decode(nameBytes);
    if (flags & 1) throw bad(`entry ${name} is encrypted`);
    // zip64 extra field: the 0xFFFFFFFF fields, in order size, compressed size, local offset
    let e = p + 46 + nameLen;
    const eEnd = e + extraLen;
    while (e + 4 <= eEnd) {
      const id = dv.getUint16(e, true);
      const len = dv.getUint16(e + 2, true);
      if (e + 4 + len > eEnd) throw bad(`entry ${name} has a malformed extra field`);
      if (id === 1) {
        let q = e + 4;
        const take = (what: string) => {
          if (q + 8 > e + 4 + len) throw bad(`entry ${name} has a short zip64 field`);
          const v = u64(dv, q, `${what} of ${name}`);
          q += 8;
          return v;
        };
        if (size === U32_MAX) size = take("size");
        if (compressedSize === U32_MAX) compressedSize = take("compressed size");
        if (localOffset === U32_MAX) localOffset = take("offset");
      }
      e += 4 + len;
    }
    if (entries.has(name)) throw bad(`entry ${name} appears twice`);
    if (localOffset + 30 > cdOffset) throw bad(`local header of ${name} lies outside the entries' area`);
    const lh = src.read(localOffset, 30);
    const ldv = new DataView(lh.buffer);
    if (ldv.getUint32(0, true) !== SIG_LOCAL) throw bad(`bad local header for ${name}`);
    const localNameLen = ldv.getUint16(26, true);
    const dataOffset = localOffset + 30 + localNameLen + ldv.getUint16(28, true);
    if (dataOffset + compressedSize > cdOffset) throw bad(`entry ${name} runs into the central directory or past the end of the file`);
    const localName = src.read(localOffset + 30, localNameLen);
    if (localNameLen !== nameLen || !localName.every((b, k) => b === nameBytes[k])) {
      throw bad(`local header of ${name} names another entry`);
    }
    if (method === 0 && compressedSize !== size) throw bad(`stored entry ${name} has two different sizes`);
    entries.set(name, { name, dataOffset, size, compressedSize, method, crc });
    p = recEnd;
  }
  return entries;
}

/**
 * Bytes of a stored entry as a view, after checking their CRC-32 against the central directory;
 * compressed entries are refused (torch never writes them).
 */
export function entryBytes(src: FileSource, entry: ZipEntry): Uint8Array {
  if (entry.method !== 0) {
    throw new UserError(`${src.path}: zip entry ${entry.name} is compressed (method ${entry.method}); re-save it with torch.save`);
  }
  const bytes = src.view(entry.dataOffset, entry.size);
  const got = crc32Of(bytes);
  if (got !== entry.crc) {
    throw new UserError(
      `${src.path}: zip entry ${entry.name} is corrupt (CRC-32 ${hex8(got)}, expected ${hex8(entry.crc)}): the checkpoint is damaged; download or save it again`,
    );
  }
  return bytes;
}

function hex8(v: number): string {
  return v.toString(16).padStart(8, "0");
}

/** CRC-32 of a buffer, in pieces (zlib takes at most 4 GiB at a time). */
function crc32Of(bytes: Uint8Array): number {
  let c = 0;
  for (let off = 0; off < bytes.byteLength; off += 1 << 30) c = crc32(bytes.subarray(off, Math.min(bytes.byteLength, off + (1 << 30))), c);
  return c >>> 0;
}

interface Written {
  name: Uint8Array;
  offset: number;
  size: number;
  crc: number;
}

/** Writes a zip of stored entries; each entry's data starts on a multiple of `align` bytes. */
export class ZipWriter {
  private fd: number;
  private pos = 0;
  private done: Written[] = [];
  private tmp: string;
  private closed = false;

  constructor(
    private path: string,
    private opts: { align?: number; zip64?: boolean } = {},
  ) {
    this.tmp = `${path}.tmp-${process.pid}`;
    this.fd = openSync(this.tmp, "w");
  }

  add(name: string, data: Uint8Array): void {
    this.addStream(name, data.byteLength, (write) => write(data));
  }

  /** An entry of known size whose bytes arrive in chunks (CRC and sizes are patched afterwards). */
  addStream(name: string, size: number, produce: (write: (chunk: Uint8Array) => void) => void): void {
    const nameBytes = new TextEncoder().encode(name);
    const align = this.opts.align ?? 64;
    const zip64 = this.opts.zip64 === true || size >= U32_MAX;
    const z64Len = zip64 ? 20 : 0;
    const base = this.pos + 30 + nameBytes.length + z64Len;
    // torch pads with an extra field so that data lands aligned; a field needs at least 4 bytes
    let pad = (align - (base % align)) % align;
    if (pad > 0 && pad < 4) pad += align;
    const header = new Uint8Array(30 + nameBytes.length + z64Len + pad);
    const dv = new DataView(header.buffer);
    dv.setUint32(0, SIG_LOCAL, true);
    dv.setUint16(4, zip64 ? 45 : 20, true);
    dv.setUint16(26, nameBytes.length, true);
    dv.setUint16(28, z64Len + pad, true);
    header.set(nameBytes, 30);
    let q = 30 + nameBytes.length;
    if (zip64) {
      dv.setUint16(q, 1, true);
      dv.setUint16(q + 2, 16, true);
      dv.setBigUint64(q + 4, BigInt(size), true);
      dv.setBigUint64(q + 12, BigInt(size), true);
      q += 20;
    }
    if (pad > 0) {
      dv.setUint16(q, 0x4246, true); // "FB": the padding field id PyTorch uses
      dv.setUint16(q + 2, pad - 4, true);
      header.fill(0x5a, q + 4, q + pad);
    }
    const offset = this.pos;
    writeAll(this.fd, header);
    this.pos += header.length;
    let crc = 0;
    let got = 0;
    produce((chunk) => {
      got += chunk.byteLength;
      if (got > size) throw new Error(`ZipWriter: entry ${name} got more than ${size} bytes`);
      crc = crc32(chunk, crc);
      writeAll(this.fd, chunk);
    });
    if (got !== size) throw new Error(`ZipWriter: entry ${name} got ${got} bytes, expected ${size}`);
    this.pos += size;
    const patch = new Uint8Array(12);
    const pdv = new DataView(patch.buffer);
    pdv.setUint32(0, crc >>> 0, true);
    pdv.setUint32(4, zip64 ? U32_MAX : size, true);
    pdv.setUint32(8, zip64 ? U32_MAX : size, true);
    writeAll(this.fd, patch, offset + 14);
    this.done.push({ name: nameBytes, offset, size, crc: crc >>> 0 });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const cdStart = this.pos;
    const parts: Uint8Array[] = [];
    let anyZip64 = this.opts.zip64 === true || this.done.length >= 0xffff;
    for (const w of this.done) {
      const big = this.opts.zip64 === true || w.size >= U32_MAX || w.offset >= U32_MAX;
      anyZip64 ||= big;
      const extra = big ? 28 : 0;
      const rec = new Uint8Array(46 + w.name.length + extra);
      const dv = new DataView(rec.buffer);
      dv.setUint32(0, SIG_CENTRAL, true);
      dv.setUint16(4, big ? 45 : 20, true);
      dv.setUint16(6, big ? 45 : 20, true);
      dv.setUint32(16, w.crc, true);
      dv.setUint32(20, big ? U32_MAX : w.size, true);
      dv.setUint32(24, big ? U32_MAX : w.size, true);
      dv.setUint16(28, w.name.length, true);
      dv.setUint16(30, extra, true);
      dv.setUint32(42, big ? U32_MAX : w.offset, true);
      rec.set(w.name, 46);
      if (big) {
        const q = 46 + w.name.length;
        dv.setUint16(q, 1, true);
        dv.setUint16(q + 2, 24, true);
        dv.setBigUint64(q + 4, BigInt(w.size), true);
        dv.setBigUint64(q + 12, BigInt(w.size), true);
        dv.setBigUint64(q + 20, BigInt(w.offset), true);
      }
      parts.push(rec);
    }
    let cdSize = 0;
    for (const p of parts) cdSize += p.length;
    anyZip64 ||= cdStart + cdSize >= U32_MAX;
    if (anyZip64) {
      const rec = new Uint8Array(56 + 20);
      const dv = new DataView(rec.buffer);
      dv.setUint32(0, SIG_EOCD64, true);
      dv.setBigUint64(4, 44n, true);
      dv.setUint16(12, 45, true);
      dv.setUint16(14, 45, true);
      dv.setBigUint64(24, BigInt(this.done.length), true);
      dv.setBigUint64(32, BigInt(this.done.length), true);
      dv.setBigUint64(40, BigInt(cdSize), true);
      dv.setBigUint64(48, BigInt(cdStart), true);
      dv.setUint32(56, SIG_LOCATOR64, true);
      dv.setBigUint64(64, BigInt(cdStart + cdSize), true);
      dv.setUint32(72, 1, true);
      parts.push(rec);
    }
    const end = new Uint8Array(22);
    const edv = new DataView(end.buffer);
    edv.setUint32(0, SIG_EOCD, true);
    const n16 = anyZip64 ? 0xffff : this.done.length;
    edv.setUint16(8, n16, true);
    edv.setUint16(10, n16, true);
    edv.setUint32(12, anyZip64 ? U32_MAX : cdSize, true);
    edv.setUint32(16, anyZip64 ? U32_MAX : cdStart, true);
    parts.push(end);
    for (const p of parts) writeAll(this.fd, p);
    closeSync(this.fd);
    renameSync(this.tmp, this.path);
  }

  /** Drop a half-written archive. */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      closeSync(this.fd);
    } catch {}
    rmSync(this.tmp, { force: true });
  }
}
