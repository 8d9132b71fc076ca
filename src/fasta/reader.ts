/**
 * Streaming reader of sequence inputs: FASTA or FASTQ (told by the first byte, '>' or '@'),
 * plain, gzip or zstd (told by magic bytes, not by the name), from files, standard input (`-`),
 * named pipes or process substitution. Several inputs are read in order as one stream, with
 * bounded memory whatever the input (a record's sequence is the only thing held whole).
 *
 * Record id = header text after '>' or '@' up to the first whitespace; FASTA sequence = the
 * following lines joined with all whitespace removed, case kept; FASTQ = 4-line records whose
 * qualities are checked (as long as the sequence) and dropped. A record with an empty sequence
 * is skipped with a warning. Malformed input is a UserError naming the file and line.
 *
 * Every record carries `index`, its record_index: the 0-based ordinal of the emitted record over
 * all inputs. While it streams, the reader hashes each input's bytes as given (sha256, no second
 * pass) and counts what deserves a warning (protein or RNA letters, duplicate ids): see ReadSummary.
 */
import { openSync, readSync, closeSync, statSync, createReadStream, ReadStream } from "node:fs";
import { Readable } from "node:stream";
import { isatty } from "node:tty";
import { createGunzip, createZstdDecompress } from "node:zlib";
import { createHash, type Hash } from "node:crypto";
import { UserError } from "../util/errors.ts";
import { ZstdFrames } from "./zstd.ts";

export interface FastaRecord {
  id: string;
  /** sequence bytes, whitespace removed, case kept */
  seq: Uint8Array;
  /** the input path as given ("<stdin>" for `-`) */
  file: string;
  /** 1-based line of the header */
  line: number;
  /** byte offset of '>' / '@' in a plain regular file; -1 in compressed or streamed input */
  offset: number;
  /** record_index: 0-based index of the emitted record over all inputs */
  index: number;
}

export type Compression = "none" | "gzip" | "zstd";
export type InputFormat = "fasta" | "fastq";

/** What the reader learnt about one input; final once that input has been read to its end. */
export interface InputSummary {
  /** the path as given (`-` for standard input) */
  path: string;
  /** standard input, a pipe, a FIFO or another input that cannot seek */
  stream: boolean;
  compression: Compression;
  /** null when the input holds no record */
  format: InputFormat | null;
  /** bytes read from the input as given (the compressed bytes for gzip / zstd) */
  bytes: number;
  /** sha256 of those bytes; null until the input has been read to its end, and for a start offset */
  sha256: string | null;
  /** records emitted from this input */
  records: number;
}

/** Filled in while reading (pass one in ReadOptions.summary). */
export interface ReadSummary {
  inputs: InputSummary[];
  records: number;
  /** records whose id was seen before (over all inputs) */
  duplicateIds: number;
  /** records with letters that only proteins use (E, F, I, J, L, O, P, Q, Z) */
  proteinLike: number;
  /** records with U (RNA) */
  rnaLike: number;
}

export function newReadSummary(): ReadSummary {
  return { inputs: [], records: 0, duplicateIds: 0, proteinLike: 0, rnaLike: 0 };
}

export interface ReadOptions {
  onWarning?: (msg: string) => void;
  /** told the size of every read from a plain file (I/O accounting, tests) */
  onRead?: (bytes: number) => void;
  /**
   * A file's text from a given offset of it, for input the reader cannot seek itself (BGZF):
   * when it returns a function, offsets (records, start) are offsets in that text. From offset 0
   * it is given `raw`, to be told the file's bytes as stored, in order (they are hashed).
   */
  decoder?: (path: string) => ((from: number, raw?: (bytes: Uint8Array) => void) => AsyncIterable<Uint8Array>) | null;
  /**
   * Stream inputs whose first bytes were read ahead by sniffInputs, by path: read from there
   * (their bytes then the rest of the stream); each is used once.
   */
  heads?: Map<string, StreamHead>;
  /** filled in as the inputs are read */
  summary?: ReadSummary;
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

/** The path that means standard input. */
export const STDIN = "-";

const CHUNK = 1 << 20;
const GT = 0x3e;
const AT = 0x40;
const PLUS = 0x2b;
const NL = 0x0a;
const CR = 0x0d;

// Byte classes: 0 = sequence letter, 1 = whitespace (dropped), 2 = binary (error),
// 3 = a letter only proteins use, 4 = U (RNA); 3 and 4 are kept like 0 and noted.
const CLASS = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  if (b === 0x20 || b === 0x09 || b === CR || b === NL || b === 0x0b || b === 0x0c) CLASS[b] = 1;
  else if (b < 0x20 || b === 0x7f || b >= 0x80) CLASS[b] = 2;
}
for (const c of "EFIJLOPQZefijlopqz") CLASS[c.charCodeAt(0)] = 3;
for (const c of "Uu") CLASS[c.charCodeAt(0)] = 4;
const PROTEIN = 1;
const RNA = 2;

/** How an input is read: standard input, a stream that cannot seek (pipe, FIFO, /dev/fd/N), or a regular file. */
export function inputKind(path: string): "stdin" | "stream" | "file" {
  if (path === STDIN) return "stdin";
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new UserError(`input ${path} does not exist`);
    throw new UserError(`cannot read input ${path}: ${code === "EACCES" ? "permission denied" : (code ?? (err as Error).message)}`);
  }
  if (st.isDirectory()) throw new UserError(`input ${path} is a directory, expected a FASTA or FASTQ file`);
  return st.isFile() ? "file" : "stream";
}

/**
 * Checks an input before any work starts: it exists, is not a directory, and (a regular file)
 * is not in a compression virnuc does not read. sniffInputs also checks the first record, streams included.
 */
export function checkInput(path: string): "stdin" | "stream" | "file" {
  const kind = inputKind(path);
  if (kind === "file") refuseMagic(path, path, magicOf(readHead(path, 0)));
  if (kind === "stdin") refuseTerminal();
  return kind;
}

/** `-` with nothing piped in would wait for typing. */
function refuseTerminal(): void {
  if (isatty(0))
    throw new UserError("input - is standard input, which is a terminal here: pipe the reads in, e.g. `zcat reads.fq.gz | virnuc predict - -o DIR`");
}

/** The name an input has in messages and records. */
export function inputName(path: string): string {
  return path === STDIN ? "<stdin>" : path;
}

type Magic = Compression | "bzip2" | "xz";

function magicOf(b: Uint8Array): Magic {
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return "gzip";
  if (b.length >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return "zstd";
  if (b.length >= 3 && b[0] === 0x42 && b[1] === 0x5a && b[2] === 0x68) return "bzip2"; // "BZh"
  if (b.length >= 6 && b[0] === 0xfd && b[1] === 0x37 && b[2] === 0x7a && b[3] === 0x58 && b[4] === 0x5a && b[5] === 0) return "xz";
  return "none";
}

function refuseMagic(name: string, path: string, magic: Magic): void {
  if (magic !== "bzip2" && magic !== "xz") return;
  const tool = magic === "bzip2" ? "bzcat" : "xzcat";
  const src = path === STDIN ? "FILE" : path;
  throw new UserError(
    `${name} is ${magic}-compressed, which virnuc does not read: decompress it in a pipe, e.g. \`${tool} ${src} | virnuc predict - -o DIR\``,
  );
}

function readHead(path: string, at: number): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const b = new Uint8Array(6);
    const n = readSync(fd, b, 0, 6, at);
    return b.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** Byte counter and sha256 of one input's bytes as they pass. */
class InputHash {
  private readonly hash: Hash | null;
  constructor(
    private readonly info: InputSummary,
    whole: boolean,
  ) {
    this.hash = whole ? createHash("sha256") : null;
  }
  add(b: Uint8Array) {
    this.info.bytes += b.length;
    this.hash?.update(b);
  }
  end() {
    if (this.hash) this.info.sha256 = this.hash.digest("hex");
  }
}

/** A plain regular file from a byte offset, through one reused buffer (the consumer copies what it keeps). */
async function* fileChunks(path: string, from: number, h: InputHash, onRead?: (bytes: number) => void): AsyncGenerator<Uint8Array> {
  const fd = openSync(path, "r");
  try {
    let pos = from;
    const buf = new Uint8Array(CHUNK);
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, pos);
      onRead?.(n);
      if (n <= 0) break;
      pos += n;
      const c = n === CHUNK ? buf : buf.subarray(0, n);
      h.add(c);
      yield c;
    }
    h.end();
  } finally {
    closeSync(fd);
  }
}

/** A stream's bytes, in fresh buffers of up to CHUNK bytes. */
function openStream(path: string): ReadStream {
  return path === STDIN ? createReadStream("", { fd: 0, highWaterMark: CHUNK, autoClose: false }) : createReadStream(path, { highWaterMark: CHUNK });
}

function readError(path: string, err: unknown): UserError {
  if (err instanceof UserError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  return new UserError(`cannot read input ${inputName(path)}: ${code ?? (err as Error).message}`);
}

/** Any input read front to back in fresh buffers (standard input, pipes, compressed files), hashed as it passes. */
async function* streamChunks(path: string, h: InputHash, from?: AsyncIterable<Uint8Array>, close?: () => void): AsyncGenerator<Uint8Array> {
  const src = from ?? openStream(path);
  try {
    for await (const c of src) {
      const b = c as Uint8Array;
      h.add(b);
      yield b;
    }
    h.end();
  } catch (err) {
    throw readError(path, err);
  } finally {
    if (src instanceof ReadStream) src.destroy();
    close?.();
  }
}

/**
 * The first bytes of a stream input, read before the run starts (sniffInputs) and kept, so that
 * the reader gets every byte: `replay()` gives the kept chunks, then the rest of the stream.
 */
export class StreamHead {
  /** the chunks read so far and not yet replayed, in order */
  readonly chunks: Uint8Array[] = [];
  private readonly it: AsyncIterator<Uint8Array>;
  private pending: Promise<unknown> | null = null;
  private ended = false;
  private error: UserError | null = null;
  private sealed = false;

  constructor(
    readonly path: string,
    private readonly src: ReadStream = openStream(path),
  ) {
    this.it = src[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  }

  /** Reads through the stream, keeping every chunk; stopping early (return) leaves the stream open. */
  recorder(): AsyncIterableIterator<Uint8Array> {
    const done = (): Promise<IteratorResult<Uint8Array>> => Promise.resolve({ done: true, value: undefined });
    const it: AsyncIterableIterator<Uint8Array> = {
      [Symbol.asyncIterator]: () => it,
      next: () => {
        if (this.sealed || this.ended) return done();
        const p = this.it.next().then(
          (r) => {
            if (r.done) this.ended = true;
            else this.chunks.push(r.value);
            return r;
          },
          (err) => {
            this.ended = true;
            this.error = readError(this.path, err);
            throw this.error;
          },
        );
        this.pending = p;
        return p;
      },
      return: done,
    };
    return it;
  }

  /** Stops recording: a read still in flight is kept (replay waits for it). */
  seal(): void {
    this.sealed = true;
  }

  /** The kept chunks, then the rest of the stream (read once). */
  async *replay(): AsyncGenerator<Uint8Array> {
    this.sealed = true;
    for (;;) {
      while (this.chunks.length > 0) yield this.chunks.shift()!;
      if (!this.pending) break;
      const p = this.pending;
      this.pending = null;
      await p.catch(() => {});
    }
    if (this.error) throw this.error;
    if (this.ended) return;
    for (;;) {
      const r = await this.it.next();
      if (r.done) return;
      yield r.value;
    }
  }

  close(): void {
    this.src.destroy();
  }
}

/** The chunks `first`, then the rest of `rest`. */
async function* chain(first: Uint8Array[], rest: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    for (const c of first) yield c;
    for (;;) {
      const r = await rest.next();
      if (r.done) return;
      yield r.value;
    }
  } finally {
    await rest.return?.();
  }
}

/** A decompression failure; the reader names the file and the line it had reached. */
class DecompressError extends Error {
  constructor(
    readonly format: "gzip" | "zstd",
    message: string,
  ) {
    super(message);
  }
}

/** zstd input whose frame structure is checked as it passes: a truncated file is an error. */
async function* zstdChecked(raw: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const frames = new ZstdFrames();
  for await (const c of raw) {
    const bad = frames.feed(c);
    if (bad) throw new DecompressError("zstd", bad);
    yield c;
  }
  const bad = frames.end();
  if (bad) throw new DecompressError("zstd", bad);
}

async function* decompressed(raw: AsyncIterable<Uint8Array>, format: "gzip" | "zstd"): AsyncGenerator<Uint8Array> {
  const z = format === "gzip" ? createGunzip({ chunkSize: CHUNK }) : createZstdDecompress({ chunkSize: CHUNK });
  const src = Readable.from(format === "zstd" ? zstdChecked(raw) : raw, { objectMode: false });
  let srcError: unknown = null;
  const srcDone = new Promise<void>((resolve) => {
    src.on("error", (e) => {
      srcError = e;
      z.destroy(e);
      resolve();
    });
    src.on("end", () => resolve());
  });
  src.pipe(z);
  try {
    for await (const c of z) yield c as Uint8Array;
    // The decompressor can stop by itself at the end of a damaged zstd frame, without an error:
    // the input is still read to its end (hashed, and its frames checked), and its error wins.
    if (!src.readableEnded && srcError === null) {
      src.unpipe(z);
      src.resume();
    }
    await srcDone;
    if (srcError !== null) throw srcError;
  } catch (err) {
    if (err instanceof UserError || err instanceof DecompressError) throw err;
    throw new DecompressError(format, (err as Error).message);
  } finally {
    // A consumer that stops early must not leave the file open.
    src.destroy();
    z.destroy();
  }
}

/** murmur3's 32-bit finaliser. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Open-addressing set of 64-bit id hashes, bounded in size (duplicate ids are counted, not keyed). */
class IdSet {
  /** beyond this many distinct ids, new ids are looked up but no longer added (128 MiB) */
  static readonly MAX_SLOTS = 1 << 24;
  private slots = new Uint32Array(2 << 12);
  private cap = 1 << 12;
  private size = 0;
  /** true when the id was added before */
  seen(id: string): boolean {
    // Two 32-bit hashes of the id's code units (FNV-1a and a multiply-xorshift), finalised.
    let a = 0x811c9dc5;
    let b = 0x9e3779b9 ^ id.length;
    for (let i = 0; i < id.length; i++) {
      const c = id.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
      b ^= b >>> 13;
    }
    a = fmix(a) >>> 0 || 1;
    b = fmix(b ^ a) >>> 0;
    const mask = this.cap - 1;
    for (let k = a & mask; ; k = (k + 1) & mask) {
      const x = this.slots[2 * k];
      if (x === 0) break;
      if (x === a && this.slots[2 * k + 1] === b) return true;
    }
    if (this.size * 2 >= this.cap) {
      if (this.cap >= IdSet.MAX_SLOTS) return false;
      this.grow();
    }
    for (let k = a & (this.cap - 1); ; k = (k + 1) & (this.cap - 1))
      if (this.slots[2 * k] === 0) {
        this.slots[2 * k] = a;
        this.slots[2 * k + 1] = b;
        this.size++;
        return false;
      }
  }
  private grow() {
    const old = this.slots;
    this.cap *= 2;
    this.slots = new Uint32Array(2 * this.cap);
    const mask = this.cap - 1;
    for (let j = 0; j < old.length; j += 2) {
      const a = old[j];
      if (a === 0) continue;
      let k = a & mask;
      while (this.slots[2 * k] !== 0) k = (k + 1) & mask;
      this.slots[2 * k] = a;
      this.slots[2 * k + 1] = old[j + 1];
    }
  }
}

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

/** A sharding start must be a record start ('>' or '@') at the start of a line of a plain file. */
function checkStart(path: string, compression: Compression, offset: number): void {
  if (compression !== "none")
    throw new UserError(`${path}: cannot start inside a ${compression} file at byte ${offset}; shard plain FASTA/FASTQ files, or whole compressed files`);
  const size = statSync(path).size;
  if (!(Number.isSafeInteger(offset) && offset > 0 && offset < size))
    throw new UserError(`${path}: start offset ${offset} is outside the file (${size} bytes)`);
  const fd = openSync(path, "r");
  try {
    const b = new Uint8Array(2);
    readSync(fd, b, 0, 2, offset - 1);
    if ((b[1] !== GT && b[1] !== AT) || b[0] !== NL)
      throw new UserError(`${path}: byte ${offset} is not the start of a '>' or '@' header line; the input changed since it was indexed?`);
  } finally {
    closeSync(fd);
  }
}

interface Noted {
  file: string;
  line: number;
  id: string;
}

/** State shared by every input of one read: record indices, the sequence buffer, what to warn about. */
class Reading {
  readonly seq = new SeqBuffer();
  /** PROTEIN | RNA letters seen in the current record's sequence */
  flags = 0;
  private readonly ids = new IdSet();
  firstDuplicate: Noted | null = null;
  firstProtein: Noted | null = null;
  firstRna: Noted | null = null;
  info!: InputSummary;
  name = "";

  constructor(
    readonly warn: (m: string) => void,
    readonly summary: ReadSummary,
    public index: number,
  ) {}

  /** Appends the sequence letters of chunk[i, end); whitespace is dropped, binary bytes are an error. Returns how many were kept. */
  letters(chunk: Uint8Array, i: number, end: number, line: number): number {
    const out = this.seq.reserve(end - i);
    const before = this.seq.len;
    let len = before;
    let flags = 0;
    for (let j = i; j < end; j++) {
      const b = chunk[j];
      const c = CLASS[b];
      if (c === 0) out[len++] = b;
      else if (c === 1) continue;
      else if (c === 2)
        throw new UserError(
          `${this.name}:${line}: binary data (byte 0x${b.toString(16).padStart(2, "0")}) in the input: not a FASTA or FASTQ text file (plain, gzip or zstd)`,
        );
      else {
        out[len++] = b;
        flags |= c - 2;
      }
    }
    this.flags |= flags;
    this.seq.len = len;
    return len - before;
  }

  /** The finished record, or null (an empty sequence is skipped with a warning). */
  finish(id: string, line: number, offset: number): FastaRecord | null {
    const flags = this.flags;
    this.flags = 0;
    if (this.seq.len === 0) {
      this.warn(`${this.name}:${line}: record '${id}' has no sequence: skipped`);
      return null;
    }
    const s = this.summary;
    if (flags & PROTEIN) {
      s.proteinLike++;
      if (!this.firstProtein) {
        this.firstProtein = { file: this.name, line, id };
        this.warn(
          `${this.name}:${line}: record '${id}' looks like protein, not DNA (it has letters such as E, F, I, L, P or Q): virnuc translates nucleotide reads, so its scores mean nothing; give the nucleotide FASTA/FASTQ`,
        );
      }
    }
    if (flags & RNA) {
      s.rnaLike++;
      if (!this.firstRna) {
        this.firstRna = { file: this.name, line, id };
        this.warn(
          `${this.name}:${line}: record '${id}' has U (RNA?): U is not read as T (a codon holding U is dropped from the translation); convert it first, e.g. \`sed '/^[>@+]/!y/Uu/Tt/'\``,
        );
      }
    }
    if (this.ids.seen(id)) {
      s.duplicateIds++;
      this.firstDuplicate ??= { file: this.name, line, id };
    }
    this.info.records++;
    s.records++;
    return { id, seq: this.seq.take(), file: this.name, line, offset, index: this.index++ };
  }

  /** The one-line summaries at the end of all inputs. */
  endWarnings() {
    const s = this.summary;
    const at = (n: Noted) => `'${n.id}' at ${n.file}:${n.line}`;
    if (s.duplicateIds > 0 && this.firstDuplicate)
      this.warn(
        `${s.duplicateIds} record(s) repeat an id seen before (first: ${at(this.firstDuplicate)}); every record is processed and kept: ids are not unique keys (record_index is)`,
      );
    if (s.proteinLike > 1 && this.firstProtein) this.warn(`${s.proteinLike} records in all look like protein (first: ${at(this.firstProtein)})`);
    if (s.rnaLike > 1 && this.firstRna) this.warn(`${s.rnaLike} records in all have U (first: ${at(this.firstRna)})`);
  }
}

/** Where a parser starts: its first line and byte offset, and whether offsets are known (plain regular file). */
interface ParseStart {
  line: number;
  pos: number;
  seekable: boolean;
}

/**
 * A format parser: fed the input's chunks in order (synchronously, so a record costs no extra
 * promise), it yields the records they complete; end() yields the last one.
 */
interface Parser {
  /** the line reached, and the record being read: for messages */
  line: number;
  header: string | null;
  headerLine: number;
  feed(chunk: Uint8Array): Generator<FastaRecord>;
  end(): Generator<FastaRecord>;
}

function explain(err: unknown, r: Reading, p: Parser | null, line: number): unknown {
  if (err instanceof RecordTooLong && p)
    return new UserError(`${r.name}:${p.headerLine}: record '${p.header}' is longer than ${MAX_RECORD_BYTES / 2 ** 30} GiB: split it first`);
  if (err instanceof DecompressError)
    return new UserError(`${r.name}:${p?.line ?? line}: corrupt or truncated ${err.format} input (${err.message}); re-download or re-compress the file`);
  return err;
}

class FastaParser implements Parser {
  line: number;
  header: string | null = null; // id of the record being read
  headerLine = 0;
  private pos: number; // byte offset of the chunk start (plain files)
  private headerOffset = -1;
  private partial: Uint8Array | null = null; // an unfinished header line across chunks
  private inHeader = false;
  private atLineStart = true;
  private readonly seekable: boolean;

  constructor(
    private readonly r: Reading,
    at: ParseStart,
  ) {
    this.line = at.line;
    this.pos = at.pos;
    this.seekable = at.seekable;
  }

  private startHeader(bytes: Uint8Array) {
    const path = this.r.name;
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === CR) end--;
    const id = headerId(bytes, end);
    if (id.length === 0) throw new UserError(`${path}:${this.line}: header without an id ('>' followed by nothing)`);
    for (let i = 0; i < end; i++)
      if (bytes[i] === 0) throw new UserError(`${path}:${this.line}: binary data (NUL byte) in a header: not a FASTA file`);
    this.header = id;
  }

  private finish(): FastaRecord | null {
    if (this.header === null) return null;
    const id = this.header;
    this.header = null;
    return this.r.finish(id, this.headerLine, this.headerOffset);
  }

  *feed(chunk: Uint8Array): Generator<FastaRecord> {
    const r = this.r;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.inHeader) {
        const nl = chunk.indexOf(NL, i);
        const end = nl < 0 ? n : nl;
        const piece = chunk.subarray(i, end);
        let headerBytes: Uint8Array;
        if (this.partial !== null) {
          const prev: Uint8Array = this.partial;
          headerBytes = new Uint8Array(prev.length + piece.length);
          headerBytes.set(prev);
          headerBytes.set(piece, prev.length);
        } else headerBytes = nl < 0 ? piece.slice() : piece;
        if (headerBytes.length > 1 << 20) throw new UserError(`${r.name}:${this.line}: header line longer than 1 MB: not a FASTA file?`);
        if (nl < 0) {
          this.partial = headerBytes;
          break;
        }
        this.startHeader(headerBytes);
        this.partial = null;
        this.inHeader = false;
        this.atLineStart = true;
        this.line++;
        i = nl + 1;
        continue;
      }
      if (this.atLineStart && chunk[i] === GT) {
        const rec = this.finish();
        if (rec) yield rec;
        this.inHeader = true;
        this.headerLine = this.line;
        this.headerOffset = this.seekable ? this.pos + i : -1;
        continue;
      }
      // Sequence bytes up to the end of the line, straight into the record; whitespace is dropped.
      const nl = chunk.indexOf(NL, i);
      const end = nl < 0 ? n : nl;
      if (end > i && r.letters(chunk, i, end, this.line) > 0 && this.header === null)
        throw new UserError(`${r.name}:${this.line}: text before the first '>' header: not a FASTA file (FASTA starts with '>', FASTQ with '@')`);
      if (nl < 0) {
        this.atLineStart = false;
        break;
      }
      this.atLineStart = true;
      this.line++;
      i = nl + 1;
    }
    this.pos += n;
  }

  *end(): Generator<FastaRecord> {
    if (this.inHeader && this.partial) {
      this.startHeader(this.partial);
      this.partial = null;
    }
    const rec = this.finish();
    if (rec) yield rec;
  }
}

const HEADER = 0, SEQ = 1, PLUS_LINE = 2, QUAL = 3;

/**
 * 4-line FASTQ: '@' header, the sequence on one line, a '+' line, qualities as long as the
 * sequence (printable '!'..'~', read and dropped). Blank lines between records are allowed.
 */
class FastqParser implements Parser {
  line: number;
  header: string | null = null;
  headerLine = 0;
  private pos: number;
  private readonly seekable: boolean;
  private state = HEADER;
  private lineLen = 0; // bytes of the current line seen so far (before its '\n')
  private partial: Uint8Array | null = null; // the header line so far
  private headerOffset = -1;
  private seqLen = 0;
  private qualLen = 0;

  constructor(
    private readonly r: Reading,
    at: ParseStart,
  ) {
    this.line = at.line;
    this.pos = at.pos;
    this.seekable = at.seekable;
  }

  private bad(what: string): UserError {
    return new UserError(`${this.r.name}:${this.line}: ${what}`);
  }

  private appendHeader(piece: Uint8Array, copy: boolean) {
    if (this.partial === null) this.partial = copy ? piece.slice() : piece;
    else {
      const b = new Uint8Array(this.partial.length + piece.length);
      b.set(this.partial);
      b.set(piece, this.partial.length);
      this.partial = b;
    }
    if (this.partial.length > 1 << 20) throw this.bad("header line longer than 1 MB: not a FASTQ file?");
  }

  /** The header line is complete: its id, or null for a blank line. */
  private endHeader(): string | null {
    const bytes: Uint8Array = this.partial ?? new Uint8Array(0);
    this.partial = null;
    let k = 0;
    while (k < bytes.length && CLASS[bytes[k]] === 1) k++;
    if (k === bytes.length) return null;
    if (bytes[0] !== AT) {
      const what = bytes[k] === GT ? "a FASTA '>' header inside FASTQ input" : `'${String.fromCharCode(bytes[k])}'`;
      throw this.bad(`expected a FASTQ record header ('@' line) but found ${what}; a FASTQ record is 4 lines: @id, sequence, +, qualities`);
    }
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === CR) end--;
    for (let i = 0; i < end; i++) if (bytes[i] === 0) throw this.bad("binary data (NUL byte) in a header: not a FASTQ file");
    const id = headerId(bytes, end);
    if (id.length === 0) throw this.bad("header without an id ('@' followed by nothing)");
    return id;
  }

  private endQual(): FastaRecord | null {
    if (this.qualLen !== this.seqLen)
      throw this.bad(
        `record '${this.header}' has ${this.qualLen} quality values for ${this.seqLen} bases: they must be equally long (a truncated or multi-line FASTQ record?)`,
      );
    const id = this.header!;
    this.header = null;
    return this.r.finish(id, this.headerLine, this.headerOffset);
  }

  *feed(chunk: Uint8Array): Generator<FastaRecord> {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      const nl = chunk.indexOf(NL, i);
      const end = nl < 0 ? n : nl;
      const state = this.state;
      if (state === HEADER) {
        if (this.lineLen === 0) this.headerOffset = this.seekable ? this.pos + i : -1;
        this.appendHeader(chunk.subarray(i, end), nl < 0);
      } else if (state === SEQ) {
        if (this.lineLen === 0 && end > i && chunk[i] === PLUS)
          throw this.bad(`record '${this.header}' has no sequence line: its header is followed by a '+' line`);
        this.seqLen += this.r.letters(chunk, i, end, this.line);
      } else if (state === PLUS_LINE) {
        if (this.lineLen === 0 && end > i && chunk[i] !== PLUS) {
          const c = chunk[i];
          if (c === AT || c === CR)
            throw this.bad(`record '${this.header}' has no '+' line after its sequence line; a FASTQ record is 4 lines: @id, sequence, +, qualities`);
          if (CLASS[c] !== 2 && CLASS[c] !== 1)
            throw this.bad(
              `record '${this.header}' continues its sequence on a second line: multi-line FASTQ is not read; rewrap it to 4-line records first (e.g. \`seqtk seq -l0 in.fq\`)`,
            );
          throw this.bad(`expected the '+' line of record '${this.header}'`);
        }
        if (this.lineLen === 0 && nl === i) throw this.bad(`record '${this.header}' has an empty line where its '+' line belongs`);
      } else {
        let q = 0;
        for (let j = i; j < end; j++) {
          const b = chunk[j];
          if (b >= 0x21 && b <= 0x7e) q++;
          else if (b !== CR) throw this.bad(`record '${this.header}': byte 0x${b.toString(16).padStart(2, "0")} is not a quality value ('!'..'~')`);
        }
        this.qualLen += q;
      }
      this.lineLen += end - i;
      if (nl < 0) break;
      // The line ends here.
      let rec: FastaRecord | null = null;
      if (state === HEADER) {
        const id = this.endHeader();
        if (id !== null) {
          this.header = id;
          this.headerLine = this.line;
          this.seqLen = 0;
          this.state = SEQ;
        }
      } else if (state === SEQ) this.state = PLUS_LINE;
      else if (state === PLUS_LINE) {
        this.qualLen = 0;
        this.state = QUAL;
      } else {
        rec = this.endQual();
        this.state = HEADER;
      }
      this.lineLen = 0;
      this.line++;
      i = nl + 1;
      if (rec) yield rec;
    }
    this.pos += n;
  }

  *end(): Generator<FastaRecord> {
    if (this.state === HEADER && this.partial !== null) {
      const id = this.endHeader();
      if (id !== null) throw this.bad(`record '${id}' is cut short: the input ends after its header (a truncated FASTQ file?)`);
    } else if (this.state === SEQ || this.state === PLUS_LINE) {
      throw new UserError(
        `${this.r.name}:${this.headerLine}: record '${this.header}' is cut short: the input ends before its '+' and quality lines (a truncated FASTQ file?)`,
      );
    } else if (this.state === QUAL) {
      const rec = this.endQual();
      if (rec) yield rec;
    }
  }
}

function firstNonSpace(c: Uint8Array): number {
  for (let i = 0; i < c.length; i++) if (CLASS[c[i]] !== 1) return i;
  return -1;
}

function countLines(c: Uint8Array): number {
  let k = 0;
  for (let i = c.indexOf(NL); i >= 0; i = c.indexOf(NL, i + 1)) k++;
  return k;
}

/** The text of a decoder (BGZF), then the end of its input's hash. */
async function* decodedChunks(text: AsyncIterable<Uint8Array>, h: InputHash): AsyncGenerator<Uint8Array> {
  yield* text;
  h.end();
}

/** The raw bytes of one input, decompressed: its chunks, in order. */
async function openInput(
  path: string,
  kind: "stdin" | "stream" | "file",
  from: number,
  info: InputSummary,
  opts: ReadOptions,
  head?: StreamHead,
): Promise<{ chunks: AsyncIterable<Uint8Array>; seekable: boolean }> {
  const name = inputName(path);
  const h = new InputHash(info, from === 0);
  if (kind === "file") {
    // A decoder (BGZF) gives the file's text from a text offset, and the file's bytes to hash.
    const decoded = opts.decoder?.(path) ?? null;
    if (decoded) {
      info.compression = "gzip";
      if (from !== 0) return { chunks: decoded(from), seekable: true };
      return { chunks: decodedChunks(decoded(0, (b) => h.add(b)), h), seekable: true };
    }
    const magic = magicOf(readHead(path, 0));
    refuseMagic(name, path, magic);
    info.compression = magic as Compression;
    if (from !== 0) checkStart(path, info.compression, from);
    if (magic === "none") return { chunks: fileChunks(path, from, h, opts.onRead), seekable: true };
    return { chunks: decompressed(streamChunks(path, h), magic as "gzip" | "zstd"), seekable: false };
  }
  if (from !== 0) throw new UserError(`${name}: cannot start at byte ${from} of a stream; shard regular files`);
  // A stream read ahead (sniffInputs) starts with the bytes read then.
  const raw = head ? streamChunks(path, h, head.replay(), () => head.close()) : streamChunks(path, h);
  return { chunks: await streamText(path, raw, info), seekable: false };
}

/** A stream's text: its first bytes tell the compression, then they are read again with the rest. */
async function streamText(path: string, raw: AsyncGenerator<Uint8Array>, info: InputSummary): Promise<AsyncIterable<Uint8Array>> {
  const first: Uint8Array[] = [];
  let have = 0;
  while (have < 6) {
    const x = await raw.next();
    if (x.done) break;
    first.push(x.value);
    have += x.value.length;
  }
  const bytes = new Uint8Array(Math.min(have, 6));
  for (let o = 0, j = 0; o < bytes.length; j++) {
    const part = first[j].subarray(0, bytes.length - o);
    bytes.set(part, o);
    o += part.length;
  }
  const magic = magicOf(bytes);
  if (magic === "bzip2" || magic === "xz") {
    await raw.return(undefined);
    refuseMagic(inputName(path), path, magic);
  }
  info.compression = magic as Compression;
  const all = chain(first, raw);
  return magic === "none" ? all : decompressed(all, magic as "gzip" | "zstd");
}

/**
 * The records of one input's text: the first byte that is not whitespace tells FASTA ('>') from
 * FASTQ ('@'). Malformed text is an error naming the file and line; so is an input without records.
 */
async function* parseInput(
  chunks: AsyncIterable<Uint8Array>,
  r: Reading,
  info: InputSummary,
  at: { line: number; pos: number; seekable: boolean; from: number },
): AsyncGenerator<FastaRecord> {
  let line = at.line;
  let pos = at.pos;
  let parser: Parser | null = null;
  try {
    for await (const c of chunks) {
      if (parser === null) {
        const k = firstNonSpace(c);
        if (k < 0) {
          line += countLines(c);
          pos += c.length;
          continue;
        }
        const start = { line, pos, seekable: at.seekable };
        info.format = c[k] === AT ? "fastq" : "fasta";
        parser = info.format === "fastq" ? new FastqParser(r, start) : new FastaParser(r, start);
      }
      for (const rec of parser.feed(c)) yield rec;
    }
    if (parser) for (const rec of parser.end()) yield rec;
  } catch (err) {
    throw explain(err, r, parser, line);
  }
  if (parser === null) {
    if (at.from === 0) throw new UserError(`no records in ${r.name} (the input is empty or holds only blank lines)`);
  } else if (info.records === 0) r.warn(`${r.name}: no record with a sequence`);
}

/**
 * Reads FASTA and FASTQ inputs (files, `-` for standard input, pipes; plain, gzip or zstd) in
 * order as one stream of records.
 */
export async function* readFasta(paths: string[], opts: ReadOptions = {}): AsyncGenerator<FastaRecord> {
  const warn = opts.onWarning ?? ((m: string) => process.stderr.write(`virnuc: warning: ${m}\n`));
  const summary = opts.summary ?? newReadSummary();
  const r = new Reading(warn, summary, opts.start?.index ?? 0);
  if (paths.filter((p) => p === STDIN).length > 1) throw new UserError("standard input (-) is given more than once: it can be read only once");
  for (let fi = opts.start?.fileIndex ?? 0; fi < paths.length; fi++) {
    const path = paths[fi];
    const head = opts.heads?.get(path);
    if (head) opts.heads!.delete(path);
    const kind = head ? (path === STDIN ? "stdin" : "stream") : inputKind(path);
    if (kind === "stdin" && !head) refuseTerminal();
    const resume = opts.start && fi === opts.start.fileIndex ? opts.start : undefined;
    const from = resume ? resume.offset : 0;
    const info: InputSummary = { path, stream: kind !== "file", compression: "none", format: null, bytes: 0, sha256: null, records: 0 };
    summary.inputs.push(info);
    r.info = info;
    r.name = inputName(path);
    const { chunks, seekable } = await openInput(path, kind, from, info, opts, head);
    yield* parseInput(chunks, r, info, { line: resume?.line ?? 1, pos: from, seekable, from });
  }
  r.endWarnings();
}

/** Text read to check an input before the run (sniffInputs): the first record, or this much. */
export const SNIFF_BYTES = 1 << 20;

/** The check's text budget is spent: what it saw was fine. */
class SniffDone extends Error {}

/** Chunks of `text` until `limit` bytes have passed, then SniffDone. */
async function* upTo(text: AsyncIterable<Uint8Array>, limit: number): AsyncGenerator<Uint8Array> {
  let seen = 0;
  for await (const c of text) {
    if (seen >= limit) throw new SniffDone();
    seen += c.length;
    yield c;
  }
}

/**
 * Checks each input's format before a run loads anything: it exists, its compression (bzip2 and
 * xz refused), and its first record (FASTA '>' or FASTQ '@' syntax, no binary data, not empty),
 * with the reader's own error lines. The text read is at most the first record or SNIFF_BYTES.
 * A stream (`-`, a FIFO, process substitution) can be read only once: the bytes read here are
 * kept, and the returned heads hand them to readFasta (ReadOptions.heads), then the rest.
 */
export async function sniffInputs(paths: string[]): Promise<Map<string, StreamHead>> {
  if (paths.filter((p) => p === STDIN).length > 1) throw new UserError("standard input (-) is given more than once: it can be read only once");
  const heads = new Map<string, StreamHead>();
  try {
    for (const path of paths) {
      const kind = checkInput(path);
      let head: StreamHead | undefined;
      if (kind !== "file") {
        if (heads.has(path)) continue; // the same stream twice: read once, as readFasta will
        head = new StreamHead(path);
        heads.set(path, head);
      }
      await sniffOne(path, kind, head);
    }
  } catch (err) {
    for (const h of heads.values()) h.close();
    throw err;
  }
  return heads;
}

async function sniffOne(path: string, kind: "stdin" | "stream" | "file", head?: StreamHead): Promise<void> {
  const info: InputSummary = { path, stream: kind !== "file", compression: "none", format: null, bytes: 0, sha256: null, records: 0 };
  const r = new Reading(() => {}, newReadSummary(), 0);
  r.info = info;
  r.name = inputName(path);
  const h = new InputHash(info, false);
  let chunks: AsyncIterable<Uint8Array>;
  if (head) {
    // Read through the head's recorder: every chunk pulled is kept for the reader.
    chunks = await streamText(path, streamChunks(path, h, head.recorder()), info);
  } else chunks = (await openInput(path, kind, 0, info, {})).chunks;
  try {
    for await (const _ of parseInput(upTo(chunks, SNIFF_BYTES), r, info, { line: 1, pos: 0, seekable: false, from: 0 })) break;
  } catch (err) {
    if (!(err instanceof SniffDone)) throw err;
  } finally {
    head?.seal();
  }
}
