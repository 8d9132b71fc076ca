import { describe, expect, test } from "bun:test";
import type { RecordBatch, Schema } from "apache-arrow";
import { concatBatches, rebatch } from "./rebatch.ts";
import { embeddingsBatch, predictionsSchema, sequencesSchema, windowsSchema } from "./schema.ts";
import { sampleRun } from "./testdata.ts";

/** Every row of every column, as plain values (float lists as arrays). */
function rowsOf(batches: RecordBatch[]): unknown[][] {
  const out: unknown[][] = [];
  for (const b of batches) {
    for (let i = 0; i < b.numRows; i++) {
      out.push(
        b.schema.fields.map((_, c) => {
          const v = b.getChildAt(c)!.get(i);
          return v !== null && typeof v === "object" ? [...(v as Iterable<number>)] : v;
        }),
      );
    }
  }
  return out;
}

async function collect(src: AsyncIterable<RecordBatch>): Promise<RecordBatch[]> {
  const out: RecordBatch[] = [];
  for await (const b of src) out.push(b);
  return out;
}

/** Slices of the given sizes (cycled), so pieces start at odd offsets inside their buffers. */
function cut(batch: RecordBatch, sizes: number[]): RecordBatch[] {
  const out: RecordBatch[] = [];
  for (let at = 0, i = 0; at < batch.numRows; i++) {
    const n = Math.min(sizes[i % sizes.length], batch.numRows - at);
    out.push(batch.slice(at, at + n));
    at += n;
  }
  return out;
}

describe("rebatch", () => {
  const run = sampleRun(120, 11);
  const cases: [string, RecordBatch, Schema][] = [
    ["predictions", run.predictions, predictionsSchema],
    ["windows (nullable floats and bools)", run.windows, windowsSchema],
    ["sequences (nullable strings)", run.sequences, sequencesSchema],
  ];
  for (const [name, batch, schema] of cases) {
    test(`${name}: fixed-size batches with the same rows`, async () => {
      const out = await collect(rebatch(cut(batch, [3, 29, 1, 10]), schema, 16));
      expect(out.slice(0, -1).every((b) => b.numRows === 16)).toBe(true);
      expect(out.at(-1)!.numRows).toBe(batch.numRows % 16 || 16);
      expect(rowsOf(out)).toEqual(rowsOf([batch]));
      const nulls = (bs: RecordBatch[], c: number) => bs.reduce((s, b) => s + b.getChildAt(c)!.nullCount, 0);
      for (let c = 0; c < schema.fields.length; c++) expect(nulls(out, c)).toBe(nulls([batch], c));
    });
  }

  test("embeddings (FixedSizeList) concatenate across batches", async () => {
    const mk = (n: number, base: number) =>
      embeddingsBatch({
        frameId: Array.from({ length: n }, (_, i) => `f${base + i}`),
        dnabert: new Float32Array(n * 4).map((_, i) => base * 4 + i),
        esm: new Float32Array(n * 6).map((_, i) => -(base * 6 + i)),
      });
    const parts = [mk(3, 0), mk(5, 3).slice(1, 4), mk(2, 10)];
    const schema = parts[0].schema;
    const out = await collect(rebatch(parts, schema, 4));
    expect(out.map((b) => b.numRows)).toEqual([4, 4]);
    expect(rowsOf(out)).toEqual(rowsOf(parts));
  });

  test("a single aligned piece is passed through without copying", () => {
    const b = run.predictions;
    expect(concatBatches(predictionsSchema, [{ batch: b, start: 0, end: b.numRows }])).toBe(b);
  });
});
