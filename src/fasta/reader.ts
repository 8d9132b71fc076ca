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
  /** begin at a known record start of a plain file (sharding) */
  start?: { fileIndex: number; offset: number; index: number };
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

async function* plainChunks(path: string, from: number): AsyncGenerator<Uint8Array> {
  const fd = openSync(path, "r");
  try {
    let pos = from;
    for (;;) {
      const buf = new Uint8Array(CHUNK);
      const n = readSync(fd, buf, 0, CHUNK, pos);
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
  }
}

/** A decompression failure; readFasta names the file and the line it had reached. */
class GzipError extends Error {}

/** A growable byte buffer for one record's sequence. */
class SeqBuffer {
  buf = new Uint8Array(1 << 16);
  len = 0;
  push(src: Uint8Array, from: number, to: number) {
    const n = to - from;
    if (this.len + n > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < this.len + n) cap *= 2;
      const b = new Uint8Array(cap);
      b.set(this.buf.subarray(0, this.len));
      this.buf = b;
    }
    this.buf.set(src.subarray(from, to), this.len);
    this.len += n;
  }
  /** Hands the bytes out: small records are copied, large ones keep the buffer (no second copy). */
  take(): Uint8Array {
    let out: Uint8Array;
    if (this.len < 1 << 20) out = this.buf.slice(0, this.len);
    else {
      out = this.buf.subarray(0, this.len);
      this.buf = new Uint8Array(1 << 16);
    }
    this.len = 0;
    return out;
  }
}

const latin1 = new TextDecoder("latin1");

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
    const gz = st.size >= 2 && isGzip(path);
    const from = !gz && opts.start && fi === opts.start.fileIndex ? opts.start.offset : 0;
    const chunks = gz ? gzipChunks(path) : plainChunks(path, from);

    let line = 1;
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
      const text = latin1.decode(bytes.subarray(1, end));
      const id = text.trim().split(/\s/, 1)[0] ?? "";
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
          let runStart = i;
          for (let j = i; j < end; j++) {
            const c = CLASS[chunk[j]];
            if (c === 0) continue;
            if (c === 2)
              throw new UserError(
                `${path}:${line}: binary data (byte 0x${chunk[j].toString(16).padStart(2, "0")}) in the input: not a plain or gzip FASTA file`,
              );
            if (j > runStart) {
              if (header === null) throw new UserError(`${path}:${line}: text before the first '>' header: not a FASTA file`);
              seq.push(chunk, runStart, j);
            }
            runStart = j + 1;
          }
          if (end > runStart) {
            if (header === null) throw new UserError(`${path}:${line}: text before the first '>' header: not a FASTA file`);
            seq.push(chunk, runStart, end);
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
    if (!sawText) throw new UserError(`no FASTA records in ${path} (the file is empty)`);
    if (records === 0) warn(`${path}: no record with a sequence`);
  }
}
