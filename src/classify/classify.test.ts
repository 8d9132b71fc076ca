// Chain step EncodedPart -> ClassifiedPart on the CPU backend: features, scores, calls, and
// NaN/Inf named by frame and model file.
import { afterAll, describe, expect, test } from "bun:test";
import { Engine } from "../engine/engine.ts";
import { PartClassifier, firstNonFinite } from "./classify.ts";
import { tinyMlp } from "../../test/engine/tiny.ts";
import type { EncodedPart } from "../run/chain.ts";

const engine = Engine.create("cpu", { threads: 1 });
afterAll(() => engine.close());
const D = 6;
const E = 10;

function encoded(n: number, fill: (i: number) => number = (i) => Math.sin(i)): EncodedPart {
  const frameIds = Array.from({ length: n }, (_, i) => `r${i >> 1}_chunk_1${i & 1 ? "R1" : "F1"}`);
  return {
    prepared: {
      records: { index: 0, firstRecord: 0, recordIndex: [0, 1].slice(0, Math.ceil(n / 2)), ids: ["r0", "r1"].slice(0, Math.ceil(n / 2)), lengths: [300, 300], inputHash: "0" },
      windowIds: ["r0_chunk_1", "r1_chunk_1"].slice(0, Math.ceil(n / 2)),
      windowRecord: new Int32Array([0, 1]).subarray(0, Math.ceil(n / 2)),
      windowK: new Int32Array([1, 1]),
      windowStart: new Float64Array([0, 0]),
      windowEnd: new Float64Array([300, 300]),
      frameIds,
      frameWindow: Int32Array.from(frameIds, (_, i) => i >> 1),
      frameNames: frameIds.map((_, i) => (i & 1 ? "R1" : "F1")),
      proteinLength: new Int32Array(n).fill(99),
      esmTokens: [],
      dnabertTokens: [],
      seconds: 0,
      longProteins: 0,
    },
    dnabert: Float32Array.from({ length: n * D }, (_, i) => fill(i)),
    esm: Float32Array.from({ length: n * E }, (_, i) => fill(i + 1000)),
    dnabertDim: D,
    esmDim: E,
    stats: { esm: { sequences: n, tokens: 0, batches: 0, efficiency: 1, budget: 1, capacity: 1 }, dnabert: { sequences: n, tokens: 0, batches: 0, efficiency: 1, budget: 1, capacity: 1 }, deviceSeconds: 0, hostWaitSeconds: 0 },
  };
}

function classifier(tweak?: (t: ReturnType<typeof tinyMlp>) => void) {
  const m = tinyMlp(3, { inFeatures: D + E, hidden: 8 });
  tweak?.(m);
  return engine.loadClassifier(m.config, m.tensors);
}

const sources = { source: "/models/500_model.pth", encoderSources: { dnabert: "/models/dnabert", esm: "/models/esm" } };

describe("PartClassifier", () => {
  test("scores sum to 1 and the calls follow the rule", () => {
    const c = new PartClassifier(engine, { handle: classifier(), ...sources });
    const out = c.submit(encoded(4)).result();
    const f = out.calls!.frames;
    for (let i = 0; i < 4; i++) {
      expect(Math.abs(f.scoreOthers[i] + f.scoreVirus[i] - 1)).toBeLessThan(1e-6);
      expect(f.isVirus[i]).toBe(f.scoreVirus[i] > f.scoreOthers[i] ? 1 : 0);
    }
    expect(out.calls!.windows.nFrames.length).toBe(2);
    expect(out.calls!.sequences.call.length).toBe(2);
  });

  test("embedding only: no calls", () => {
    expect(new PartClassifier(engine, null).submit(encoded(2)).result().calls).toBeNull();
  });

  test("a NaN feature is an error naming the frame and the encoder's model", () => {
    const c = new PartClassifier(engine, { handle: classifier(), ...sources });
    const e = encoded(4);
    e.esm[2 * E + 3] = Number.NaN;
    expect(() => c.submit(e)).toThrow("ESM-2 (/models/esm) produced NaN/Inf for frame r1_chunk_1F1");
    const g = encoded(4);
    g.dnabert[D * 3] = Number.POSITIVE_INFINITY;
    expect(() => c.submit(g)).toThrow("DNABERT-S (/models/dnabert) produced NaN/Inf for frame r1_chunk_1R1");
  });

  test("NaN inside the classifier (the ReLU keeps it, as torch's does) is an error naming the frame and the file", () => {
    const c = new PartClassifier(engine, {
      handle: classifier((m) => {
        // A NaN bias of one hidden unit: a ReLU that turned NaN into 0 would hide it.
        const bias = m.tensors.get("hidden_layer.bias")!;
        const v = new Float32Array(bias.shape[0]).fill(0.1);
        v[5] = Number.NaN;
        m.tensors.set("hidden_layer.bias", { dtype: "f32", shape: bias.shape, data: new Uint8Array(v.buffer) });
      }),
      ...sources,
    });
    expect(() => c.submit(encoded(4)).result()).toThrow("classifier (/models/500_model.pth) produced NaN/Inf scores for frame r0_chunk_1F1");
  });

  test("firstNonFinite", () => {
    expect(firstNonFinite(new Float32Array([1, 2, 3]))).toBe(-1);
    expect(firstNonFinite(new Float32Array([1, Number.NEGATIVE_INFINITY, Number.NaN]))).toBe(1);
  });
});
