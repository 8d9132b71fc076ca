/**
 * Golden tests: libvirnuc against the references computed by the real implementations
 * (transformers EsmModel, the PyTorch DNABERT-S reference, the pickled VirNucPro-style
 * classifier; scripts/golden/make_golden.py, float64). CPU backend by default; on a GPU machine
 * VIRNUC_TEST_BACKEND=cuda runs the same checks on the CUDA backend (FP16 tolerances).
 */
import { describe, expect, test, afterAll, setDefaultTimeout } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readSafetensors } from "../src/models/safetensors.ts";
import { loadEsm } from "../src/models/esm.ts";
import { loadDnabert } from "../src/models/dnabert.ts";
import { loadClassifier } from "../src/models/classifier.ts";
import { EsmTokenizer } from "../src/tokenize/esm.ts";
import { BpeTokenizer } from "../src/tokenize/bpe.ts";
import { Engine } from "../src/engine/engine.ts";
import { EncoderRunner } from "../src/engine/encode.ts";
import { REFERENCE, ROOT, runCli, removeTempDirs, tempDir } from "./helpers.ts";

// subprocesses and heavy checks on a busy machine take longer than the 5 s default (bunfig has no such key)
setDefaultTimeout(120_000);

afterAll(removeTempDirs);

const G = join(ROOT, "test/fixtures/golden");
const backend = (process.env.VIRNUC_TEST_BACKEND ?? "cpu") as "cpu" | "cuda";
const fp16 = backend === "cuda";
const tol = fp16 ? { maxAbs: 5e-2, minCos: 0.9995, prob: 5e-3 } : { maxAbs: 1e-4, minCos: 0.99999, prob: 1e-5 };

const ref = JSON.parse(readFileSync(join(G, "reference.json"), "utf8")) as {
  cases: { id: string; protein: string; nucleotide: string }[];
  tokenizer_cases: string[];
};
const T = readSafetensors(join(G, "reference.safetensors")).tensors;
const f32 = (name: string) => {
  const t = T.get(name)!;
  return new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
};
const i32 = (name: string) => {
  const t = T.get(name)!;
  return new Int32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
};
const ragged = (ids: string, offs: string) => {
  const a = i32(ids);
  const o = i32(offs);
  return Array.from({ length: o.length - 1 }, (_, i) => a.subarray(o[i], o[i + 1]));
};
const N = ref.cases.length;

function compare(got: Float32Array, want: Float32Array, dim: number) {
  let maxAbs = 0;
  let minCos = 1;
  for (let i = 0; i < want.length / dim; i++) {
    let dot = 0, na = 0, nb = 0;
    for (let j = i * dim; j < (i + 1) * dim; j++) {
      const a = got[j], b = want[j];
      maxAbs = Math.max(maxAbs, Math.abs(a - b));
      dot += a * b;
      na += a * a;
      nb += b * b;
      expect(Number.isFinite(a)).toBe(true);
    }
    minCos = Math.min(minCos, dot / Math.sqrt(na * nb));
  }
  return { maxAbs, minCos };
}

describe(`golden (${backend})`, () => {
  const tok = BpeTokenizer.fromFile(join(REFERENCE, "dnabert-s/tokenizer.json"));
  const esmTok = EsmTokenizer.default();

  test("tokenizers reproduce the reference token ids", () => {
    const esmIds = ragged("esm_ids", "esm_offsets");
    const dnaIds = ragged("dnabert_ids", "dnabert_offsets");
    for (let i = 0; i < N; i++) {
      expect(Array.from(esmTok.encode(ref.cases[i].protein))).toEqual(Array.from(esmIds[i]));
      expect(Array.from(tok.encode(ref.cases[i].nucleotide))).toEqual(Array.from(dnaIds[i]));
    }
    const tk = ragged("tok_ids", "tok_offsets");
    ref.tokenizer_cases.forEach((s, i) => expect(Array.from(tok.encode(s))).toEqual(Array.from(tk[i])));
  });

  const engine = Engine.create(backend, {});
  const precision = fp16 ? "fp16" : "fp32";
  const embed = (model: ReturnType<typeof loadEsm>, seqs: Int32Array[], budget: number) => {
    const h = engine.loadEncoder(model.config, model.tensors, precision);
    const r = new EncoderRunner(engine, h, budget, "test");
    const out = r.submit(seqs, (i) => ref.cases[i]?.id ?? String(i)).finish();
    r.close();
    h.close();
    return out;
  };

  for (const variant of ["esm", "esm-fair.pt", "esm-sharded"]) {
    test(`ESM-2 (${variant}) matches transformers EsmModel`, () => {
      const m = loadEsm(join(G, variant));
      const seqs = ragged("esm_ids", "esm_offsets");
      const got = embed(m, seqs, 512);
      const c = compare(got, f32("esm"), m.config.hidden);
      // the sharded copy holds fp16-rounded weights: looser there
      if (variant === "esm-sharded") expect(c.minCos).toBeGreaterThan(0.999);
      else {
        expect(c.maxAbs).toBeLessThanOrEqual(tol.maxAbs);
        expect(c.minCos).toBeGreaterThanOrEqual(tol.minCos);
      }
    });
  }

  test("DNABERT-S matches the PyTorch reference", () => {
    const m = loadDnabert(join(G, "dnabert"));
    const got = embed(m, ragged("dnabert_ids", "dnabert_offsets"), 700);
    const c = compare(got, f32("dnabert"), m.config.hidden);
    expect(c.maxAbs).toBeLessThanOrEqual(tol.maxAbs);
    expect(c.minCos).toBeGreaterThanOrEqual(tol.minCos);
  });

  test("an embedding does not depend on the batch or the budget (bit for bit)", () => {
    const m = loadEsm(join(G, "esm"));
    const seqs = ragged("esm_ids", "esm_offsets");
    const a = embed(m, seqs, 256);
    const b = embed(m, [...seqs].reverse(), 4096);
    const dim = m.config.hidden;
    for (let i = 0; i < N; i++) {
      const j = N - 1 - i;
      expect(Buffer.from(a.buffer, i * dim * 4, dim * 4).equals(Buffer.from(b.buffer, j * dim * 4, dim * 4))).toBe(true);
    }
  });

  test("the VirNucPro-style classifier gives the reference probabilities and calls", () => {
    const m = loadClassifier(join(G, "classifier.pth"));
    const h = engine.loadClassifier(m.config, m.tensors);
    const feats = f32("features");
    const fb = engine.alloc(feats.byteLength);
    fb.f32().set(feats);
    const out = engine.alloc(N * 2 * 4);
    h.submitClassify(fb, N, out).wait();
    const got = out.f32().slice(0, N * 2);
    const want = f32("probs");
    for (let i = 0; i < N; i++) {
      expect(Math.abs(got[2 * i] - want[2 * i])).toBeLessThanOrEqual(tol.prob);
      expect(got[2 * i + 1] > got[2 * i]).toBe(want[2 * i + 1] > want[2 * i]);
    }
    fb.free();
    out.free();
    h.close();
  });

  test("predict on the golden models: the compat scores are the reference probabilities", () => {
    // The DNABERT-S fixture directory has no tokenizer.json; give the real one with --tokenizer.
    const out = tempDir("golden-predict");
    const r = runCli([
      "predict", join(REFERENCE, "virnucpro/test_with_orfs.fa"), "-o", out, "--chunk-size", "500",
      "--esm", join(G, "esm"), "--dnabert", join(G, "dnabert"), "--tokenizer", join(REFERENCE, "dnabert-s/tokenizer.json"),
      "--classifier", join(G, "classifier.pth"), "--device", backend, "--no-progress",
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const want = f32("probs");
    const rows = readFileSync(join(out, "prediction_results.txt"), "utf8").trimEnd().split("\n").slice(1);
    expect(rows.length).toBe(4);
    rows.forEach((row, i) => {
      const [id, label, s1, s2] = row.split("\t");
      expect(id).toBe(ref.cases[i].id);
      expect(Math.abs(Number(s1) - want[2 * i])).toBeLessThanOrEqual(tol.prob * 2);
      expect(Math.abs(Number(s2) - want[2 * i + 1])).toBeLessThanOrEqual(tol.prob * 2);
      expect(label).toBe(want[2 * i + 1] > want[2 * i] ? "virus" : "others");
    });
  });
});
