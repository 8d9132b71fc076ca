// Packing changes batch compositions, never results: on the CPU backend every sequence's
// embedding is bit-identical whether it is packed by the balanced packer at several budgets or
// computed alone (VirNucPro-shaped sequences from the benchmark workload, golden models).
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Engine } from "../src/engine/engine.ts";
import { EncoderRunner } from "../src/engine/encode.ts";
import { loadEsm } from "../src/models/esm.ts";
import { loadDnabert } from "../src/models/dnabert.ts";
import { EsmTokenizer } from "../src/tokenize/esm.ts";
import { BpeTokenizer } from "../src/tokenize/bpe.ts";
import { makeWorkload } from "../bench/engine.ts";
import { ROOT, REFERENCE } from "./helpers.ts";

const G = join(ROOT, "test/fixtures/golden");
const engine = Engine.create("cpu", { threads: 2 });
afterAll(() => engine.close());

describe("embeddings do not depend on the packing", () => {
  const tok = { esm: EsmTokenizer.default(), dnabert: BpeTokenizer.fromFile(join(REFERENCE, "dnabert-s/tokenizer.json")) };
  const wl = makeWorkload(60, 150, 11, tok);

  for (const [name, model, seqs] of [
    ["ESM-2", loadEsm(join(G, "esm")), wl.esm],
    ["DNABERT-S", loadDnabert(join(G, "dnabert")), wl.dnabert],
  ] as const) {
    test(`${name}: balanced batches at three budgets = each sequence alone, bit for bit`, () => {
      expect(seqs.length).toBeGreaterThan(20);
      const h = engine.loadEncoder(model.config, model.tensors, "fp32");
      const run = (budget: number, maxSeqs: number) => {
        const r = new EncoderRunner(engine, h, budget, name, { maxSeqsPerBatch: maxSeqs });
        const p = r.submit(seqs, (i) => `seq ${i}`);
        const out = p.finish();
        r.close();
        return { out, stats: p.stats };
      };
      const alone = run(4096, 1);
      expect(alone.stats.batches).toBe(seqs.length);
      const total = seqs.reduce((a, s) => a + s.length, 0);
      for (const budget of [Math.ceil(total / 3), Math.ceil(total / 2) + 7, 4 * total]) {
        const r = run(budget, 4096);
        expect(r.stats.batches).toBeGreaterThan(0);
        expect(r.stats.efficiency).toBeGreaterThan(0.9); // 48 short sequences: within one sequence of even
        expect(Buffer.from(r.out.buffer).equals(Buffer.from(alone.out.buffer))).toBe(true);
      }
      h.close();
    });
  }
});
