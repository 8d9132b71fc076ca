// Loading a model on the CPU backend packs its Linear weights for the GEMM straight from their stored
// dtype on the engine's threads (pack_linear) and converts the other tensors to FP32, on background
// threads ahead of the backend taking them when they are large enough (build_weight_set,
// WeightPrefetch): the weights must come out exactly as converting each tensor on first use does,
// whatever the number of conversion threads and of engine threads.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { PREFETCH_BIG_CFG, PREFETCH_CFG, prefetchEmbeddings, prefetchModel, prefetchProteins } from "./prefetch-model.ts";
import { esm2Embed } from "./reference.ts";
import { cosine, maxAbsDiff } from "./tiny.ts";

function inChild(convertThreads: string, engineThreads = 2, big = false): number[] {
  const args = [process.execPath, join(import.meta.dir, "prefetch-model.ts"), String(engineThreads), ...(big ? ["big"] : [])];
  const p = Bun.spawnSync(args, { env: { ...process.env, VIRNUC_CONVERT_THREADS: convertThreads }, stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`child failed: ${p.stderr.toString()}`);
  return JSON.parse(p.stdout.toString());
}

const prefetched = prefetchEmbeddings();

test("background FP32 conversion gives the same embeddings as converting on first use", () => {
  // 17 M embedding values: converted by the background threads by default, on first use with 0.
  const big = prefetchEmbeddings(2, PREFETCH_BIG_CFG);
  expect(big.length).toBe(3 * PREFETCH_BIG_CFG.hidden);
  expect(big.every(Number.isFinite)).toBe(true);
  expect(big.some((v) => v !== 0)).toBe(true);
  expect(inChild("0", 2, true)).toEqual(big);
}, 120_000);

test("weights packed on 1, 2 or 3 engine threads give the same embeddings, and the right ones", () => {
  expect(prefetched.length).toBe(3 * PREFETCH_CFG.hidden);
  expect(prefetched.every(Number.isFinite)).toBe(true);
  // One engine thread packs every task itself; three split them unevenly (the machine may have fewer cores).
  expect(inChild("", 1)).toEqual(prefetched);
  expect(inChild("0", 3)).toEqual(prefetched);
  expect(inChild("1", 2)).toEqual(prefetched);
  // Against the float64 reference (the 9-token protein): the packed layers hold the right values.
  const m = prefetchModel();
  const H = PREFETCH_CFG.hidden;
  const got = prefetched.slice(H, 2 * H);
  const want = esm2Embed(m.weights, m.config, prefetchProteins()[1]);
  expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(1e-4);
  expect(cosine(got, want)).toBeGreaterThanOrEqual(0.99999);
}, 120_000);
