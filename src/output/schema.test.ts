import { describe, expect, test } from "bun:test";
import { Type, util } from "apache-arrow";
import {
  embeddingsBatch,
  emptyBatch,
  encodeUtf8,
  predictionsBatch,
  predictionsSchema,
  sequencesBatch,
  toBigInt64,
  toFloat16Bits,
  windowsBatch,
  windowsSchema,
} from "./schema.ts";

function column(batch: { getChild(n: string): { toArray(): unknown } | null }, name: string): unknown[] {
  const c = batch.getChild(name);
  if (!c) throw new Error(`no column ${name}`);
  return [...(c as unknown as Iterable<unknown>)];
}

describe("builders", () => {
  test("predictions: columns, the given calls as labels, indexed strings", () => {
    const windowIds = ["r1_chunk_1", "r1_chunk_2", "r\u00e9_chunk_1"];
    const b = predictionsBatch({
      frameId: ["r1_chunk_1F1", "r1_chunk_2R3", "r\u00e9_chunk_1F2"],
      windowId: { values: windowIds, index: new Int32Array([0, 1, 2]) },
      sequenceId: { values: encodeUtf8(["r1", "r\u00e9"]), index: new Int32Array([0, 0, 1]) },
      windowIndex: new Int32Array([1, 2, 1]),
      windowStart: new Float64Array([0, 299, 0]),
      windowEnd: [500, 600, 2 ** 40],
      frame: ["F1", "R3", "F2"],
      proteinLength: new Int32Array([166, 100, 5]),
      scoreOthers: new Float32Array([0.25, 0.5, 0.9]),
      scoreVirus: new Float32Array([0.75, 0.5, 0.1]),
      isVirus: new Uint8Array([1, 0, 0]),
    });
    expect(util.compareSchemas(b.schema, predictionsSchema)).toBe(true);
    expect(b.schema.fields.find((f) => f.name === "frame_id")!.nullable).toBe(false);
    expect(b.numRows).toBe(3);
    expect(column(b, "frame_id")).toEqual(["r1_chunk_1F1", "r1_chunk_2R3", "r\u00e9_chunk_1F2"]);
    expect(column(b, "window_id")).toEqual(windowIds);
    expect(column(b, "sequence_id")).toEqual(["r1", "r1", "r\u00e9"]);
    expect(column(b, "window_start")).toEqual([0n, 299n, 0n]);
    expect(column(b, "window_end")).toEqual([500n, 600n, 2n ** 40n]);
    expect(column(b, "frame")).toEqual(["F1", "R3", "F2"]);
    expect(column(b, "prediction")).toEqual(["virus", "others", "others"]);
    expect(column(b, "score_virus")).toEqual([0.75, 0.5, Math.fround(0.1)]);
    // frame codes give the same column as names
    const b2 = predictionsBatch({
      frameId: ["a", "b"],
      windowId: ["a", "b"],
      sequenceId: ["a", "b"],
      windowIndex: new Int32Array([1, 1]),
      windowStart: new BigInt64Array([0n, 0n]),
      windowEnd: new BigInt64Array([1n, 1n]),
      frame: new Uint8Array([5, 3]),
      proteinLength: new Int32Array([1, 1]),
      scoreOthers: new Float32Array([0, 0]),
      scoreVirus: new Float32Array([1, 1]),
      isVirus: new Uint8Array([1, 1]),
    });
    expect(column(b2, "frame")).toEqual(["R3", "R1"]);
  });

  test("predictions: mismatched lengths and bad frames are rejected", () => {
    const base = {
      frameId: ["a"],
      windowId: ["a"],
      sequenceId: ["a"],
      windowIndex: new Int32Array([1]),
      windowStart: [0],
      windowEnd: [1],
      frame: ["F1"],
      proteinLength: new Int32Array([1]),
      scoreOthers: new Float32Array([0.5]),
      scoreVirus: new Float32Array([0.5]),
      isVirus: new Uint8Array([0]),
    };
    expect(() => predictionsBatch({ ...base, frameId: ["a", "b"] })).toThrow(/frame_id/);
    expect(() => predictionsBatch({ ...base, frame: ["X9"] })).toThrow(/frame name/);
    expect(() => predictionsBatch({ ...base, windowStart: [0.5] })).toThrow(/whole number/);
    expect(() => predictionsBatch({ ...base, isVirus: new Uint8Array(0) })).toThrow(/prediction/);
  });

  test("windows: nulls where no frame was kept, is_virus as given", () => {
    const b = windowsBatch({
      windowId: ["w1", "w2", "w3", "w4"],
      sequenceId: ["s", "s", "s", "t"],
      windowIndex: new Int32Array([1, 2, 3, 1]),
      windowStart: [0, 500, 1000, 0],
      windowEnd: [500, 1000, 1100, 10],
      nFrames: new Int32Array([2, 0, 1, 3]),
      maxScoreOthers: new Float32Array([0.6, NaN, 0.5, 0.9]),
      maxScoreVirus: new Float32Array([0.4, NaN, 0.5, 0.95]),
      isVirus: new Int8Array([0, -1, 1, 1]),
    });
    expect(util.compareSchemas(b.schema, windowsSchema)).toBe(true);
    expect(column(b, "is_virus")).toEqual([false, null, true, true]);
    expect(column(b, "max_score_others")).toEqual([Math.fround(0.6), null, 0.5, Math.fround(0.9)]);
    expect(column(b, "max_score_virus")).toEqual([Math.fround(0.4), null, 0.5, Math.fround(0.95)]);
    expect(b.getChild("is_virus")!.nullCount).toBe(1);
    const bad = { windowId: ["w"], sequenceId: ["s"], windowIndex: new Int32Array([1]), windowStart: [0], windowEnd: [1], maxScoreOthers: new Float32Array([0.5]), maxScoreVirus: new Float32Array([0.5]) };
    expect(() => windowsBatch({ ...bad, nFrames: new Int32Array([0]), isVirus: new Int8Array([1]) })).toThrow(/is_virus 1 at row 0 with 0 frames/);
  });

  test("sequences: call is virus / others / null", () => {
    const b = sequencesBatch({
      sequenceId: ["a", "b", "c"],
      length: [1000, 150, 20],
      nWindows: new Int32Array([2, 1, 1]),
      nViralWindows: new Int32Array([1, 0, 0]),
      maxScoreVirus: new Float32Array([0.9, 0.1, NaN]),
      call: new Int8Array([1, 0, -1]),
    });
    expect(column(b, "call")).toEqual(["virus", "others", null]);
    expect(column(b, "max_score_virus")).toEqual([Math.fround(0.9), Math.fround(0.1), null]);
    expect(column(b, "length")).toEqual([1000n, 150n, 20n]);
  });

  test("embeddings are FixedSizeList views over the given buffers (no copy)", () => {
    const n = 3;
    const dn = new Float32Array(n * 768).map((_, i) => i);
    const esm = new Float32Array(n * 2560).map((_, i) => -i);
    const b = embeddingsBatch({ frameId: ["x", "y", "z"], dnabert: dn, esm });
    const d = b.getChild("dnabert")!;
    expect(d.type.typeId).toBe(Type.FixedSizeList);
    expect((d.type as { listSize: number }).listSize).toBe(768);
    expect(b.getChild("esm")!.type.toString()).toContain("2560");
    const child = d.data[0].children[0];
    expect(child.values.buffer).toBe(dn.buffer);
    expect(child.values.byteOffset).toBe(dn.byteOffset);
    expect([...(d.get(1) as unknown as Iterable<number>)][5]).toBe(768 + 5);
    // float16 embeddings from Uint16 bits; other widths (e.g. a small ESM-2)
    const h = embeddingsBatch({ frameId: ["x"], dnabert: toFloat16Bits(new Float32Array(8).fill(1.5)), esm: new Uint16Array(320) });
    expect(h.getChild("dnabert")!.type.toString()).toContain("Float16");
    expect((h.getChild("esm")!.type as { listSize: number }).listSize).toBe(320);
    expect(() => embeddingsBatch({ frameId: ["x", "y"], dnabert: new Float32Array(767), esm: new Float32Array(2) })).toThrow(/dnabert/);
    // zero rows keep the default widths
    const e = embeddingsBatch({ frameId: [], dnabert: new Float32Array(0), esm: new Float32Array(0) });
    expect((e.getChild("esm")!.type as { listSize: number }).listSize).toBe(2560);
  });

  test("emptyBatch has every column and no rows", () => {
    const b = emptyBatch(windowsSchema);
    expect(b.numRows).toBe(0);
    expect(b.schema.fields.map((f) => f.name)).toEqual(windowsSchema.fields.map((f) => f.name));
  });
});

describe("conversions", () => {
  test("toBigInt64 writes exact 64-bit values", () => {
    const xs = [0, 1, -1, 2 ** 32, -(2 ** 32) - 1, 2 ** 53 - 1, -(2 ** 53) + 1, 123456789012];
    expect([...toBigInt64(xs)]).toEqual(xs.map((x) => BigInt(x)));
  });

  test("toFloat16Bits rounds to nearest even", () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [65520, 0x7c00], // rounds up to infinity
      [Infinity, 0x7c00],
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // halfway to zero: even
      [3 * 2 ** -25, 0x0002], // 1.5 subnormal steps: even -> 2
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and next: even (1)
      [1 + 3 * 2 ** -11, 0x3c02],
      [0.1, 0x2e66],
    ];
    const got = toFloat16Bits(new Float32Array(cases.map((c) => c[0])));
    expect([...got]).toEqual(cases.map((c) => c[1]));
    expect(toFloat16Bits(new Float32Array([NaN]))[0] & 0x7c00).toBe(0x7c00);
  });
});
