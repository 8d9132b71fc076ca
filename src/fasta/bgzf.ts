/**
 * BGZF (the blocked gzip that htslib's bgzip writes): a series of gzip members of at most 64 KiB
 * of text each, every member's header carrying its compressed size ("BC" extra subfield). A
 * reader can start at any member, so a record can be found again from (the compressed offset of
 * its member, its offset in the decompressed text). Plain gzip has no such structure.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { UserError } from "../util/errors.ts";

/** True when the file starts with a BGZF member header (gzip with the "BC" extra subfield). */
export function isBgzf(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const h = new Uint8Array(18);
    if (readSync(fd, h, 0, 18, 0) < 18) return false;
    return headerBlockSize(h, 0, 18) !== null;
  } finally {
    closeSync(fd);
  }
}

/**
 * The member's total size from its header at h[at..], or null when it is not a BGZF header;
 * -1 when more header bytes are needed than `have`.
 */
function headerBlockSize(h: Uint8Array, at: number, have: number): number | null {
  if (have < 12) return -1;
  if (h[at] !== 0x1f || h[at + 1] !== 0x8b || h[at + 2] !== 8 || (h[at + 3] & 4) === 0) return null;
  const xlen = h[at + 10] | (h[at + 11] << 8);
  if (have < 12 + xlen) return -1;
  for (let p = at + 12; p + 4 <= at + 12 + xlen; ) {
    const slen = h[p + 2] | (h[p + 3] << 8);
    if (h[p] === 66 && h[p + 1] === 67 && slen === 2) return (h[p + 4] | (h[p + 5] << 8)) + 1;
    p += 4 + slen;
  }
  return null;
}

export interface Block {
  /** compressed offset of the member */
  coffset: number;
  /** offset of its first byte in the decompressed text */
  uoffset: number;
  data: Uint8Array;
}

/**
 * The members of a BGZF file from compressed offset `coffset` (whose text starts at decompressed
 * offset `uoffset`), decompressed one at a time; empty members (the end marker) are skipped.
 * `onRead` is told the compressed bytes read; `onBytes` is given them, in file order (each byte once).
 */
export function* bgzfBlocks(
  path: string,
  coffset = 0,
  uoffset = 0,
  onRead?: (bytes: number) => void,
  onBytes?: (bytes: Uint8Array) => void,
): Generator<Block> {
  const fd = openSync(path, "r");
  const READ = 256 << 10; // a few blocks a read: a part ends at most this far past its last block
  let buf = new Uint8Array(READ);
  let bufStart = coffset; // file offset of buf[0]
  let bufLen = 0;
  let pos = coffset;
  let u = uoffset;
  try {
    for (;;) {
      // Keep at least one whole member (<= 64 KiB) in the buffer.
      if (pos - bufStart + 65536 + 1024 > bufLen) {
        const keep = buf.subarray(pos - bufStart, bufLen);
        const next = new Uint8Array(Math.max(READ, keep.length + READ));
        next.set(keep);
        const n = readSync(fd, next, keep.length, next.length - keep.length, pos + keep.length);
        onRead?.(n);
        if (n > 0) onBytes?.(next.subarray(keep.length, keep.length + n));
        buf = next;
        bufStart = pos;
        bufLen = keep.length + n;
      }
      const at = pos - bufStart;
      if (at >= bufLen) return;
      const size = headerBlockSize(buf, at, bufLen - at);
      if (size === null) throw new UserError(`${path}: byte ${pos} is not the start of a BGZF block: the file is damaged, or not bgzip output`);
      if (size === -1 || at + size > bufLen) throw new UserError(`${path}: truncated BGZF block at byte ${pos}: re-download or re-compress the file`);
      const xlen = buf[at + 10] | (buf[at + 11] << 8);
      const cdata = buf.subarray(at + 12 + xlen, at + size - 8);
      const isize = new DataView(buf.buffer, buf.byteOffset + at + size - 4, 4).getUint32(0, true);
      let data: Uint8Array;
      try {
        data = isize === 0 ? new Uint8Array(0) : new Uint8Array(inflateRawSync(cdata));
      } catch (err) {
        throw new UserError(`${path}: corrupt BGZF block at byte ${pos} (${(err as Error).message}); re-download or re-compress the file`);
      }
      if (data.length !== isize) throw new UserError(`${path}: BGZF block at byte ${pos} holds ${data.length} bytes, its header says ${isize}`);
      if (data.length > 0) yield { coffset: pos, uoffset: u, data };
      pos += size;
      u += data.length;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The decompressed text of a BGZF file from decompressed offset `from`, which must lie in the
 * member at `block` (compressed offset, and the decompressed offset of its first byte).
 * `onBytes` is given the compressed bytes read (from `block.coffset` on, in file order).
 */
export async function* bgzfText(
  path: string,
  from: number,
  block: { coffset: number; uoffset: number },
  onRead?: (bytes: number) => void,
  onBlock?: (b: Block) => void,
  onBytes?: (bytes: Uint8Array) => void,
): AsyncGenerator<Uint8Array> {
  if (from < block.uoffset) throw new Error(`bgzfText: offset ${from} is before its block (${block.uoffset})`);
  let skip = from - block.uoffset;
  for (const b of bgzfBlocks(path, block.coffset, block.uoffset, onRead, onBytes)) {
    onBlock?.(b);
    if (skip >= b.data.length) {
      skip -= b.data.length;
      continue;
    }
    yield skip > 0 ? b.data.subarray(skip) : b.data;
    skip = 0;
  }
}

/** The BGZF end-of-file marker: an empty member. */
const EOF_BLOCK = Uint8Array.from([
  0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, 0x42, 0x43, 2, 0, 0x1b, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0,
]);

/** `data` as BGZF, as bgzip writes it: members of at most `blockSize` bytes of text, then the end marker. */
export function bgzfCompress(data: Uint8Array, blockSize = 0xff00): Uint8Array {
  const members: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += blockSize) {
    const piece = data.subarray(at, Math.min(data.length, at + blockSize));
    const cdata = deflateRawSync(piece, { level: 6 });
    const size = 18 + cdata.length + 8;
    if (size > 65536) throw new Error("bgzfCompress: a block does not fit in 64 KiB; use a smaller blockSize");
    const m = new Uint8Array(size);
    m.set([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, 0x42, 0x43, 2, 0, (size - 1) & 0xff, (size - 1) >> 8]);
    m.set(cdata, 18);
    const dv = new DataView(m.buffer);
    dv.setUint32(size - 8, Bun.hash.crc32(piece), true);
    dv.setUint32(size - 4, piece.length, true);
    members.push(m);
  }
  members.push(EOF_BLOCK);
  const out = new Uint8Array(members.reduce((s, m) => s + m.length, 0));
  let p = 0;
  for (const m of members) {
    out.set(m, p);
    p += m.length;
  }
  return out;
}
