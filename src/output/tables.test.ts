// Chain step ClassifiedPart -> PartTables: the part's Arrow IPC files carry the calls as given.
import { describe, expect, test } from "bun:test";
import { tableFromIPC } from "apache-arrow";
import { partTables } from "./tables.ts";
import { frameCalls, sequenceCalls, windowCalls } from "../classify/calls.ts";
import type { ClassifiedPart, EncodedPart } from "../run/chain.ts";

function classified(withCalls: boolean): ClassifiedPart {
  const prepared = {
    records: { index: 4, firstRecord: 80, recordIndex: [80, 81], ids: ["a", "b"], lengths: [600, 100], inputHash: "00ff" },
    windowIds: ["a_chunk_1", "a_chunk_2", "b_chunk_1"],
    windowRecord: new Int32Array([0, 0, 1]),
    windowK: new Int32Array([1, 2, 1]),
    windowStart: new Float64Array([0, 299, 0]),
    windowEnd: new Float64Array([500, 600, 100]),
    frameIds: ["a_chunk_1F1", "a_chunk_1R2", "a_chunk_2F3"],
    frameWindow: new Int32Array([0, 0, 1]),
    frameNames: ["F1", "R2", "F3"] as ("F1" | "R2" | "F3")[],
    proteinLength: new Int32Array([166, 160, 99]),
    esmTokens: [],
    dnabertTokens: [],
    seconds: 0,
    longProteins: 0,
  };
  const encoded: EncodedPart = {
    prepared,
    dnabert: new Float32Array(3 * 2).fill(0.5),
    esm: new Float32Array(3 * 3).fill(-0.25),
    dnabertDim: 2,
    esmDim: 3,
    stats: { esm: { sequences: 3, tokens: 0, batches: 0, efficiency: 1, budget: 1, capacity: 1 }, dnabert: { sequences: 3, tokens: 0, batches: 0, efficiency: 1, budget: 1, capacity: 1 }, deviceSeconds: 0, hostWaitSeconds: 0 },
  };
  if (!withCalls) return { encoded, calls: null };
  const frames = frameCalls(new Float32Array([0.2, 0.8, 0.7, 0.3, 0.5, 0.5]));
  const windows = windowCalls(3, prepared.frameWindow, frames);
  return { encoded, calls: { frames, windows, sequences: sequenceCalls(2, prepared.windowRecord, windows) } };
}

const rows = (data: Uint8Array) => tableFromIPC(data).toArray().map((r) => r.toJSON());

describe("partTables", () => {
  test("predictions, windows and sequences with the calls of classify/calls.ts", () => {
    const t = partTables(classified(true), { embeddingsDtype: "float32", keepEmbeddings: false });
    expect(t.head).toEqual({ part: 4, firstRecord: 80, records: 2, windows: 3, frames: 3, inputHash: "00ff" });
    expect(t.files.map((f) => f.suffix)).toEqual(["predictions.arrow", "windows.arrow", "sequences.arrow"]);
    const pred = rows(t.files[0].data);
    expect(pred.map((r) => r.prediction)).toEqual(["virus", "others", "others"]);
    expect(pred.map((r) => r.window_id)).toEqual(["a_chunk_1", "a_chunk_1", "a_chunk_2"]);
    expect(pred.map((r) => Number(r.window_start))).toEqual([0, 0, 299]);
    const win = rows(t.files[1].data);
    expect(win.map((r) => r.is_virus)).toEqual([true, true, null]);
    const seq = rows(t.files[2].data);
    expect(seq.map((r) => r.call)).toEqual(["virus", null]);
    expect(seq.map((r) => r.n_viral_windows)).toEqual([2, 0]);
  });

  test("embedding only (embed): the frames table and the embeddings, in the chosen dtype, keyed by record_index", () => {
    const t = partTables(classified(false), { embeddingsDtype: "float16", keepEmbeddings: true });
    expect(t.files.map((f) => f.suffix)).toEqual(["frames.arrow", "embeddings.arrow"]);
    const frames = tableFromIPC(t.files[0].data);
    expect(frames.numRows).toBe(3);
    expect(Array.from(frames.getChild("record_index")!.toArray() as BigInt64Array, Number)).toEqual([80, 80, 80]);
    const table = tableFromIPC(t.files[1].data);
    expect(table.numRows).toBe(3);
    expect(table.schema.fields.map((f) => f.name)).toEqual(["frame_id", "record_index", "dnabert", "esm"]);
    expect(String(table.schema.fields[2].type)).toContain("Float16");
  });
});
