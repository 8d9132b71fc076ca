// A CPU-backend ESM-2 model above the size from which libvirnuc converts weights in the background
// (> 2^24 values), and its embeddings of three proteins: run in-process and in child processes by
// weights_prefetch.test.ts. Run directly, prints the embeddings as JSON.
import { Engine } from "../../src/engine/engine.ts";
import { embed, protein, rng, tinyEsm } from "./tiny.ts";

export const PREFETCH_CFG = { nLayers: 6, hidden: 512, nHeads: 8, intermediate: 2048 };

export function prefetchEmbeddings(): number[] {
  const m = tinyEsm(5, PREFETCH_CFG);
  const e = Engine.create("cpu", { threads: 2 });
  try {
    const h = e.loadEncoder(m.config, m.tensors, "fp32");
    const next = rng(9);
    return [...embed(e, h, [protein(next, 30), protein(next, 7), protein(next, 55)])];
  } finally {
    e.close();
  }
}

if (import.meta.main) process.stdout.write(JSON.stringify(prefetchEmbeddings()));
