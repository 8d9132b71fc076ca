/**
 * The tiny models under test/fixtures/golden were written by torch 2.11 / transformers 5 (see its
 * generation-log.txt): real-world layouts for the loaders, fair-esm pickles and fp16 pickle shards.
 */
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { join } from "node:path";
import { loadClassifier } from "./classifier.ts";
import { loadDnabert } from "./dnabert.ts";
import { toFloat32 } from "./dtype.ts";
import { loadEsm } from "./esm.ts";
import { sameBytes } from "./testing.ts";

// subprocesses and heavy checks on a busy machine take longer than the 5 s default (bunfig has no such key)
setDefaultTimeout(120_000);

const GOLDEN = join(import.meta.dir, "../../test/fixtures/golden");
const TINY_ESM = { arch: "esm2", nLayers: 3, hidden: 128, nHeads: 2, intermediate: 512, vocab: 33, lnEps: 1e-5, maskTokenId: 32, tokenDropout: true, maxPoolPositions: 1024 };

describe("models written by torch and transformers", () => {
  const hf = loadEsm(join(GOLDEN, "esm"));

  test("ESM-2 safetensors directory in the Hub layout", () => {
    expect(hf.config).toEqual(TINY_ESM as never);
    expect(hf.tensors.size).toBe(1 + 3 * 17 + 2);
    const inv = hf.tensors.get("encoder.layer.2.attention.self.rotary_embeddings.inv_freq")!;
    expect(inv.shape).toEqual([32]);
    expect(sameBytes(hf.tensors.get("encoder.layer.0.attention.self.rotary_embeddings.inv_freq"), inv)).toBe(true);
    expect(Array.from(toFloat32(inv)).slice(0, 3)).toEqual([1, 0.75, 0.5625]);
  });

  test("fair-esm .pt holds exactly the same weights", () => {
    const fair = loadEsm(join(GOLDEN, "esm-fair.pt"));
    expect(fair.config).toEqual(hf.config);
    for (const [k, t] of hf.tensors) expect(sameBytes(fair.tensors.get(k), t)).toBe(true);
  });

  test("sharded fp16 pickles hold the same weights rounded to fp16", () => {
    const sharded = loadEsm(join(GOLDEN, "esm-sharded"));
    expect(sharded.config).toEqual(hf.config);
    expect(sharded.files.length).toBe(2);
    for (const [k, t] of hf.tensors) {
      const s = sharded.tensors.get(k)!;
      expect(s.shape).toEqual(t.shape);
      const a = toFloat32(t);
      const b = toFloat32(s);
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(Math.abs(a[i]) * 2 ** -11 + 2 ** -24);
    }
  });

  test("DNABERT-S pytorch_model.bin and the VirNucPro-style classifier pickle", () => {
    expect(loadDnabert(join(GOLDEN, "dnabert")).config).toEqual({
      arch: "dnabert", nLayers: 2, hidden: 128, nHeads: 2, intermediate: 256, vocab: 4096, lnEps: 1e-12,
    });
    expect(loadClassifier(join(GOLDEN, "classifier.pth")).config).toEqual({ inFeatures: 256, hidden: 32, nClasses: 2, bnEps: 1e-5 });
  });
});
