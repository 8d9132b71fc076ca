// Loading a model on the CPU backend converts its tensors to FP32 on background threads, ahead of
// the backend taking them (build_weight_set, WeightPrefetch): the weights must come out exactly as
// converting each tensor on first use does, whatever the number of threads.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { PREFETCH_CFG, prefetchEmbeddings } from "./prefetch-model.ts";

function inChild(convertThreads: string): number[] {
  const p = Bun.spawnSync([process.execPath, join(import.meta.dir, "prefetch-model.ts")], {
    env: { ...process.env, VIRNUC_CONVERT_THREADS: convertThreads },
    stderr: "pipe",
  });
  if (p.exitCode !== 0) throw new Error(`child failed: ${p.stderr.toString()}`);
  return JSON.parse(p.stdout.toString());
}

test("background FP32 conversion gives the same embeddings as converting on first use", () => {
  const prefetched = prefetchEmbeddings();
  expect(prefetched.length).toBe(3 * PREFETCH_CFG.hidden);
  expect(prefetched.every(Number.isFinite)).toBe(true);
  expect(prefetched.some((v) => v !== 0)).toBe(true);
  expect(inChild("0")).toEqual(prefetched);
  expect(inChild("1")).toEqual(prefetched);
}, 120_000);
