/**
 * Streaming FASTA reader: plain or gzip (by magic bytes), several files as one stream,
 * bounded memory whatever the input (a record's sequence is the only thing held whole).
 *
 * Record id = header text after '>' up to the first whitespace; sequence = the following lines
 * joined with all whitespace removed, case kept. A record with an empty sequence is skipped
 * with a warning. Malformed input is a UserError naming the file and line.
 */
import { openSync, readSync, closeSync, statSync, createReadStream } from "node:fs";
import { createGunzip } from "node:zlib";
import { UserError } from "../util/errors.ts";

export interface FastaRecord {
  id: string;
  /** sequence bytes, whitespace removed, case kept */
  seq: Uint8Array;
  file: string;
  /** 1-based line of the header */
  line: number;
  /** byte offset of '>' in a plain file; -1 in gzip input */
  offset: number;
  /** 0-based index of the emitted record over all inputs */
  index: number;
}

export interface ReadOptions {
  onWarning?: (msg: string) => void;
  /** told the size of every read from a plain file (I/O accounting, tests) */
  onRead?: (bytes: number) => void;
  /**
   * A file's text from a given offset of it, for input the reader cannot seek itself (BGZF):
   * when it returns a function, offsets (records, start) are offsets in that text.
   */
  decoder?: (path: string) => ((from: number) => AsyncIterable<Uint8Array>) | null;
  /** begin at a known record start of a plain file (sharding) */
  start?: {
    fileIndex: number;
    /** byte offset of a '>' that starts a line */
    offset: number;
    index: number;
    /** 1-based line of that header, for messages (unknown: lines are counted from 1 there) */
    line?: number;
  };
}

const CHUNK = 1 << 20;
const GT = 0x3e;
const NL = 0x0a;
const CR = 0x0d;

// Byte classes: 0 = sequence letter, 1 = whitespace (dropped), 2 = binary (error).
const CLASS = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  if (b === 0x20 || b === 0x09 || b === CR || b === NL || b === 0x0b || b === 0x0c) CLASS[b] = 1;
  else if (b < 0x20 || b === 0x7f || b >= 0x80) CLASS[b] = 2;
}

function isGzip(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const b = new Uint8Array(2);
    const n = readSync(fd, b, 0, 2, 0);
    return n === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

async function* plainChunks(path: string, from: number, onRead?: (bytes: number) => void): AsyncGenerator<Uint8Array> {
  const fd = openSync(path, "r");
  try {
    let pos = from;
    // One buffer for the whole file: readFasta copies what it keeps before asking for more.
    const buf = new Uint8Array(CHUNK);
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, pos);
      onRead?.(n);
      if (n <= 0) return;
      pos += n;
      yield n === CHUNK ? buf : buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

async function* gzipChunks(path: string): AsyncGenerator<Uint8Array> {
  const gunzip = createGunzip({ chunkSize: CHUNK });
  const src = createReadStream(path, { highWaterMark: CHUNK });
  src.on("error", (e) => gunzip.destroy(e));
  src.pipe(gunzip);
  try {
    for await (const c of gunzip) yield c as Uint8Array;
  } catch (err) {
    throw new GzipError((err as Error).message);
  } finally {
    // A consumer that stops early must not leave the file open.
    src.destroy();
    gunzip.destroy();
  }
}

/** A decompression failure; readFasta names the file and the line it had reached. */
class GzipError extends Error {}

/** A record longer than one buffer may hold; readFasta names the record. */
class RecordTooLong extends Error {}

/** Largest record sequence: the most a (resizable) ArrayBuffer holds here. */
export const MAX_RECORD_BYTES = 2 ** 32;

/** A fresh sequence buffer: resizable where the runtime allows, so growing never copies. */
function newBuffer(size: number): ArrayBuffer {
  try {
    // Reserves address space only; pages are committed as the record grows.
    return new ArrayBuffer(size, { maxByteLength: MAX_RECORD_BYTES });
  } catch {
    return new ArrayBuffer(size);
  }
}

/**
 * The growing sequence of one record. Growth is in place (resizable ArrayBuffer), so a 200 Mbp
 * chromosome needs about 200 MB rather than the old and the doubled copy side by side.
 */
class SeqBuffer {
  private ab = newBuffer(1 << 16);
  buf = new Uint8Array(this.ab, 0, this.ab.byteLength);
  len = 0;
  /** Room for n more bytes; returns the buffer to write at [len, len + n). */
  reserve(n: number): Uint8Array {
    const need = this.len + n;
    if (need > this.buf.length) this.grow(need);
    return this.buf;
  }
  private grow(need: number) {
    if (need > MAX_RECORD_BYTES) throw new RecordTooLong();
    const cap = Math.min(MAX_RECORD_BYTES, Math.max(need, this.buf.length * 2));
    if (this.ab.resizable && cap <= this.ab.maxByteLength) this.ab.resize(cap);
    else {
      const ab = new ArrayBuffer(cap);
      new Uint8Array(ab).set(this.buf.subarray(0, this.len));
      this.ab = ab;
    }
    this.buf = new Uint8Array(this.ab, 0, this.ab.byteLength);
  }
  /** Hands the bytes out: small records are copied, large ones take the buffer (no second copy). */
  take(): Uint8Array {
    let out: Uint8Array;
    if (this.len < 1 << 20) out = this.buf.slice(0, this.len);
    else {
      if (this.ab.resizable) this.ab.resize(this.len); // give the unused tail back
      out = new Uint8Array(this.ab, 0, this.len);
      this.ab = newBuffer(1 << 16);
      this.buf = new Uint8Array(this.ab, 0, this.ab.byteLength);
    }
    this.len = 0;
    return out;
  }
}

const latin1 = new TextDecoder("latin1");

/**
 * Length of the whitespace character at b[i] (0 when none), as Python's str.split() sees it in
 * UTF-8 text: ASCII \t\n\v\f\r, space and \x1c-\x1f, and the encoded U+0085, U+00A0, U+1680,
 * U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000. The id is then cut as the original cuts it.
 */
function spaceLen(b: Uint8Array, i: number, end: number): number {
  const c = b[i];
  if (c < 0x80) return c === 0x20 || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f) ? 1 : 0;
  if (c === 0xc2) return i + 1 < end && (b[i + 1] === 0x85 || b[i + 1] === 0xa0) ? 2 : 0;
  if (i + 2 >= end) return 0;
  const d = b[i + 1], e = b[i + 2];
  if (c === 0xe1) return d === 0x9a && e === 0x80 ? 3 : 0;
  if (c === 0xe2)
    return (d === 0x80 && ((e >= 0x80 && e <= 0x8a) || e === 0xa8 || e === 0xa9 || e === 0xaf)) || (d === 0x81 && e === 0x9f) ? 3 : 0;
  if (c === 0xe3) return d === 0x80 && e === 0x80 ? 3 : 0;
  return 0;
}

/** The record id in a header line's bytes (after '>', up to the first whitespace), latin1 so its bytes round-trip. */
function headerId(b: Uint8Array, end: number): string {
  let i = 1;
  for (let w; i < end && (w = spaceLen(b, i, end)) > 0; ) i += w;
  let j = i;
  while (j < end && spaceLen(b, j, end) === 0) j++;
  return latin1.decode(b.subarray(i, j));
}

/** A sharding start must be a '>' at the start of a line of a plain file. */
function checkStart(path: string, gz: boolean, offset: number, size: number): void {
  if (gz) throw new UserError(`${path}: cannot start inside a gzip file at byte ${offset}; shard plain FASTA files, or whole gzip files`);
  if (!(Number.isSafeInteger(offset) && offset > 0 && offset < size))
    throw new UserError(`${path}: start offset ${offset} is outside the file (${size} bytes)`);
  const fd = openSync(path, "r");
  try {
    const b = new Uint8Array(2);
    readSync(fd, b, 0, 2, offset - 1);
    if (b[1] !== GT || b[0] !== NL)
      throw new UserError(`${path}: byte ${offset} is not the start of a '>' header line; the input changed since it was indexed?`);
  } finally {
    closeSync(fd);
  }
}

export async function* readFasta(paths: string[], opts: ReadOptions = {}): AsyncGenerator<FastaRecord> {
  const warn = opts.onWarning ?? ((m: string) => console.error(`virnuc: warning: ${m}`));
  let index = opts.start?.index ?? 0;
  const seq = new SeqBuffer();
  for (let fi = opts.start?.fileIndex ?? 0; fi < paths.length; fi++) {
    const path = paths[fi];
    let st;
    try {
      st = statSync(path);
    } catch {
      throw new UserError(`cannot read input ${path}: no such file`);
    }
    if (st.isDirectory()) throw new UserError(`input ${path} is a directory, expected a FASTA file`);
    const decoded = opts.decoder?.(path) ?? null;
    const gz = !decoded && st.size >= 2 && isGzip(path);
    const resume = opts.start && fi === opts.start.fileIndex ? opts.start : undefined;
    if (resume && resume.offset !== 0 && !decoded) checkStart(path, gz, resume.offset, st.size);
    const from = resume ? resume.offset : 0;
    const chunks = decoded ? decoded(from) : gz ? gzipChunks(path) : plainChunks(path, from, opts.onRead);

    let line = resume?.line ?? 1;
    let pos = from; // byte offset of chunk start (plain files)
    let header: string | null = null; // header of the record being read
    let headerLine = 0;
    let headerOffset = -1;
    let partial: Uint8Array | null = null; // an unfinished header line across chunks
    let inHeader = false;
    let atLineStart = true;
    let records = 0;
    let sawText = false;

    const finish = (): FastaRecord | null => {
      if (header === null) return null;
      const id = header;
      header = null;
      if (seq.len === 0) {
        warn(`${path}:${headerLine}: record '${id}' has no sequence: skipped`);
        return null;
      }
      records++;
      return { id, seq: seq.take(), file: path, line: headerLine, offset: headerOffset, index: index++ };
    };
    const startHeader = (bytes: Uint8Array) => {
      let end = bytes.length;
      if (end > 0 && bytes[end - 1] === CR) end--;
      const id = headerId(bytes, end);
      if (id.length === 0) throw new UserError(`${path}:${line}: header without an id ('>' followed by nothing)`);
      for (let i = 0; i < end; i++)
        if (bytes[i] === 0) throw new UserError(`${path}:${line}: binary data (NUL byte) in a header: not a FASTA file`);
      header = id;
    };

    try {
      for await (const chunk of chunks) {
        let i = 0;
        const n = chunk.length;
        while (i < n) {
          if (inHeader) {
            const nl = chunk.indexOf(NL, i);
            const end = nl < 0 ? n : nl;
            const piece = chunk.subarray(i, end);
            let headerBytes: Uint8Array;
            if (partial !== null) {
              const prev: Uint8Array = partial;
              headerBytes = new Uint8Array(prev.length + piece.length);
              headerBytes.set(prev);
              headerBytes.set(piece, prev.length);
            } else headerBytes = nl < 0 ? piece.slice() : piece;
            if (headerBytes.length > 1 << 20) throw new UserError(`${path}:${line}: header line longer than 1 MB: not a FASTA file?`);
            if (nl < 0) {
              partial = headerBytes;
              i = n;
              break;
            }
            startHeader(headerBytes);
            partial = null;
            inHeader = false;
            atLineStart = true;
            line++;
            i = nl + 1;
            continue;
          }
          if (atLineStart && chunk[i] === GT) {
            const rec = finish();
            if (rec) yield rec;
            inHeader = true;
            headerLine = line;
            headerOffset = gz ? -1 : pos + i;
            sawText = true;
            continue;
          }
          // Sequence bytes up to the end of the line.
          const nl = chunk.indexOf(NL, i);
          const end = nl < 0 ? n : nl;
          if (end > i) {
            // Letters go straight into the record in one pass; whitespace (\r, spaces) is dropped.
            const out = seq.reserve(end - i);
            let len = seq.len;
            for (let j = i; j < end; j++) {
              const b = chunk[j];
              const c = CLASS[b];
              if (c === 0) out[len++] = b;
              else if (c === 2)
                throw new UserError(
                  `${path}:${line}: binary data (byte 0x${b.toString(16).padStart(2, "0")}) in the input: not a plain or gzip FASTA file`,
                );
            }
            if (header === null && len > seq.len)
              throw new UserError(`${path}:${line}: text before the first '>' header: not a FASTA file`);
            seq.len = len;
          }
          if (nl < 0) {
            atLineStart = false;
            i = n;
          } else {
            atLineStart = true;
            line++;
            i = nl + 1;
          }
        }
        pos += n;
      }
    } catch (err) {
      if (err instanceof RecordTooLong)
        throw new UserError(`${path}:${headerLine}: record '${header}' is longer than ${MAX_RECORD_BYTES / 2 ** 30} GiB: split it first`);
      if (err instanceof GzipError)
        throw new UserError(`${path}:${line}: corrupt or truncated gzip input (${err.message}); re-download or re-compress the file`);
      throw err;
    }
    if (inHeader && partial) {
      startHeader(partial);
      partial = null;
    }
    const rec = finish();
    if (rec) yield rec;
    if (!sawText) throw new UserError(`no FASTA records in ${path} (the file is empty or holds only blank lines)`);
    if (records === 0) warn(`${path}: no record with a sequence`);
  }
}
