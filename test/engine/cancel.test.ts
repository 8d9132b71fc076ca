/**
 * vn_engine_cancel on the backend under test (VIRNUC_TEST_BACKEND, CPU by default; the device
 * scripts run it with `cuda`): work queued before the cancel either completes with the same bits as
 * an uncancelled run or fails with CancelledError, never anything else; later submissions throw
 * CancelledError; the engine still closes cleanly. On the CUDA engine (asynchronous queue) a cancel
 * right after a burst of submissions must find queued work to drop.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { CancelledError, Engine, type EncoderHandle, type HostBuffer, type Ticket } from "../../src/engine/engine.ts";
import { packBatch, protein, rng, tinyEsm } from "./tiny.ts";

setDefaultTimeout(120_000);

const backend = (process.env.VIRNUC_TEST_BACKEND ?? "cpu") as "cpu" | "cuda";
const precision = backend === "cuda" ? "fp16" : "fp32";
// Big enough on the GPU that a burst of batches is still queued when the cancel arrives.
const model =
  backend === "cuda"
    ? tinyEsm(11, { nLayers: 8, hidden: 512, nHeads: 8, intermediate: 2048 })
    : tinyEsm(11, { nLayers: 2, hidden: 64, nHeads: 4, intermediate: 128 });
const BATCHES = backend === "cuda" ? 48 : 6;
const SEQS = backend === "cuda" ? 96 : 8;

interface Batch {
  tokens: HostBuffer;
  cu: HostBuffer;
  out: HostBuffer;
  n: number;
}

function makeBatches(e: Engine, h: EncoderHandle): Batch[] {
  const next = rng(3);
  return Array.from({ length: BATCHES }, (_, b) => ({
    ...packBatch(e, h, Array.from({ length: SEQS }, (_, i) => protein(next, 20 + ((b * 13 + i * 7) % 140)))),
    n: SEQS,
  }));
}

describe(`vn_engine_cancel (${backend})`, () => {
  test("queued work completes bit-identically or as cancelled; later submissions throw", () => {
    // Reference: the same batches on an engine that is never cancelled.
    const refEngine = Engine.create(backend, { threads: 2 });
    const refHandle = refEngine.loadEncoder(model.config, model.tensors, precision);
    const refBatches = makeBatches(refEngine, refHandle);
    for (const b of refBatches) refHandle.submitEmbed(b.tokens, b.cu, b.n, b.out).wait();
    const want = refBatches.map((b) => Float32Array.from(b.out.f32()));
    refEngine.close();

    const e = Engine.create(backend, { threads: 2 });
    try {
      const h = e.loadEncoder(model.config, model.tensors, precision);
      const batches = makeBatches(e, h);
      const tickets: Ticket[] = [];
      // CPU: submissions run synchronously, so cancel half-way; CUDA: cancel after the burst.
      const cancelAt = backend === "cpu" ? BATCHES / 2 : BATCHES;
      for (let i = 0; i < cancelAt; i++) {
        const b = batches[i];
        tickets.push(h.submitEmbed(b.tokens, b.cu, b.n, b.out));
      }
      e.cancel();
      let done = 0;
      let cancelled = 0;
      tickets.forEach((t, i) => {
        try {
          t.wait();
          expect(Array.from(batches[i].out.f32())).toEqual(Array.from(want[i]));
          done++;
        } catch (err) {
          expect(err).toBeInstanceOf(CancelledError);
          cancelled++;
        }
      });
      expect(done + cancelled).toBe(cancelAt);
      if (backend === "cpu") expect(done).toBe(cancelAt);
      else expect(cancelled).toBeGreaterThan(0);
      const b = batches[BATCHES - 1];
      expect(() => h.submitEmbed(b.tokens, b.cu, b.n, b.out).wait()).toThrow(CancelledError);
    } finally {
      e.close();
    }
  });
});
