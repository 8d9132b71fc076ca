// A CPU-backend ESM-2 model above the size from which libvirnuc converts weights in the background
// (> 2^24 values), and its embeddings of three proteins: run in-process and in child processes by
// weights_prefetch.test.ts. Its FFN width (2000) makes the packing tasks (2 MiB of a packed layer
// each) start inside a panel of the FFN-down layer. Run directly (optional argument: the engine's
// thread count, default 2), prints the embeddings as JSON.
import { Engine } from "../../src/engine/engine.ts";
import { embed, protein, rng, tinyEsm } from "./tiny.ts";

export const PREFETCH_CFG = { nLayers: 6, hidden: 512, nHeads: 8, intermediate: 2000 };

export function prefetchModel() {
  return tinyEsm(5, PREFETCH_CFG);
}

export function prefetchProteins(): number[][] {
  const next = rng(9);
  return [protein(next, 30), protein(next, 7), protein(next, 55)];
}

export function prefetchEmbeddings(threads = 2): number[] {
  const m = prefetchModel();
  const e = Engine.create("cpu", { threads });
  try {
    const h = e.loadEncoder(m.config, m.tensors, "fp32");
    return [...embed(e, h, prefetchProteins())];
  } finally {
    e.close();
  }
}

if (import.meta.main) process.stdout.write(JSON.stringify(prefetchEmbeddings(Number(process.argv[2] ?? 2))));
