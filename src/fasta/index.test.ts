import { afterAll, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { gzipSync } from "node:zlib";
import { readFasta, type FastaRecord } from "./reader.ts";
import { bgzfCompress } from "./bgzf.ts";
import { createHash } from "node:crypto";
import { INDEX_SUFFIX, buildIndex, indexCommand, formatIndex, indexPaths, loadOrBuildIndex, parseIndex, readRecordRange } from "./index.ts";
import { readParts, type SourceSummary } from "../run/source.ts";
import { hashRecords } from "../frames/prepare.ts";

/** The part counts of a source summary (the reader's per-input details differ between a seek and a read-through). */
const counts = (s: { totalParts: number; totalRecords: number; skipped: number }) => ({ totalParts: s.totalParts, totalRecords: s.totalRecords, skipped: s.skipped });

const root = mkdtempSync(join(tmpdir(), "virnuc-index-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** Irregular FASTA: wrapped and unwrapped records, CRLF, blank lines, records without sequence. */
function irregularFasta(path: string, n: number, seed: number) {
  const rnd = lcg(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = Math.floor(rnd() * 400);
    let seq = "";
    for (let j = 0; j < len; j++) seq += "ACGTacgtN"[Math.floor(rnd() * 9)];
    const eol = rnd() < 0.2 ? "\r\n" : "\n";
    const width = rnd() < 0.5 ? 60 : 1000;
    const lines = seq.match(new RegExp(`.{1,${width}}`, "g")) ?? [];
    out.push(`>r${i} desc ${i}${eol}${lines.join(eol)}${lines.length ? eol : ""}${rnd() < 0.1 ? eol : ""}`);
  }
  writeFileSync(path, out.join(""));
}

async function all(paths: string[]): Promise<FastaRecord[]> {
  const out: FastaRecord[] = [];
  for await (const r of readFasta(paths, { onWarning: () => {} })) out.push({ ...r, seq: r.seq.slice() });
  return out;
}

const same = (r: FastaRecord) => ({ id: r.id, seq: Buffer.from(r.seq).toString(), file: r.file, line: r.line, offset: r.offset, index: r.index });

describe("record-offset index", () => {
  test("any record range read through the index equals the same records of a full read (several files)", async () => {
    const a = join(root, "a.fa");
    const b = join(root, "b.fa");
    irregularFasta(a, 230, 1);
    irregularFasta(b, 95, 2);
    const full = await all([a, b]);
    expect(full.length).toBeGreaterThan(250); // some records have no sequence and are skipped
    const ixs = [await buildIndex(a, { stride: 7, onWarning: () => {} }), await buildIndex(b, { stride: 7, onWarning: () => {} })];
    expect(ixs[0].records + ixs[1].records).toBe(full.length);
    for (const [first, count] of [[0, 5], [6, 9], [7, 7], [100, 200], [ixs[0].records - 3, 10], [full.length - 1, 5], [0, full.length]]) {
      const got: FastaRecord[] = [];
      for await (const r of readRecordRange([a, b], ixs, first, count, { onWarning: () => {} })) got.push({ ...r, seq: r.seq.slice() });
      expect(got.map(same)).toEqual(full.slice(first, first + count).map(same));
    }
  }, 30_000);

  test("BGZF: any record range read through the index equals the same records of a full read", async () => {
    const a = join(root, "a.fa");
    const b = join(root, "b.fa");
    const az = join(root, "a.fa.gz");
    const bz = join(root, "b.fa.gz");
    // Small blocks: headers and sequences straddle block ends.
    writeFileSync(az, bgzfCompress(readFileSync(a), 3000));
    writeFileSync(bz, bgzfCompress(readFileSync(b), 2000));
    const full = await all([a, b]);
    const ixs = [await buildIndex(az, { stride: 7, onWarning: () => {} }), await buildIndex(bz, { stride: 7, onWarning: () => {} })];
    expect(ixs.map((x) => x.format)).toEqual(["bgzf", "bgzf"]);
    // the sha256 of the file as stored (its compressed bytes), kept in the index
    const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
    expect(ixs.map((x) => x.sha256)).toEqual([sha(az), sha(bz)]);
    expect(parseIndex(formatIndex(ixs[0]), az, statSync(az))).toEqual(ixs[0]);
    const noOffset = (r: FastaRecord) => ({ ...same(r), offset: 0, file: "" });
    for (const [first, count] of [[0, 5], [6, 9], [7, 7], [100, 200], [ixs[0].records - 3, 10], [full.length - 1, 5], [0, full.length]]) {
      const got: FastaRecord[] = [];
      for await (const r of readRecordRange([az, bz], ixs, first, count, { onWarning: () => {} })) got.push({ ...r, seq: r.seq.slice() });
      expect(got.map(noOffset)).toEqual(full.slice(first, first + count).map(noOffset));
    }
  }, 30_000);

  test("kept beside the input, reused, rebuilt when the input changes", async () => {
    const f = join(root, "keep.fa");
    irregularFasta(f, 50, 3);
    const fallback = join(root, "run-index");
    const first = await loadOrBuildIndex(f, fallback, { onWarning: () => {} });
    expect(first.built).toBe(true);
    expect(first.at).toBe(f + INDEX_SUFFIX);
    expect(readFileSync(first.at, "utf8")).toBe(formatIndex(first.index));
    const again = await loadOrBuildIndex(f, fallback, { onWarning: () => {} });
    expect(again.built).toBe(false);
    expect(again.index).toEqual(first.index);
    appendFileSync(f, ">more\nACGT\n");
    const changed = await loadOrBuildIndex(f, fallback, { onWarning: () => {} });
    expect(changed.built).toBe(true);
    expect(changed.index.records).toBe(first.index.records + 1);
  }, 30_000);

  test("kept in the run directory when it cannot be written beside the input", async () => {
    const dir = join(root, "ro");
    mkdirSync(dir);
    const f = join(dir, "reads.fa");
    irregularFasta(f, 40, 4);
    // A directory where the index file would go: writing there fails, also for root.
    mkdirSync(join(f + INDEX_SUFFIX, "x"), { recursive: true });
    const fallback = join(root, "run2", ".virnuc", "index");
    const r = await loadOrBuildIndex(f, fallback, { onWarning: () => {} });
    expect(r.at).toBe(indexPaths(f, fallback).fallback);
    expect(existsSync(r.at)).toBe(true);
    expect((await loadOrBuildIndex(f, fallback, { onWarning: () => {} })).built).toBe(false);
  }, 30_000);

  test("virnuc index builds ahead; a shard finds the index in $VIRNUC_INDEX_DIR and only seeks", async () => {
    const dir = join(root, "ahead");
    mkdirSync(dir);
    const f = join(dir, "reads.fa");
    irregularFasta(f, 300, 6);
    mkdirSync(join(f + INDEX_SUFFIX, "x"), { recursive: true }); // not writable beside the input
    const shared = join(root, "shared-index");
    const log = console.log;
    const printed: string[] = [];
    console.log = (m: string) => printed.push(m);
    try {
      await indexCommand([f], { output: shared });
      await indexCommand([f], { output: shared });
    } finally {
      console.log = log;
    }
    expect(printed[0]).toMatch(/\tindexed\t.*shared-index/);
    expect(printed[1]).toMatch(/\tup to date\t/);
    const kept = indexPaths(f, shared).fallback;
    const stamp = statSync(kept);
    const before = process.env.VIRNUC_INDEX_DIR;
    process.env.VIRNUC_INDEX_DIR = shared;
    try {
      let bytes = 0;
      const summary: SourceSummary = { totalParts: 0, totalRecords: 0, skipped: 0 };
      const parts: number[] = [];
      for await (const p of readParts({ inputs: [f], windowReads: 20, shard: { index: 0, count: 3 }, done: new Map(), indexDir: join(root, "ahead-run"), onRead: (n) => (bytes += n), onWarning: () => {} }, summary))
        parts.push(p.index);
      expect(parts.length).toBeGreaterThan(2);
      expect(parts.every((k) => k % 3 === 0)).toBe(true);
      // The shared index was used, not rebuilt (a rebuild replaces the file).
      expect(statSync(kept).ino).toBe(stamp.ino);
      expect(statSync(kept).mtimeMs).toBe(stamp.mtimeMs);
      expect(existsSync(join(root, "ahead-run"))).toBe(false);
      expect(summary.totalRecords).toBe((await all([f])).length);
    } finally {
      if (before === undefined) delete process.env.VIRNUC_INDEX_DIR;
      else process.env.VIRNUC_INDEX_DIR = before;
    }
    await expect(indexCommand([join(dir, "nope.fa")], {})).rejects.toThrow(/no such file/);
  }, 30_000);

  test("a damaged or foreign index is not used", () => {
    const now = { size: 1000, mtimeMs: 5 };
    const good = formatIndex({ path: "x", format: "plain", bytes: 1000, mtimeMs: 5, stride: 10, records: 15, entries: [{ record: 0, offset: 0, line: 1 }, { record: 10, offset: 500, line: 21 }], sha256: "a".repeat(64) });
    expect(parseIndex(good, "x", now)?.entries.length).toBe(2);
    expect(parseIndex(good, "x", { size: 1001, mtimeMs: 5 })).toBeNull();
    expect(parseIndex(good, "x", { size: 1000, mtimeMs: 6 })).toBeNull();
    expect(parseIndex(good.replace("\n10\t500", "\n11\t500"), "x", now)).toBeNull();
    expect(parseIndex(good.split("\n").slice(0, 2).join("\n"), "x", now)).toBeNull(); // an entry missing
    expect(parseIndex(">r1\nACGT\n", "x", now)).toBeNull();
    // without the file's sha256 (BGZF indexes of earlier versions): rebuilt
    expect(parseIndex(good.replace(`\tsha256=${"a".repeat(64)}`, ""), "x", now)).toBeNull();
  });
});

describe("a shard reads only its share", () => {
  /** A plain FASTA of n 150 bp reads (about 27 MB for 160 k). */
  function bigFasta(path: string, n: number) {
    const rnd = lcg(9);
    const buf = new Uint8Array(n * 170);
    const enc = new TextEncoder();
    let p = 0;
    for (let i = 0; i < n; i++) {
      p += enc.encodeInto(`>read_${i}\n`, buf.subarray(p)).written;
      for (let j = 0; j < 150; j++) buf[p++] = 0x41 + [0, 2, 6, 19][(rnd() * 4) | 0]; // A C G T
      buf[p++] = 0x0a;
    }
    writeFileSync(path, buf.subarray(0, p));
  }

  async function shardParts(inputs: string[], shard: { index: number; count: number } | undefined, indexDir: string | undefined, windowReads: number) {
    let bytes = 0;
    const summary: SourceSummary = { totalParts: 0, totalRecords: 0, skipped: 0 };
    const parts: { index: number; hash: string; first: number; n: number }[] = [];
    const warnings: string[] = [];
    for await (const p of readParts({ inputs, windowReads, shard, done: new Map(), indexDir, onRead: (n) => (bytes += n), onWarning: (m) => warnings.push(m) }, summary))
      parts.push({ index: p.index, hash: hashRecords(p.records), first: p.records[0].index, n: p.records.length });
    return { bytes, summary, parts, warnings };
  }

  test("1/4 of a plain FASTA reads about a quarter of its bytes, and the same parts as a full read", async () => {
    const f = join(root, "big.fa");
    const n = 160_000;
    bigFasta(f, n);
    const size = Bun.file(f).size;
    const W = 20_000; // 8 parts of about 3.7 MB
    const indexDir = join(root, "big-run", "index");
    // The first shard builds the index (one pass over the file), later ones only seek.
    const build = await shardParts([f], { index: 0, count: 4 }, indexDir, W);
    expect(existsSync(f + INDEX_SUFFIX)).toBe(true);
    expect(build.bytes).toBeGreaterThan(size);
    const seek = await shardParts([f], { index: 1, count: 4 }, indexDir, W);
    const through = await shardParts([f], { index: 1, count: 4 }, undefined, W);
    expect(through.bytes).toBeGreaterThanOrEqual(size);
    // Parts 1 and 5 (a quarter of the records), plus at most one 1 MiB read past each part's end.
    expect(seek.bytes / size).toBeGreaterThan(0.24);
    expect(seek.bytes).toBeLessThanOrEqual(size / 4 + 2 * 2 ** 20 + 4096);
    expect(seek.bytes / size).toBeLessThan(0.35);
    expect(seek.parts).toEqual(through.parts);
    expect(seek.parts.map((p) => p.index)).toEqual([1, 5]);
    expect(counts(seek.summary)).toEqual(counts(through.summary));
    expect(seek.summary.totalParts).toBe(8);
    expect(seek.summary.totalRecords).toBe(n);

    // The same file as BGZF: the shard reads about a quarter of the compressed bytes.
    const gz = join(root, "big.fa.gz");
    writeFileSync(gz, bgzfCompress(readFileSync(f)));
    const zsize = Bun.file(gz).size;
    await shardParts([gz], { index: 0, count: 4 }, indexDir, W); // builds its index
    const zseek = await shardParts([gz], { index: 1, count: 4 }, indexDir, W);
    expect(zseek.parts).toEqual(through.parts);
    expect(counts(zseek.summary)).toEqual(counts(through.summary));
    expect(zseek.warnings).toEqual([]);
    // Parts 1 and 5, plus at most one 256 KiB read and one block past each part's end.
    expect(zseek.bytes / zsize).toBeGreaterThan(0.24);
    expect(zseek.bytes).toBeLessThanOrEqual(zsize / 4 + 2 * (256 + 64) * 1024);
  }, 90_000);

  test("plain FASTQ: a shard seeks to its parts too (records start with '@', qualities may too)", async () => {
    const f = join(root, "reads.fq");
    const next = lcg(9);
    const lines: string[] = [];
    for (let i = 0; i < 40_000; i++) {
      const len = 60 + Math.floor(next() * 90);
      const seq = Array.from({ length: len }, () => "ACGT"[Math.floor(next() * 4)]).join("");
      // qualities starting with '@' are valid FASTQ and must not be taken for a record start
      lines.push(`@q${i} run=1`, seq, "+", "@" + "I".repeat(len - 1));
    }
    writeFileSync(f, lines.join("\n") + "\n");
    const size = Bun.file(f).size;
    const indexDir = join(root, "fq-run", "index");
    await shardParts([f], { index: 0, count: 4 }, indexDir, 5000); // builds the index (8 parts of ~1.2 MB)
    const seek = await shardParts([f], { index: 2, count: 4 }, indexDir, 5000);
    const through = await shardParts([f], { index: 2, count: 4 }, undefined, 5000);
    expect(seek.warnings).toEqual([]);
    expect(seek.parts).toEqual(through.parts);
    expect(seek.parts.map((p) => p.index)).toEqual([2, 6]);
    expect(counts(seek.summary)).toEqual(counts(through.summary));
    expect(seek.bytes).toBeLessThan(through.bytes);
    // parts 2 and 6, plus at most one 1 MiB read past each part's end
    expect(seek.bytes).toBeLessThanOrEqual(size / 4 + 2 * 2 ** 20 + 4096);
  }, 60_000);

  test("gzip input cannot be seeked: said once, read through, same parts", async () => {
    const f = join(root, "small.fa");
    irregularFasta(f, 120, 5);
    const gz = join(root, "small.fa.gz");
    writeFileSync(gz, gzipSync(readFileSync(f)));
    const plain = await shardParts([f], { index: 2, count: 3 }, join(root, "small-run"), 10);
    const z = await shardParts([gz], { index: 2, count: 3 }, join(root, "small-run-gz"), 10);
    expect(z.warnings.filter((w) => /gzip-compressed and cannot be seeked/.test(w)).length).toBe(1);
    expect(z.parts).toEqual(plain.parts);
    expect(counts(z.summary)).toEqual(counts(plain.summary));
    expect(existsSync(gz + INDEX_SUFFIX)).toBe(false);
  }, 30_000);

  test("a stream (named pipe) cannot be seeked: said once, read through once, same parts", async () => {
    if (process.platform === "win32") return;
    const f = join(root, "stream-src.fa");
    irregularFasta(f, 120, 6);
    const fifo = join(root, "shard-fifo");
    expect(Bun.spawnSync(["mkfifo", fifo], { env: process.env }).exitCode).toBe(0);
    const writer = Bun.spawn(["sh", "-c", `cat '${f}' > '${fifo}'`], { env: process.env });
    const s = await shardParts([fifo], { index: 2, count: 3 }, join(root, "stream-run"), 10);
    await writer.exited;
    const plain = await shardParts([f], { index: 2, count: 3 }, join(root, "stream-run-plain"), 10);
    expect(s.warnings.filter((w) => /cannot be seeked/.test(w))).toEqual([`${fifo} is a stream and cannot be seeked: this shard reads the whole input`]);
    expect(s.parts).toEqual(plain.parts);
    expect(counts(s.summary)).toEqual(counts(plain.summary));
  }, 30_000);
});
