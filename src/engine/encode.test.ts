// Chain step PreparedPart -> EncodedPart, and cancelling an engine between batches.
import { afterAll, describe, expect, test } from "bun:test";
import { CancelledError, Engine } from "./engine.ts";
import { EncoderRunner, PartEncoder } from "./encode.ts";
import { dnaTokens, protein, rng, tinyDnabert, tinyEsm } from "../../test/engine/tiny.ts";
import type { PreparedPart } from "../run/chain.ts";

const engine = Engine.create("cpu", { threads: 1 });
afterAll(() => engine.close());
const esmModel = tinyEsm(1);
const dnaModel = tinyDnabert(2);

function part(n: number, seed = 5): PreparedPart {
  const next = rng(seed);
  const frameIds = Array.from({ length: n }, (_, i) => `r${i}_chunk_1F1`);
  return {
    records: { index: 0, firstRecord: 0, recordIndex: [], ids: [], lengths: [], inputHash: "0" },
    windowIds: [],
    windowRecord: new Int32Array(0),
    windowK: new Int32Array(0),
    windowStart: new Float64Array(0),
    windowEnd: new Float64Array(0),
    frameIds,
    frameWindow: new Int32Array(n),
    frameNames: frameIds.map(() => "F1"),
    proteinLength: new Int32Array(n),
    esmTokens: frameIds.map((_, i) => Int32Array.from(protein(next, 5 + ((i * 7) % 30)))),
    dnabertTokens: frameIds.map((_, i) => Int32Array.from(dnaTokens(next, 3 + ((i * 5) % 20), dnaModel.config.vocab))),
    seconds: 0,
    longProteins: 0,
  };
}

describe("PartEncoder", () => {
  test("embeddings in frame order, whatever the packing", async () => {
    const esm = engine.loadEncoder(esmModel.config, esmModel.tensors, "fp32");
    const dna = engine.loadEncoder(dnaModel.config, dnaModel.tensors, "fp32");
    const spec = (budget: number) => ({
      esm: { handle: esm, label: "ESM-2", source: "esm", budget },
      dnabert: { handle: dna, label: "DNABERT-S", source: "dnabert", budget },
    });
    const p = part(40);
    const big = new PartEncoder(engine, spec(4096));
    const small = new PartEncoder(engine, spec(64));
    const a = big.collect(await big.submit(p));
    const b = small.collect(await small.submit(p));
    expect(a.esm.length).toBe(40 * esm.outputDim);
    expect(a.dnabert.length).toBe(40 * dna.outputDim);
    expect(b.stats.esm.batches).toBeGreaterThan(a.stats.esm.batches);
    for (let i = 0; i < a.esm.length; i++) expect(Math.abs(a.esm[i] - b.esm[i])).toBeLessThan(1e-4);
    // the same rows as one encoder run by itself
    const alone = new EncoderRunner(engine, esm, 4096, "ESM-2").submit(p.esmTokens, String).finish();
    expect(Array.from(alone)).toEqual(Array.from(a.esm));
    big.close();
    small.close();
  });

  test("NaN/Inf in an embedding is an error naming the frame and the model", async () => {
    const bad = new Map(dnaModel.tensors);
    const t = bad.get("embeddings.word_embeddings.weight")!;
    const v = new Float32Array(t.shape[0] * t.shape[1]).fill(0.01);
    v.fill(Number.NaN, 0, v.length); // every token embeds to NaN
    bad.set("embeddings.word_embeddings.weight", { dtype: "f32", shape: t.shape, data: new Uint8Array(v.buffer) });
    const dna = engine.loadEncoder(dnaModel.config, bad, "fp32");
    const esm = engine.loadEncoder(esmModel.config, esmModel.tensors, "fp32");
    const enc = new PartEncoder(engine, {
      esm: { handle: esm, label: "ESM-2", source: "/m/esm", budget: 4096 },
      dnabert: { handle: dna, label: "DNABERT-S", source: "/m/dnabert-s", budget: 4096 },
    });
    const f = await enc.submit(part(3));
    expect(() => enc.collect(f)).toThrow(/^DNABERT-S \(\/m\/dnabert-s\) produced NaN\/Inf for frame r[0-2]_chunk_1F1: check the model weights/);
    enc.close();
  });

  test("a cancel between batches: the next submission throws CancelledError, later ones too", async () => {
    const e = Engine.create("cpu", { threads: 1 });
    try {
      const esm = e.loadEncoder(esmModel.config, esmModel.tensors, "fp32");
      const runner = new EncoderRunner(e, esm, 64, "ESM-2");
      const seqs = part(30).esmTokens;
      // Runs at the first pause between batches, as a signal handler would.
      setImmediate(() => e.cancel());
      let err: unknown = null;
      try {
        await runner.submitYielding(seqs, String);
      } catch (x) {
        err = x;
      }
      expect(err).toBeInstanceOf(CancelledError);
      expect(e.cancelled).toBe(true);
      expect(() => runner.submit(seqs.slice(0, 1), String)).toThrow(CancelledError);
      runner.close();
    } finally {
      e.close();
    }
  });
});
