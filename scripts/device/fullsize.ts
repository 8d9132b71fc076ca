/**
 * Full-size check on the GPU machine: random-weight ESM-2 3B and DNABERT-S at their real
 * configurations, >= 2,000 VirNucPro-shaped sequences (frames of synthetic 150/300/500 bp reads),
 * the CUDA backend (FP16) against Hugging Face EsmModel FP32 and the PyTorch DNABERT-S FP32
 * reference (scripts/device/fullsize_ref.py), plus the reproducibility check: every embedding
 * bit-identical under another batch composition and token budget.
 *
 *   bun scripts/device/fullsize.ts [--per-length 800] [--tokenizer FILE] [--out DIR]
 */
import { parseArgs } from "node:util";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { tmpdir } from "node:os";
import { ensureRandomModels, makeWorkload } from "../../bench/engine.ts";
import { loadEsm } from "../../src/models/esm.ts";
import { loadDnabert } from "../../src/models/dnabert.ts";
import { EsmTokenizer } from "../../src/tokenize/esm.ts";
import { BpeTokenizer } from "../../src/tokenize/bpe.ts";
import { Engine } from "../../src/engine/engine.ts";
import { EncoderRunner } from "../../src/engine/encode.ts";

const { values: o } = parseArgs({
  options: {
    "per-length": { type: "string", default: "800" },
    tokenizer: { type: "string" },
    precision: { type: "string", default: "fp16" },
    outliers: { type: "boolean", default: false },
    "work-dir": { type: "string", default: join(tmpdir(), "virnuc-bench") },
    out: { type: "string", default: join(tmpdir(), "virnuc-fullsize") },
  },
});
const work = resolve(o["work-dir"]!);
const out = resolve(o.out!);
mkdirSync(out, { recursive: true });
const models = await ensureRandomModels(work, o.tokenizer, { outliers: o.outliers });
const esmModel = loadEsm(models.esm);
const dnaModel = loadDnabert(models.dna);
const tok = { esm: EsmTokenizer.default(), dnabert: BpeTokenizer.fromFile(o.tokenizer ?? join(models.dna, "tokenizer.json")) };
const per = Number(o["per-length"]);
const esmSeqs: Int32Array[] = [];
const dnaSeqs: Int32Array[] = [];
const lengthOf: number[] = [];
for (const L of [150, 300, 500]) {
  const wl = makeWorkload(Math.ceil(per * (L === 150 ? 1.4 : 3.6)), L, 100 + L, tok);
  for (let i = 0; i < Math.min(per, wl.esm.length); i++) {
    esmSeqs.push(wl.esm[i]);
    dnaSeqs.push(wl.dnabert[i]);
    lengthOf.push(L);
  }
}
const flat = (seqs: Int32Array[]) => {
  const offs = new Int32Array(seqs.length + 1);
  for (let i = 0; i < seqs.length; i++) offs[i + 1] = offs[i] + seqs[i].length;
  const ids = new Int32Array(offs[seqs.length]);
  seqs.forEach((s, i) => ids.set(s, offs[i]));
  return { ids, offs };
};
const engine = Engine.create("cuda", {});
const prec = o.precision as "fp16" | "fp8";
const run = (model: typeof esmModel, seqs: Int32Array[], budget: number) => {
  // fp8 applies to ESM-2; DNABERT-S stays fp16.
  const h = engine.loadEncoder(model.config, model.tensors, model.config.arch === "esm2" ? prec : "fp16");
  const r = new EncoderRunner(engine, h, budget, "check");
  const a = r.submit(seqs, (i) => `seq ${i}`).finish();
  // Reproducibility: reversed order, another budget.
  const r2 = new EncoderRunner(engine, h, Math.max(1024, budget >> 2), "check");
  const rev = [...seqs].reverse();
  const b = r2.submit(rev, (i) => `seq ${i}`).finish();
  r.close();
  r2.close();
  h.close();
  const dim = model.config.hidden;
  let same = 0;
  for (let i = 0; i < seqs.length; i++) {
    const j = seqs.length - 1 - i;
    if (Buffer.from(a.buffer, i * dim * 4, dim * 4).equals(Buffer.from(b.buffer, j * dim * 4, dim * 4))) same++;
  }
  return { emb: a, bitIdentical: same, total: seqs.length };
};
const t0 = performance.now();
const esm = run(esmModel, esmSeqs, 16384);
const dna = run(dnaModel, dnaSeqs, 65536);
engine.close();
for (const [name, seqs, r] of [["esm", esmSeqs, esm], ["dnabert", dnaSeqs, dna]] as const) {
  const { ids, offs } = flat(seqs as Int32Array[]);
  writeFileSync(join(out, `${name}_ids.bin`), ids);
  writeFileSync(join(out, `${name}_offsets.bin`), offs);
  writeFileSync(join(out, `${name}_emb.bin`), r.emb);
}
const meta = {
  esm: models.esm,
  dnabert: models.dna,
  sequences: esmSeqs.length,
  read_lengths: lengthOf,
  precision: prec,
  outliers: o.outliers,
  reproducible: { esm: `${esm.bitIdentical}/${esm.total}`, dnabert: `${dna.bitIdentical}/${dna.total}` },
  seconds: (performance.now() - t0) / 1000,
};
writeFileSync(join(out, "meta.json"), JSON.stringify(meta, null, 1));
console.log(`fullsize: ${esmSeqs.length} sequences embedded; bit-identical across batches/budgets: ESM ${meta.reproducible.esm}, DNABERT-S ${meta.reproducible.dnabert}`);
const p = Bun.spawnSync(["python3", join(import.meta.dir, "fullsize_ref.py"), "--dir", out], { stdout: "inherit", stderr: "inherit" });
process.exit(p.exitCode ?? 1);
