// The CPU backend's run-time kernel choice (cuda/src/cpu/isa.h): every path this CPU supports,
// forced with VIRNUC_CPU_ISA, against the golden references and against each other; paths the
// CPU lacks and unknown names refused with one clear line. Each path runs in its own process
// (the choice is made once per process).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readSafetensors } from "../../src/models/safetensors.ts";
import { ROOT } from "../helpers.ts";

const PROBE = join(import.meta.dir, "isa-probe.ts");
const G = join(ROOT, "test/fixtures/golden");
const T = readSafetensors(join(G, "reference.safetensors")).tensors;
const N = (JSON.parse(readFileSync(join(G, "reference.json"), "utf8")) as { cases: unknown[] }).cases.length;
const ref = (name: string) => {
  const d = T.get(name)!.data;
  return new Float32Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
};

/** What this CPU supports, from the kernel's view of it (Linux x86-64; elsewhere only portable). */
function cpuFlags(): Set<string> {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("flags"));
    return new Set((line ?? "").split(":")[1]?.trim().split(/\s+/) ?? []);
  } catch {
    return new Set();
  }
}
const flags = cpuFlags();
const x64 = process.arch === "x64";
const SUPPORTED: Record<string, boolean> = {
  avx512: x64 && flags.has("avx512f") && flags.has("avx2") && flags.has("fma"),
  avx2: x64 && flags.has("avx2") && flags.has("fma"),
  portable: true,
};
const LABEL: Record<string, string> = { avx512: "AVX-512", avx2: "AVX2+FMA", portable: "portable" };

interface Probe {
  code: number;
  stderr: string;
  describe?: string;
  esm?: Float32Array;
  dnabert?: Float32Array;
  probs?: Float32Array;
}

function probe(isa: string | undefined): Probe {
  const env: Record<string, string | undefined> = { ...process.env };
  if (isa === undefined) delete env.VIRNUC_CPU_ISA;
  else env.VIRNUC_CPU_ISA = isa;
  const p = Bun.spawnSync([process.execPath, PROBE], { cwd: ROOT, env, stdout: "pipe", stderr: "pipe" });
  const out: Probe = { code: p.exitCode ?? -1, stderr: p.stderr.toString() };
  if (out.code === 0) {
    const j = JSON.parse(p.stdout.toString());
    const f32 = (s: string) => {
      const b = Buffer.from(s, "base64");
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    };
    Object.assign(out, { describe: j.describe, esm: f32(j.esm), dnabert: f32(j.dnabert), probs: f32(j.probs) });
  }
  return out;
}

function maxAbs(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function minCos(a: Float32Array, b: Float32Array, dim: number): number {
  let m = 1;
  for (let r = 0; r < a.length / dim; r++) {
    let dot = 0, na = 0, nb = 0;
    for (let j = r * dim; j < (r + 1) * dim; j++) {
      dot += a[j] * b[j];
      na += a[j] * a[j];
      nb += b[j] * b[j];
    }
    m = Math.min(m, dot / Math.sqrt(na * nb));
  }
  return m;
}

const bits = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));

describe("CPU kernel paths (VIRNUC_CPU_ISA)", () => {
  const runs: Record<string, Probe> = {};
  for (const isa of ["avx512", "avx2", "portable"]) runs[isa] = probe(isa);

  for (const isa of ["avx512", "avx2", "portable"]) {
    test(`${isa}: ${SUPPORTED[isa] ? "matches the golden references" : "refused on this CPU"}`, () => {
      const r = runs[isa];
      if (!SUPPORTED[isa]) {
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain(`VIRNUC_CPU_ISA=${isa}: this CPU does not support ${isa}`);
        expect(r.stderr.trim().split("\n").length).toBe(1);
        return;
      }
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.describe).toContain(LABEL[isa]);
      const esm = ref("esm");
      const dna = ref("dnabert");
      expect(maxAbs(r.esm!, esm)).toBeLessThanOrEqual(1e-4);
      expect(minCos(r.esm!, esm, esm.length / N)).toBeGreaterThanOrEqual(0.99999);
      expect(maxAbs(r.dnabert!, dna)).toBeLessThanOrEqual(1e-4);
      expect(minCos(r.dnabert!, dna, dna.length / N)).toBeGreaterThanOrEqual(0.99999);
      expect(maxAbs(r.probs!, ref("probs"))).toBeLessThanOrEqual(1e-5);
    });
  }

  test("the paths agree: the FMA paths bit for bit, the portable one within 1e-5", () => {
    const have = ["avx512", "avx2", "portable"].filter((i) => SUPPORTED[i]);
    expect(have).toContain("portable");
    const base = runs[have[0]];
    for (const isa of have.slice(1)) {
      const r = runs[isa];
      if (isa !== "portable") {
        expect(bits(r.esm!, base.esm!)).toBe(true);
        expect(bits(r.dnabert!, base.dnabert!)).toBe(true);
        expect(bits(r.probs!, base.probs!)).toBe(true);
      } else {
        expect(maxAbs(r.esm!, base.esm!)).toBeLessThanOrEqual(1e-5);
        expect(maxAbs(r.dnabert!, base.dnabert!)).toBeLessThanOrEqual(1e-5);
        expect(maxAbs(r.probs!, base.probs!)).toBeLessThanOrEqual(1e-6);
      }
    }
  });

  test("unset (and auto): the widest path this CPU supports", () => {
    const best = ["avx512", "avx2", "portable"].find((i) => SUPPORTED[i])!;
    for (const v of [undefined, "auto"]) {
      const r = probe(v);
      expect(r.code).toBe(0);
      expect(r.describe).toContain(LABEL[best]);
      expect(bits(r.esm!, runs[best].esm!)).toBe(true);
    }
  }, 60_000); // two subprocesses

  test("an unknown name is refused with one line naming the choices", () => {
    const r = probe("sse9");
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      "cannot use the cpu backend: VIRNUC_CPU_ISA=sse9: unknown instruction set; use avx512, avx2, portable or auto",
    );
  }, 30_000);
});
