// CPU-backend ESM-2 models for weights_prefetch.test.ts, and their embeddings of three proteins, run
// in-process and in child processes. PREFETCH_CFG's FFN width (2000) makes the packing tasks (2 MiB
// of a packed layer each) start inside a panel of the FFN-down layer. The Linear weights are packed
// straight from their stored dtype; the other tensors are converted to FP32 by libvirnuc, in the
// background when they add up to more than 2^24 values: PREFETCH_BIG_CFG's 33000-token vocabulary
// (17 M embedding values) is what makes that happen. Run directly (optional arguments: the engine's
// thread count, default 2; "big" for PREFETCH_BIG_CFG), prints the embeddings as JSON.
import { Engine } from "../../src/engine/engine.ts";
import type { EncoderConfig } from "../../src/models/tensor.ts";
import { embed, protein, rng, tinyEsm } from "./tiny.ts";

export const PREFETCH_CFG = { nLayers: 6, hidden: 512, nHeads: 8, intermediate: 2000 };
export const PREFETCH_BIG_CFG = { nLayers: 2, hidden: 512, nHeads: 8, intermediate: 600, vocab: 33000 };

export function prefetchModel(cfg: Partial<EncoderConfig> = PREFETCH_CFG) {
  return tinyEsm(5, cfg);
}

export function prefetchProteins(): number[][] {
  const next = rng(9);
  return [protein(next, 30), protein(next, 7), protein(next, 55)];
}

export function prefetchEmbeddings(threads = 2, cfg: Partial<EncoderConfig> = PREFETCH_CFG): number[] {
  const m = prefetchModel(cfg);
  const e = Engine.create("cpu", { threads });
  try {
    const h = e.loadEncoder(m.config, m.tensors, "fp32");
    return [...embed(e, h, prefetchProteins())];
  } finally {
    e.close();
  }
}

if (import.meta.main) {
  const cfg = process.argv[3] === "big" ? PREFETCH_BIG_CFG : PREFETCH_CFG;
  process.stdout.write(JSON.stringify(prefetchEmbeddings(Number(process.argv[2] ?? 2), cfg)));
}
