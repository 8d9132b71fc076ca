// Parts for worker subprocesses: descriptors the workers read themselves when the inputs can be
// seeked (the parent reads no record), records over IPC otherwise.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { gzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import { bgzfCompress } from "../fasta/bgzf.ts";
import { loadOrBuildIndex } from "../fasta/index.ts";
import type { FastaRecord } from "../fasta/reader.ts";
import { hashRecords } from "../frames/prepare.ts";
import type { PartInput } from "./chain.ts";
import { readParts, readWork, type SourceOptions, type SourceSummary } from "./source.ts";
import { isPartRef, readPartRef, type PartRef, type PartWork } from "./shard-source.ts";
import type { PartEntry } from "./store.ts";

const root = mkdtempSync(join(tmpdir(), "virnuc-workparts-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** Records of random length (some empty: the reader skips them), as FASTA (wrapped) or FASTQ. */
function writeReads(path: string, n: number, seed: number, format: "fasta" | "fastq"): void {
  const rnd = lcg(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = Math.floor(rnd() * 200);
    let seq = "";
    for (let j = 0; j < len; j++) seq += "ACGT"[Math.floor(rnd() * 4)];
    if (format === "fastq") out.push(`@s${seed}_${i} x\n${seq}\n+\n${"I".repeat(len)}\n`);
    else out.push(`>s${seed}_${i} x\n${(seq.match(/.{1,60}/g) ?? []).join("\n")}${len ? "\n" : ""}`);
  }
  writeFileSync(path, out.join(""));
}

const same = (r: FastaRecord) => ({ id: r.id, seq: Buffer.from(r.seq).toString("latin1"), file: r.file, line: r.line, offset: r.offset, index: r.index });
const newSummary = (): SourceSummary => ({ totalParts: 0, totalRecords: 0, skipped: 0 });

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** The parts an in-process run reads (records), for comparison. */
async function inProcessParts(opts: SourceOptions): Promise<PartInput[]> {
  return collect(readParts({ ...opts, onWarning: () => {} }, newSummary()));
}

describe("parts for workers", () => {
  for (const format of ["fasta", "fastq", "bgzf"] as const) {
    test(`${format}: the parent reads no record; each worker-read part equals the in-process part`, async () => {
      const dir = mkdtempSync(join(root, `${format}-`));
      const text = format === "fastq" ? "fastq" : "fasta";
      const a = join(dir, `a.${text}`);
      const b = join(dir, `b.${text}`);
      writeReads(a, 130, 1, text);
      writeReads(b, 61, 2, text);
      let inputs = [a, b];
      if (format === "bgzf") {
        inputs = [a + ".gz", b + ".gz"];
        writeFileSync(inputs[0], bgzfCompress(readFileSync(a), 900));
        writeFileSync(inputs[1], bgzfCompress(readFileSync(b), 700));
      }
      // Indexes with a stride that parts do not line up with: parts start between index points.
      for (const p of inputs) await loadOrBuildIndex(p, dir, { stride: 7, onWarning: () => {} });
      const base: SourceOptions = { inputs, windowReads: 17, done: new Map(), indexDir: join(dir, "idx") };
      const expected = await inProcessParts(base);
      expect(expected.length).toBeGreaterThan(8);

      let parentBytes = 0;
      const summary = newSummary();
      const work = await collect(readWork({ ...base, onWarning: () => {}, onRead: (n) => (parentBytes += n) }, summary));
      // No part is read here (the read-through of several inputs for their warnings is not part I/O).
      expect(parentBytes).toBe(0);
      expect(work.every(isPartRef)).toBe(true);
      expect(work.map((w) => w.index)).toEqual(expected.map((p) => p.index));
      expect(summary.totalParts).toBe(expected.length);
      expect(summary.expectedReads).toBe(summary.totalRecords);
      expect(summary.totalRecords).toBe(expected.reduce((s, p) => s + p.records.length, 0));
      // A part crossing from the first input into the second is among them.
      expect((work as PartRef[]).some((r) => r.seek.start.fileIndex === 0 && r.first + r.count > 130 - 20)).toBe(true);
      for (let i = 0; i < work.length; i++) {
        const ref = JSON.parse(JSON.stringify(work[i])) as PartRef; // as the worker receives it
        let workerBytes = 0;
        const got = await readPartRef(ref, { onRead: (n) => (workerBytes += n) });
        expect(got.index).toBe(expected[i].index);
        // BGZF offsets are in the decompressed text when seeked, unknown (-1) in a read-through: no output holds them.
        const key = (r: FastaRecord) => ({ ...same(r), offset: format === "bgzf" ? 0 : r.offset });
        expect(got.records.map(key)).toEqual(expected[i].records.map(key));
        if (format !== "bgzf") expect(workerBytes).toBeGreaterThan(0);
      }
    }, 60_000);
  }

  test("a gzip input keeps the records path; resume validates done parts", async () => {
    const dir = mkdtempSync(join(root, "gz-"));
    const a = join(dir, "a.fa");
    writeReads(a, 90, 3, "fasta");
    const gz = join(dir, "a.fa.gz");
    writeFileSync(gz, gzipSync(readFileSync(a)));
    const base: SourceOptions = { inputs: [gz], windowReads: 20, done: new Map(), indexDir: join(dir, "idx") };
    const work = await collect(readWork({ ...base, onWarning: () => {} }, newSummary()));
    expect(work.length).toBeGreaterThan(2);
    expect(work.some(isPartRef)).toBe(false);
    const plain = await inProcessParts({ ...base, inputs: [a] });
    expect((work as PartInput[]).map((p) => p.records.map((r) => r.id))).toEqual(plain.map((p) => p.records.map((r) => r.id)));

    // Resume on the plain file: a done part whose hash matches is skipped (not dealt), one that
    // does not is refused.
    const entry = (p: PartInput, hash = hashRecords(p.records)) => ({ part: p.index, firstRecord: p.records[0].index, inputHash: hash }) as PartEntry;
    const summary = newSummary();
    const resumed = await collect(readWork({ ...base, inputs: [a], done: new Map([[1, entry(plain[1])]]), onWarning: () => {} }, summary));
    expect(resumed.map((w: PartWork) => w.index)).toEqual(plain.map((p) => p.index).filter((k) => k !== 1));
    expect(resumed.every(isPartRef)).toBe(true);
    expect(summary.skipped).toBe(1);
    expect(summary.expectedReads).toBe(summary.totalRecords - plain[1].records.length);

    // A shard of a worker run: its parts only, as descriptors.
    const shard = await collect(readWork({ ...base, inputs: [a], shard: { index: 1, count: 3 }, onWarning: () => {} }, newSummary()));
    expect(shard.map((w: PartWork) => w.index)).toEqual(plain.map((p) => p.index).filter((k) => k % 3 === 1));
    expect(shard.every(isPartRef)).toBe(true);
    const bad = collect(readWork({ ...base, inputs: [a], done: new Map([[2, entry(plain[2], "0000")]]), onWarning: () => {} }, newSummary()));
    await expect(bad).rejects.toThrow(/--resume refused: the input records of part 2/);
  }, 60_000);

  test("the reader's warnings and the input's sha256 come from the index, built now or earlier", async () => {
    const dir = mkdtempSync(join(root, "warn-"));
    const a = join(dir, "a.fa");
    writeReads(a, 40, 5, "fasta");
    // An empty record, protein-like records, a repeated id: what a read-through warns about.
    writeFileSync(a, readFileSync(a, "latin1") + ">empty\n>p1\nMEEFLLPQ\n>p2\nEFILPQ\n>s5_3 again\nACGT\n");
    const expected: string[] = [];
    for await (const _ of readParts({ inputs: [a], windowReads: 9, done: new Map(), onWarning: (m) => expected.push(m) }, newSummary()));
    expect(expected.length).toBe(4);
    const sha = createHash("sha256").update(readFileSync(a)).digest("hex");
    for (const when of ["built", "loaded"]) {
      const warnings: string[] = [];
      const summary = newSummary();
      let bytes = 0;
      const work = await collect(readWork({ inputs: [a], windowReads: 9, done: new Map(), indexDir: dir, onWarning: (m) => warnings.push(m), onRead: (n) => (bytes += n) }, summary));
      expect(work.every(isPartRef)).toBe(true);
      expect([when, bytes > 0]).toEqual([when, when === "built"]); // the second run only loads the index
      expect([when, warnings]).toEqual([when, expected]);
      expect(summary.inputSha256).toEqual(new Map([[a, sha]]));
    }
    // BGZF: the sha256 of the file as stored (compressed), from the index built now or earlier.
    const az = join(dir, "a.fa.gz");
    writeFileSync(az, bgzfCompress(readFileSync(a), 4000));
    const shaz = createHash("sha256").update(readFileSync(az)).digest("hex");
    for (const when of ["built", "loaded"]) {
      const summary = newSummary();
      const work = await collect(readWork({ inputs: [az], windowReads: 9, done: new Map(), indexDir: dir, onWarning: () => {} }, summary));
      expect(work.every(isPartRef)).toBe(true);
      expect([when, summary.inputSha256]).toEqual([when, new Map([[az, shaz]])]);
    }
  }, 60_000);

  test("several inputs: a whole worker run warns over all of them, as a read-through does; a shard keeps each input's own", async () => {
    const dir = mkdtempSync(join(root, "warn2-"));
    const a = join(dir, "a.fa");
    const b = join(dir, "b.fa");
    writeReads(a, 30, 5, "fasta");
    writeReads(b, 30, 5, "fasta"); // the same ids as a
    writeFileSync(a, readFileSync(a, "latin1") + ">p1\nMEEFLLPQ\n");
    writeFileSync(b, readFileSync(b, "latin1") + ">p2\nEFILPQ\n");
    const warningsOf = async (inputs: string[]) => {
      const w: string[] = [];
      for await (const _ of readParts({ inputs, windowReads: 9, done: new Map(), onWarning: (m) => w.push(m) }, newSummary()));
      return w;
    };
    const together = await warningsOf([a, b]);
    expect(together.some((w) => /record\(s\) repeat an id seen before/.test(w))).toBe(true);
    expect(together.some((w) => /^2 records in all look like protein/.test(w))).toBe(true);
    for (const when of ["built", "loaded"]) {
      const warnings: string[] = [];
      const work = await collect(readWork({ inputs: [a, b], windowReads: 9, done: new Map(), indexDir: dir, onWarning: (m) => warnings.push(m) }, newSummary()));
      expect(work.every(isPartRef)).toBe(true);
      expect([when, warnings]).toEqual([when, together]);
    }
    // A shard reads only its parts: no read-through; each input's warnings from its index.
    const warnings: string[] = [];
    const shard = await collect(readWork({ inputs: [a, b], windowReads: 9, shard: { index: 0, count: 2 }, done: new Map(), indexDir: dir, onWarning: (m) => warnings.push(m) }, newSummary()));
    expect(shard.every(isPartRef)).toBe(true);
    expect(warnings).toEqual([...(await warningsOf([a])), ...(await warningsOf([b]))]);
  }, 60_000);

  test("a worker refuses an input that changed after it was indexed", async () => {
    const dir = mkdtempSync(join(root, "changed-"));
    const a = join(dir, "a.fa");
    writeReads(a, 50, 4, "fasta");
    const work = (await collect(readWork({ inputs: [a], windowReads: 10, done: new Map(), indexDir: dir, onWarning: () => {} }, newSummary()))) as PartRef[];
    expect(work.length).toBeGreaterThan(3);
    const later = new Date(Date.now() + 5000);
    utimesSync(a, later, later);
    await expect(readPartRef(work[2])).rejects.toThrow(/part 2: input .*a\.fa changed during the run/);
    // A stale count (an index that does not match the input) is refused too.
    const last = work[work.length - 1];
    const mtimeMs = statSync(a).mtimeMs;
    const stale = { ...last, count: last.count + 3, inputs: last.inputs.map((i) => ({ ...i, mtimeMs })) };
    await expect(readPartRef(stale)).rejects.toThrow(/part \d+: the input's record index does not match the input/);
  }, 60_000);
});
