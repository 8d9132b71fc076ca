/**
 * Seeded, time-bounded property tests of the reader: valid FASTA / FASTQ (plain, gzip, zstd)
 * read back as generated; mutated inputs (flipped, inserted, deleted bytes, truncation) give
 * records or one UserError line naming the file, never another exception, a hang, or
 * unbounded memory; the check before a run (sniffInputs) refuses one only with that same line.
 */
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { gzipSync } from "node:zlib";
import { readFasta, sniffInputs } from "./reader.ts";
import { UserError } from "../util/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "virnuc-fasta-prop-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const SEED = 20261130;
let k = 0;

interface Rec {
  id: string;
  desc: string;
  seq: string;
}

const idArb = fc.stringMatching(/^[A-Za-z0-9_.|:-]{1,12}$/);
const recArb: fc.Arbitrary<Rec> = fc.record({
  id: idArb,
  desc: fc.stringMatching(/^[ -~]{0,10}$/).map((d) => d.trimEnd()),
  seq: fc.stringMatching(/^[ACGTNacgtn]{1,300}$/),
});
const inputArb = fc.record({
  recs: fc.array(recArb, { minLength: 1, maxLength: 12 }),
  fastq: fc.boolean(),
  width: fc.integer({ min: 1, max: 90 }),
  crlf: fc.boolean(),
  compression: fc.constantFrom("none", "gzip", "zstd"),
});

function render(recs: Rec[], fastq: boolean, width: number, crlf: boolean): string {
  const nl = crlf ? "\r\n" : "\n";
  return recs
    .map((r) => {
      const head = r.desc ? `${r.id} ${r.desc}` : r.id;
      if (fastq) return `@${head}${nl}${r.seq}${nl}+${nl}${"I".repeat(r.seq.length)}${nl}`;
      const lines: string[] = [];
      for (let i = 0; i < r.seq.length; i += width) lines.push(r.seq.slice(i, i + width));
      return `>${head}${nl}${lines.join(nl)}${nl}`;
    })
    .join("");
}

function compress(text: Uint8Array, how: string): Uint8Array {
  if (how === "gzip") return gzipSync(text);
  if (how === "zstd") return new Uint8Array(Bun.zstdCompressSync(text));
  return text;
}

function write(b: Uint8Array): string {
  const p = join(dir, `in${k++}`);
  writeFileSync(p, b);
  return p;
}

/** Reads with a deadline: the reader must finish (records or a UserError) within `ms`. */
async function readAll(path: string, ms = 5000): Promise<{ ids: string[]; seqs: string[] } | { error: unknown }> {
  const work = (async () => {
    const ids: string[] = [];
    const seqs: string[] = [];
    try {
      for await (const r of readFasta([path], { onWarning: () => {} })) {
        ids.push(r.id);
        seqs.push(new TextDecoder("latin1").decode(r.seq));
      }
      return { ids, seqs };
    } catch (error) {
      return { error };
    }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`reader did not finish within ${ms} ms on ${path}`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

describe("reader properties (seeded, time-bounded)", () => {
  test("valid FASTA / FASTQ, plain / gzip / zstd, any line width and line ends: read back as written", async () => {
    await fc.assert(
      fc.asyncProperty(inputArb, async ({ recs, fastq, width, crlf, compression }) => {
        const text = new TextEncoder().encode(render(recs, fastq, width, crlf));
        const got = await readAll(write(compress(text, compression)));
        if ("error" in got) throw got.error;
        expect(got.ids).toEqual(recs.map((r) => r.id));
        expect(got.seqs).toEqual(recs.map((r) => r.seq));
      }),
      { seed: SEED, numRuns: 150, interruptAfterTimeLimit: 15_000 },
    );
  }, 30_000);

  test("mutated inputs: records or one UserError line naming the file; never a crash, hang or memory blow-up", async () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
      fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), len: fc.integer({ min: 1, max: 16 }) }),
      fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
      fc.record({ kind: fc.constant("insert-text" as const), at: fc.nat(), text: fc.constantFrom("\n", ">", "@", "+", "\r", "\n@x\n", "\n>\n", "\0", "U", "E") }),
    );
    const rssBefore = process.memoryUsage().rss;
    await fc.assert(
      fc.asyncProperty(inputArb, fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), async (input, muts, mutateCompressed) => {
        const text = new TextEncoder().encode(render(input.recs, input.fastq, input.width, input.crlf));
        let b = mutateCompressed ? compress(text, input.compression) : text;
        for (const m of muts) {
          const at = b.length === 0 ? 0 : m.at % (b.length + 1);
          if (m.kind === "flip" && b.length > 0) {
            b = b.slice();
            b[at % b.length] = m.value;
          } else if (m.kind === "insert") b = new Uint8Array([...b.subarray(0, at), ...m.bytes, ...b.subarray(at)]);
          else if (m.kind === "insert-text") b = new Uint8Array([...b.subarray(0, at), ...new TextEncoder().encode(m.text), ...b.subarray(at)]);
          else if (m.kind === "delete") b = new Uint8Array([...b.subarray(0, at), ...b.subarray(at + m.len)]);
          else if (m.kind === "truncate") b = b.subarray(0, at);
        }
        if (!mutateCompressed) b = compress(b, input.compression);
        const path = write(b);
        const got = await readAll(path);
        // The check before a run (sniffInputs) refuses an input with one error line naming it; on
        // damaged text (compressed intact) with the very line the full read gives. (Damage inside
        // compressed data may be seen first by the decompressor or by the parser, which can differ
        // from one read to the next.)
        let sniffed: unknown = null;
        try {
          await sniffInputs([path]);
        } catch (err) {
          sniffed = err;
        }
        if (sniffed !== null) {
          if (!(sniffed instanceof UserError)) throw sniffed;
          expect(sniffed.message).not.toContain("\n");
          expect(sniffed.message).toContain(path);
          if (!mutateCompressed || input.compression === "none") expect("error" in got && (got.error as Error).message).toBe(sniffed.message);
        }
        if ("error" in got) {
          const err = got.error;
          if (!(err instanceof UserError)) throw err;
          expect(err.message).not.toContain("\n");
          expect(err.message).toContain(path);
        } else {
          // A valid result: every record has an id and a non-empty sequence without whitespace.
          for (const id of got.ids) expect(id.length).toBeGreaterThan(0);
          for (const s of got.seqs) expect(s).toMatch(/^[^\s]+$/);
        }
      }),
      { seed: SEED + 1, numRuns: 400, interruptAfterTimeLimit: 25_000 },
    );
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(300 * 1024 * 1024);
  }, 60_000);
});
