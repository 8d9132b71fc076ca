/**
 * Record-offset index of a plain or BGZF (bgzip) input file, so that a `--shard i/N` run reads
 * only its parts.
 *
 * The index holds, for every STRIDE-th record the reader emits (records with a sequence), its
 * byte offset and header line, plus the file's record count. A part starting at record R is read
 * by seeking to the last indexed record at or before R and skipping at most STRIDE - 1 records.
 * samtools' .fai cannot say this: it needs equal line lengths within a record, one line per
 * record (gigabytes for short reads), and knows nothing of records the reader skips.
 *
 *   FILE.virnuc-idx beside the input when its directory is writable, else NAME.HASH.virnuc-idx in
 *   $VIRNUC_INDEX_DIR or the run directory's .virnuc/index (`virnuc index FILE -o DIR` builds
 *   them ahead, e.g. once per sample before its shard jobs start)
 *   #virnuc-index 1<TAB>bytes=B<TAB>mtime_ms=T<TAB>stride=S<TAB>records=N
 *   record<TAB>offset<TAB>line          (one line every S records, record 0 first)
 *   the header adds sha256=HEX (the file's bytes as stored, compressed for BGZF, hashed by the
 *   build pass; an index without it is rebuilt), and each warning
 *   the reader gave while building follows as #warning<TAB>"JSON string" (a run that reads through
 *   the index instead of the records repeats them and records the hash)
 *   BGZF input: format=bgzf in the header; offsets are in the decompressed text, and each line
 *   adds the compressed offset of the BGZF block holding the header and that block's first
 *   decompressed offset: record<TAB>offset<TAB>line<TAB>block_coffset<TAB>block_uoffset
 *
 * The index is built by one pass of the reader itself (so it agrees with it on every record),
 * written atomically (concurrent builders are harmless), and rebuilt when the file's size or
 * modification time changed. Plain gzip has no index: it is read from the start.
 */
import { mkdirSync, openSync, readFileSync, readSync, closeSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { createHash } from "node:crypto";
import { newReadSummary, readFasta, type FastaRecord, type ReadOptions } from "./reader.ts";
import { writeFileAtomic } from "../output/atomic.ts";
import { bgzfText, isBgzf } from "./bgzf.ts";
import { UserError } from "../util/errors.ts";

export const INDEX_SUFFIX = ".virnuc-idx";
export const STRIDE = 1000;
const MAGIC = "#virnuc-index 1";

export interface IndexEntry {
  /** record index within the file (0-based, records with a sequence) */
  record: number;
  /** byte offset of the record's header */
  offset: number;
  /** 1-based line of the header */
  line: number;
  /** BGZF: the block holding the header (compressed offset, first decompressed offset) */
  block?: { coffset: number; uoffset: number };
}

export type IndexFormat = "plain" | "bgzf";

export interface FileIndex {
  path: string;
  format: IndexFormat;
  bytes: number;
  mtimeMs: number;
  stride: number;
  records: number;
  entries: IndexEntry[];
  /** sha256 of the file's bytes as stored (BGZF: the compressed bytes); the build pass hashes them */
  sha256?: string;
  /** the reader's warnings while reading the whole file, in order */
  warnings?: string[];
}

/** How a file can be indexed: plain text, BGZF, or not at all (plain gzip: null). */
export function indexFormat(path: string): IndexFormat | null {
  const fd = openSync(path, "r");
  let gz: boolean;
  try {
    const b = new Uint8Array(2);
    const n = readSync(fd, b, 0, 2, 0);
    gz = n === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
  if (!gz) return "plain";
  return isBgzf(path) ? "bgzf" : null;
}

/** Where the index of `path` lives: beside it, or in `fallbackDir` when its directory is read-only. */
export function indexPaths(path: string, fallbackDir: string): { beside: string; fallback: string } {
  const abs = resolve(path);
  const tag = createHash("sha256").update(abs).digest("hex").slice(0, 12);
  return { beside: abs + INDEX_SUFFIX, fallback: join(fallbackDir, `${basename(abs)}.${tag}${INDEX_SUFFIX}`) };
}

export function formatIndex(ix: FileIndex): string {
  const format = ix.format === "bgzf" ? "\tformat=bgzf" : "";
  const sha = ix.sha256 ? `\tsha256=${ix.sha256}` : "";
  const lines = [`${MAGIC}\tbytes=${ix.bytes}\tmtime_ms=${ix.mtimeMs}\tstride=${ix.stride}\trecords=${ix.records}${format}${sha}`];
  for (const w of ix.warnings ?? []) lines.push(`#warning\t${JSON.stringify(w)}`);
  for (const e of ix.entries) lines.push(`${e.record}\t${e.offset}\t${e.line}` + (e.block ? `\t${e.block.coffset}\t${e.block.uoffset}` : ""));
  return lines.join("\n") + "\n";
}

/** Parses an index file; null when it is not one, is damaged, or does not describe `path` as it is now. */
export function parseIndex(text: string, path: string, now: { size: number; mtimeMs: number }): FileIndex | null {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const head = lines[0]?.split("\t");
  if (!head || head[0] !== MAGIC) return null;
  const kv = new Map(head.slice(1).map((f) => f.split("=", 2) as [string, string]));
  const num = (k: string) => (kv.has(k) ? Number(kv.get(k)) : NaN);
  const format = (kv.get("format") ?? "plain") as IndexFormat;
  if (format !== "plain" && format !== "bgzf") return null;
  const ix: FileIndex = { path, format, bytes: num("bytes"), mtimeMs: num("mtime_ms"), stride: num("stride"), records: num("records"), entries: [] };
  if (ix.bytes !== now.size || ix.mtimeMs !== now.mtimeMs) return null;
  if (!(Number.isInteger(ix.stride) && ix.stride > 0 && Number.isInteger(ix.records) && ix.records >= 0)) return null;
  // Every index holds its file's sha256 (older BGZF indexes did not: they are rebuilt).
  const sha = kv.get("sha256");
  if (sha === undefined || !/^[0-9a-f]{64}$/.test(sha)) return null;
  ix.sha256 = sha;
  ix.warnings = [];
  let i = 1;
  for (; i < lines.length && lines[i].startsWith("#warning\t"); i++) {
    let w: unknown;
    try {
      w = JSON.parse(lines[i].slice("#warning\t".length));
    } catch {
      return null;
    }
    if (typeof w !== "string") return null;
    ix.warnings.push(w);
  }
  for (; i < lines.length; i++) {
    const f = lines[i].split("\t").map(Number);
    if (f.length !== (format === "bgzf" ? 5 : 3) || !f.every((x) => Number.isSafeInteger(x) && x >= 0)) return null;
    const e: IndexEntry = { record: f[0], offset: f[1], line: f[2] };
    if (format === "bgzf") {
      if (f[3] >= ix.bytes || f[4] > f[1]) return null;
      e.block = { coffset: f[3], uoffset: f[4] };
    } else if (e.offset >= ix.bytes) return null;
    ix.entries.push(e);
  }
  // Entries are records 0, S, 2S, ... below the record count.
  if (ix.entries.length !== Math.ceil(ix.records / ix.stride)) return null;
  if (ix.entries.some((e, i) => e.record !== i * ix.stride)) return null;
  return ix;
}

/** An input the reader cannot start inside of: it is read whole. */
export class NotIndexable extends Error {}

/** Builds the index of a plain or BGZF file with one pass of the reader. */
export async function buildIndex(path: string, opts: { stride?: number; onWarning?: (m: string) => void; onRead?: ReadOptions["onRead"] } = {}): Promise<FileIndex> {
  const stride = opts.stride ?? STRIDE;
  const st = statSync(path);
  const format = indexFormat(path);
  if (!format) throw new UserError(`${path} is gzip-compressed (not BGZF) and cannot be indexed; recompress it with bgzip, or use it as it is (read whole)`);
  const entries: IndexEntry[] = [];
  let records = 0;
  // BGZF: the blocks decompressed so far that may still hold a record's header.
  const blocks: { coffset: number; uoffset: number; end: number }[] = [];
  let head = 0;
  const warnings: string[] = [];
  const onWarning = (m: string) => {
    warnings.push(m);
    if (opts.onWarning) opts.onWarning(m);
    else process.stderr.write(`virnuc: warning: ${m}\n`);
  };
  const summary = newReadSummary();
  const decoder: ReadOptions["decoder"] =
    format === "bgzf"
      ? (p) =>
          p === path
            ? (from, raw) =>
                bgzfText(path, from, { coffset: 0, uoffset: 0 }, opts.onRead, (b) => blocks.push({ coffset: b.coffset, uoffset: b.uoffset, end: b.uoffset + b.data.length }), raw)
            : null
      : undefined;
  for await (const rec of readFasta([path], { onWarning, onRead: opts.onRead, decoder, summary })) {
    // Headers come in increasing offsets: blocks ending before this one are done with.
    while (head < blocks.length && blocks[head].end <= rec.offset) head++;
    // A reader that gives no offset for this input cannot start inside it.
    if (rec.offset < 0) throw new NotIndexable(`${path}: the reader gives no record offsets for this input`);
    if (records % stride === 0) {
      const e: IndexEntry = { record: records, offset: rec.offset, line: rec.line };
      if (format === "bgzf") e.block = { coffset: blocks[head].coffset, uoffset: blocks[head].uoffset };
      entries.push(e);
    }
    records++;
    if (head > 4096) {
      blocks.splice(0, head);
      head = 0;
    }
  }
  const sha256 = summary.inputs[0]?.sha256 ?? undefined;
  return { path, format, bytes: st.size, mtimeMs: st.mtimeMs, stride, records, entries, warnings, ...(sha256 ? { sha256 } : {}) };
}

/**
 * The reader's decoder for the BGZF inputs among `paths` (by `formats`): a file is started at its
 * beginning, or the seek point's file at the seek point's block.
 */
function seekDecoder(paths: string[], formats: IndexFormat[], at: RangeSeek, onRead?: (bytes: number) => void): ReadOptions["decoder"] {
  if (!formats.includes("bgzf")) return undefined;
  return (path) => {
    const fi = paths.indexOf(path);
    if (fi < 0 || formats[fi] !== "bgzf") return null;
    return (from, raw) => {
      const block = from === 0 ? { coffset: 0, uoffset: 0 } : path === paths[at.start.fileIndex] && from === at.start.offset ? at.block : undefined;
      if (!block) throw new Error(`BGZF decoder: offset ${from} of ${path} is not an indexed record`);
      return bgzfText(path, from, block, onRead, undefined, raw);
    };
  };
}

/**
 * The index of a plain file: read from beside it or from one of `fallbackDirs`, else built and
 * kept beside it (or in the first fallback directory that can be written when its own cannot).
 */
export async function loadOrBuildIndex(
  path: string,
  fallbackDirs: string | string[],
  opts: { stride?: number; onWarning?: (m: string) => void; onRead?: ReadOptions["onRead"] } = {},
): Promise<{ index: FileIndex; built: boolean; at: string }> {
  const st = statSync(path);
  const dirs = Array.isArray(fallbackDirs) ? fallbackDirs : [fallbackDirs];
  const places = [resolve(path) + INDEX_SUFFIX, ...dirs.map((d) => indexPaths(path, d).fallback)];
  for (const p of places) {
    let text: string;
    try {
      text = readFileSync(p, "latin1");
    } catch {
      continue;
    }
    const ix = parseIndex(text, path, st);
    if (ix && (opts.stride === undefined || ix.stride === opts.stride)) return { index: ix, built: false, at: p };
  }
  const index = await buildIndex(path, opts);
  const text = formatIndex(index);
  for (const at of places) {
    try {
      mkdirSync(dirname(at), { recursive: true });
      writeFileAtomic(at, text);
      return { index, built: true, at };
    } catch {
      // Not writable (a read-only input directory): try the next place.
    }
  }
  // An index that cannot be kept costs the next run one more pass; this run goes on.
  return { index, built: true, at: "" };
}

/**
 * Where a reader starts to reach a record: an indexed record (file, byte offset, its global
 * record index, line, and for BGZF its block) and how many records to skip from there.
 */
export interface RangeSeek {
  start: NonNullable<ReadOptions["start"]>;
  skip: number;
  block?: { coffset: number; uoffset: number };
}

/** Where to start reading for global record `record`: a reader start and the records to skip. */
export function seekRecord(indexes: FileIndex[], record: number): RangeSeek | null {
  let base = 0;
  for (let fi = 0; fi < indexes.length; fi++) {
    const ix = indexes[fi];
    if (record < base + ix.records) {
      const local = record - base;
      const e = ix.entries[Math.floor(local / ix.stride)];
      const at: RangeSeek = { start: { fileIndex: fi, offset: e.offset, index: base + e.record, line: e.line }, skip: local - e.record };
      if (e.block) at.block = { ...e.block };
      return at;
    }
    base += ix.records;
  }
  return null;
}

/**
 * Records [first, first + count) of the inputs, read from the indexed offset (the reader starts
 * there and stops once the part is complete).
 */
export async function* readRecordRange(
  paths: string[],
  indexes: FileIndex[],
  first: number,
  count: number,
  opts: Pick<ReadOptions, "onWarning" | "onRead"> = {},
): AsyncGenerator<FastaRecord> {
  const at = seekRecord(indexes, first);
  if (!at || count <= 0) return;
  yield* readFromSeek(paths, indexes.map((ix) => ix.format), at, count, opts);
}

/**
 * `count` records from a seek point (seekRecord's answer, e.g. sent to a worker): needs only the
 * paths and each one's format, not the indexes.
 */
export async function* readFromSeek(
  paths: string[],
  formats: IndexFormat[],
  at: RangeSeek,
  count: number,
  opts: Pick<ReadOptions, "onWarning" | "onRead"> = {},
): AsyncGenerator<FastaRecord> {
  if (count <= 0) return;
  let skip = at.skip;
  let left = count;
  for await (const rec of readFasta(paths, { ...opts, start: at.start, decoder: seekDecoder(paths, formats, at, opts.onRead) })) {
    if (skip > 0) {
      skip--;
      continue;
    }
    yield rec;
    if (--left === 0) return;
  }
}

/** Directories a run looks in for indexes besides the inputs' own: $VIRNUC_INDEX_DIR, then the run's. */
export function indexDirs(runIndexDir: string): string[] {
  const env = process.env.VIRNUC_INDEX_DIR;
  return env ? [resolve(env), runIndexDir] : [runIndexDir];
}

/**
 * `virnuc index FILE... [-o DIR]`: builds (or checks) the record index of each plain or BGZF input, so
 * that `--shard` runs started later only seek. Kept beside the input, else in DIR.
 */
export async function indexCommand(inputs: string[], opts: { output?: string }): Promise<void> {
  if (!inputs?.length) throw new UserError("index: give the FASTA files to index");
  const dir = resolve(opts.output ?? ".");
  for (const path of inputs) {
    let st;
    try {
      st = statSync(path);
    } catch {
      throw new UserError(`cannot read input ${path}: no such file`);
    }
    if (st.isDirectory()) throw new UserError(`input ${path} is a directory, expected a FASTA file`);
    if (!indexFormat(path)) {
      console.log(`${path}\tgzip (not BGZF): not indexed (a shard reads it whole; bgzip makes it seekable)`);
      continue;
    }
    let r;
    try {
      r = await loadOrBuildIndex(path, dir);
    } catch (err) {
      if (!(err instanceof NotIndexable)) throw err;
      console.log(`${path}\tnot indexed (${err.message}; a shard reads it whole)`);
      continue;
    }
    if (!r.at) throw new UserError(`index: cannot write the index of ${path} beside it or in ${dir}: give a writable -o DIR`);
    console.log(`${path}\t${r.index.records} records\t${r.built ? "indexed" : "up to date"}\t${r.at}`);
  }
}
