/**
 * Record-offset index of a plain input file, so that a `--shard i/N` run reads only its parts.
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
 *
 * The index is built by one pass of the reader itself (so it agrees with it on every record),
 * written atomically (concurrent builders are harmless), and rebuilt when the file's size or
 * modification time changed. Compressed input has no index: it is read from the start.
 */
import { mkdirSync, openSync, readFileSync, readSync, closeSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { createHash } from "node:crypto";
import { readFasta, type FastaRecord, type ReadOptions } from "./reader.ts";
import { writeFileAtomic } from "../output/atomic.ts";
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
}

export interface FileIndex {
  path: string;
  bytes: number;
  mtimeMs: number;
  stride: number;
  records: number;
  entries: IndexEntry[];
}

/** True when the file is plain text (not gzip, not bgzip): only those are indexed. */
export function isPlainFile(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const b = new Uint8Array(2);
    const n = readSync(fd, b, 0, 2, 0);
    return !(n === 2 && b[0] === 0x1f && b[1] === 0x8b);
  } finally {
    closeSync(fd);
  }
}

/** Where the index of `path` lives: beside it, or in `fallbackDir` when its directory is read-only. */
export function indexPaths(path: string, fallbackDir: string): { beside: string; fallback: string } {
  const abs = resolve(path);
  const tag = createHash("sha256").update(abs).digest("hex").slice(0, 12);
  return { beside: abs + INDEX_SUFFIX, fallback: join(fallbackDir, `${basename(abs)}.${tag}${INDEX_SUFFIX}`) };
}

export function formatIndex(ix: FileIndex): string {
  const lines = [`${MAGIC}\tbytes=${ix.bytes}\tmtime_ms=${ix.mtimeMs}\tstride=${ix.stride}\trecords=${ix.records}`];
  for (const e of ix.entries) lines.push(`${e.record}\t${e.offset}\t${e.line}`);
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
  const ix: FileIndex = { path, bytes: num("bytes"), mtimeMs: num("mtime_ms"), stride: num("stride"), records: num("records"), entries: [] };
  if (ix.bytes !== now.size || ix.mtimeMs !== now.mtimeMs) return null;
  if (!(Number.isInteger(ix.stride) && ix.stride > 0 && Number.isInteger(ix.records) && ix.records >= 0)) return null;
  for (let i = 1; i < lines.length; i++) {
    const [r, o, l] = lines[i].split("\t").map(Number);
    if (!(Number.isSafeInteger(r) && Number.isSafeInteger(o) && Number.isSafeInteger(l))) return null;
    ix.entries.push({ record: r, offset: o, line: l });
  }
  // Entries are records 0, S, 2S, ... below the record count.
  if (ix.entries.length !== Math.ceil(ix.records / ix.stride)) return null;
  if (ix.entries.some((e, i) => e.record !== i * ix.stride || e.offset < 0 || e.offset >= ix.bytes)) return null;
  return ix;
}

/** Builds the index of a plain file with one pass of the reader. */
export async function buildIndex(path: string, opts: { stride?: number; onWarning?: (m: string) => void; onRead?: ReadOptions["onRead"] } = {}): Promise<FileIndex> {
  const stride = opts.stride ?? STRIDE;
  const st = statSync(path);
  const entries: IndexEntry[] = [];
  let records = 0;
  for await (const rec of readFasta([path], { onWarning: opts.onWarning, onRead: opts.onRead })) {
    if (records % stride === 0) entries.push({ record: records, offset: rec.offset, line: rec.line });
    records++;
  }
  return { path, bytes: st.size, mtimeMs: st.mtimeMs, stride, records, entries };
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

/** Where to start reading for global record `record`: a reader start and the records to skip. */
export function seekRecord(
  indexes: FileIndex[],
  record: number,
): { start: NonNullable<ReadOptions["start"]>; skip: number } | null {
  let base = 0;
  for (let fi = 0; fi < indexes.length; fi++) {
    const ix = indexes[fi];
    if (record < base + ix.records) {
      const local = record - base;
      const e = ix.entries[Math.floor(local / ix.stride)];
      return { start: { fileIndex: fi, offset: e.offset, index: base + e.record, line: e.line }, skip: local - e.record };
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
  let skip = at.skip;
  let left = count;
  for await (const rec of readFasta(paths, { ...opts, start: at.start })) {
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
 * `virnuc index FILE... [-o DIR]`: builds (or checks) the record index of each plain input, so
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
    if (!isPlainFile(path)) {
      console.log(`${path}\tcompressed: not indexed (a shard reads it whole)`);
      continue;
    }
    const r = await loadOrBuildIndex(path, dir);
    if (!r.at) throw new UserError(`index: cannot write the index of ${path} beside it or in ${dir}: give a writable -o DIR`);
    console.log(`${path}\t${r.index.records} records\t${r.built ? "indexed" : "up to date"}\t${r.at}`);
  }
}
