// The CPU backend packs Linear weights straight from their stored dtype (fp16/bf16/fp32 rows
// converted inside the packing tasks, no FP32 copy): the packed layers must hold exactly the FP32
// values that converting each tensor first gave, so a model and its FP32 twin (every tensor stored
// as the FP32 values of its bits) embed bit for bit the same, on every kernel path, with subnormal
// and signed-zero weights and tensors at odd addresses.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decode, dnabertCase, embedWith, esmCase, f32Twin, sameBits, type Store } from "./pack-dtype-model.ts";
import { dnabertEmbed, esm2Embed } from "./reference.ts";
import { cosine, maxAbsDiff } from "./tiny.ts";

/** The kernel paths this CPU can run (as cpu_isa.test.ts reads them: the kernel's flags). */
function paths(): string[] {
  let flags = new Set<string>();
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("flags"));
    flags = new Set((line ?? "").split(":")[1]?.trim().split(/\s+/) ?? []);
  } catch {
    // not Linux: the portable path only
  }
  const x64 = process.arch === "x64" && flags.has("avx2") && flags.has("fma");
  return [...(x64 && flags.has("avx512f") ? ["avx512"] : []), ...(x64 ? ["avx2"] : []), "portable"];
}

function child(isa: string, model: string): { same: boolean; n: number; finite: boolean } {
  const p = Bun.spawnSync([process.execPath, join(import.meta.dir, "pack-dtype-model.ts"), model], {
    env: { ...process.env, VIRNUC_CPU_ISA: isa },
    stderr: "pipe",
  });
  if (p.exitCode !== 0) throw new Error(`child (VIRNUC_CPU_ISA=${isa}) failed: ${p.stderr.toString()}`);
  return JSON.parse(p.stdout.toString());
}

describe("Linear weights packed from their stored dtype", () => {
  for (const store of ["f16", "bf16", "mixed"] as Store[]) {
    test(`ESM-2, Linear weights ${store}: bit-identical to the FP32 twin, 1 and 3 threads`, () => {
      const c = esmCase(store);
      const dtypes = new Set([...c.tensors].filter(([n, t]) => n.endsWith("dense.weight")).map(([, t]) => t.dtype));
      expect([...dtypes].sort()).toEqual(store === "mixed" ? ["bf16", "f16", "f32"] : [store]);
      const got = embedWith(c, c.tensors);
      expect(got.length).toBe(3 * c.config.hidden);
      expect(got.every(Number.isFinite)).toBe(true);
      const twin = f32Twin(c.tensors);
      expect(sameBits(got, embedWith(c, twin))).toBe(true);
      expect(sameBits(got, embedWith(c, c.tensors, 1))).toBe(true);
      expect(sameBits(got, embedWith(c, c.tensors, 3))).toBe(true);
    }, 120_000);
  }

  test("ESM-2 and DNABERT-S from fp16/bf16 weights: the right embeddings (float64 reference)", () => {
    for (const [c, ref] of [
      [esmCase("f16"), esm2Embed],
      [dnabertCase("mixed"), dnabertEmbed],
    ] as const) {
      const weights = new Map([...c.tensors].map(([n, t]) => [n, { shape: t.shape, data: Float64Array.from(decode(t)) }]));
      const got = embedWith(c, c.tensors);
      const H = c.config.hidden;
      for (let s = 0; s < c.seqs.length; s++) {
        const want = ref(weights, c.config, c.seqs[s]);
        const row = got.subarray(s * H, (s + 1) * H);
        expect(maxAbsDiff(row, want)).toBeLessThanOrEqual(1e-4);
        expect(cosine(row, want)).toBeGreaterThanOrEqual(0.99999);
      }
    }
  }, 120_000);

  test("DNABERT-S, mixed dtypes: bit-identical to the FP32 twin", () => {
    const c = dnabertCase("mixed");
    expect(sameBits(embedWith(c, c.tensors), embedWith(c, f32Twin(c.tensors)))).toBe(true);
  }, 120_000);

  test("every kernel path this CPU has (AVX-512, AVX2 with F16C, portable) packs the values of the FP32 twin", () => {
    const isas = paths();
    expect(isas).toContain("portable");
    for (const isa of isas) {
      const r = child(isa, "esm");
      expect(r).toEqual({ same: true, n: 3 * 256, finite: true });
    }
    expect(child("portable", "dnabert").same).toBe(true);
  }, 240_000);
});
