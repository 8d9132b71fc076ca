/**
 * GEMM algorithm trials must not change results: embeds VirNucPro-shaped frames with the random
 * ESM-2 3B and DNABERT-S and prints one sha256 per model of the pooled embeddings. Run it with
 * VIRNUC_GEMM_TUNE=0 and =1 and compare the lines (scripts/device/lean-fp8.sh, stage `tune`).
 *
 *   bun scripts/device/tune-bits.ts [--precision fp16|fp8] [--outliers] [--tokenizer FILE] [--per-length 200]
 */
import { parseArgs } from "node:util";
import { createHash } from "node:crypto";
import { join } from "node:path";
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
    "per-length": { type: "string", default: "200" },
    tokenizer: { type: "string" },
    precision: { type: "string", default: "fp16" },
    outliers: { type: "boolean", default: false },
    "work-dir": { type: "string", default: join(tmpdir(), "virnuc-bench") },
  },
});
const models = await ensureRandomModels(o["work-dir"]!, o.tokenizer, { outliers: o.outliers });
const tok = {
  esm: EsmTokenizer.default(),
  dnabert: BpeTokenizer.fromFile(o.tokenizer ?? join(models.dna, "tokenizer.json")),
};
const esmSeqs: Int32Array[] = [];
const dnaSeqs: Int32Array[] = [];
for (const L of [150, 300, 500]) {
  const wl = makeWorkload(Number(o["per-length"]), L, 7 + L, tok);
  esmSeqs.push(...wl.esm);
  dnaSeqs.push(...wl.dnabert);
}
const engine = Engine.create("cuda", {});
for (const [name, model, seqs] of [
  ["esm2-3B", loadEsm(models.esm), esmSeqs],
  ["dnabert-s", loadDnabert(models.dna), dnaSeqs],
] as const) {
  const prec = model.config.arch === "esm2" ? (o.precision as "fp16" | "fp8") : "fp16";
  const h = engine.loadEncoder(model.config, model.tensors, prec);
  const r = new EncoderRunner(engine, h, 65536, "check");
  const emb = r.submit(seqs, (i) => `seq ${i}`).finish();
  r.close();
  h.close();
  const sha = createHash("sha256").update(new Uint8Array(emb.buffer, emb.byteOffset, emb.byteLength)).digest("hex");
  console.log(`${name} ${prec} ${seqs.length} sequences sha256 ${sha}`);
}
engine.close();
