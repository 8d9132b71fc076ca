import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BpeTokenizer } from "../tokenize/bpe.ts";
import { DNA_SPECIALS, randomDnaCorpus, syntheticDnaTokenizer, trainBpe } from "./bpe.ts";
import { loadEsm } from "./esm.ts";
import { defaultRandomDtype, outlierChannels, RANDOM_ARCHS, writeRandomModel } from "./random.ts";
import { readSafetensors } from "./safetensors.ts";
import { tempDir, values } from "./testing.ts";

// subprocesses and heavy checks on a busy machine take longer than the 5 s default (bunfig has no such key)
setDefaultTimeout(120_000);

const tmp = tempDir("random");
afterAll(tmp.remove);

const stats = (v: number[]) => {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  return { mean, sd };
};

describe("writeRandomModel", () => {
  const a = tmp.sub("a");
  const b = tmp.sub("b");
  const c = tmp.sub("c");
  writeRandomModel("tiny-esm", 11, a);
  writeRandomModel("tiny-esm", 11, b);
  writeRandomModel("tiny-esm", 12, c);

  test("the same seed gives the same files; another seed other weights", () => {
    for (const f of ["config.json", "model.safetensors", "vocab.txt"]) {
      expect(readFileSync(join(a, f)).equals(readFileSync(join(b, f)))).toBe(true);
    }
    const wa = values(readSafetensors(join(a, "model.safetensors")).tensors.get("esm.encoder.layer.0.attention.self.query.weight"));
    const wc = values(readSafetensors(join(c, "model.safetensors")).tensors.get("esm.encoder.layer.0.attention.self.query.weight"));
    expect(wa).not.toEqual(wc);
  });

  test("values at a trained net's scale, never all zeros", () => {
    const t = readSafetensors(join(a, "model.safetensors")).tensors;
    const w = stats(values(t.get("esm.encoder.layer.1.intermediate.dense.weight")));
    expect(Math.abs(w.mean)).toBeLessThan(0.001);
    expect(w.sd).toBeGreaterThan(0.018);
    expect(w.sd).toBeLessThan(0.022);
    const ln = stats(values(t.get("esm.encoder.layer.1.LayerNorm.weight")));
    expect(Math.abs(ln.mean - 1)).toBeLessThan(0.02);
    expect(ln.sd).toBeGreaterThan(0.03);
    for (const [name, tensor] of t) {
      const v = values(tensor);
      expect(v.every(Number.isFinite)).toBe(true);
      expect(v.some((x) => x !== 0)).toBe(true);
      if (name.endsWith("bias") && v.length > 1) expect(stats(v).sd).toBeGreaterThan(0.005);
    }
  });

  test("outliers: a few LayerNorm gain channels 20-50x the rest, every layer, ESM-2 only", () => {
    const dir = tmp.sub("outliers");
    writeRandomModel("tiny-esm", 11, dir, { outliers: true });
    const t = readSafetensors(join(dir, "model.safetensors")).tensors;
    const plain = readSafetensors(join(a, "model.safetensors")).tensors;
    const hot = outlierChannels(128);
    expect(new Set(hot).size).toBe(6);
    for (const name of ["esm.encoder.layer.0.attention.LayerNorm.weight", "esm.encoder.layer.2.LayerNorm.weight"]) {
      const v = values(t.get(name));
      for (let c = 0; c < v.length; c++) {
        if (hot.includes(c)) {
          expect(v[c]).toBeGreaterThan(20 * 0.8);
          expect(v[c]).toBeLessThan(50 * 1.2);
        } else {
          expect(Math.abs(v[c] - 1)).toBeLessThan(0.3);
        }
      }
    }
    // Everything else is the plain model's.
    expect(values(t.get("esm.encoder.layer.1.intermediate.dense.weight"))).toEqual(
      values(plain.get("esm.encoder.layer.1.intermediate.dense.weight")),
    );
    expect(values(t.get("esm.encoder.emb_layer_norm_after.weight"))).toEqual(values(plain.get("esm.encoder.emb_layer_norm_after.weight")));
    expect(() => writeRandomModel("tiny-dnabert", 1, tmp.sub("no"), { outliers: true })).toThrow("ESM-2 architectures only");
  });

  test("ESM-2 8M: the Hub config and names", () => {
    const dir = tmp.sub("esm8m");
    writeRandomModel("esm2_t6_8M_UR50D", 1, dir);
    const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    expect(cfg).toMatchObject({
      model_type: "esm", num_hidden_layers: 6, hidden_size: 320, num_attention_heads: 20, intermediate_size: 1280,
      vocab_size: 33, layer_norm_eps: 1e-5, mask_token_id: 32, token_dropout: true, position_embedding_type: "rotary",
    });
    const names = [...readSafetensors(join(dir, "model.safetensors")).tensors.keys()];
    expect(names).toContain("esm.encoder.layer.5.attention.self.rotary_embeddings.inv_freq");
    expect(names).toContain("lm_head.dense.weight");
    const m = loadEsm(dir);
    expect(m.config).toMatchObject({ nLayers: 6, hidden: 320, nHeads: 20, intermediate: 1280 });
    expect(values(m.tensors.get("encoder.layer.0.attention.self.rotary_embeddings.inv_freq")).length).toBe(8);
    expect(readFileSync(join(dir, "vocab.txt"), "utf8").trim().split("\n")).toEqual(
      readFileSync("test/fixtures/reference/esm2/vocab.txt", "utf8").trim().split("\n"),
    );
  });

  test("dtype: f16 on request, default f16 only for ESM-2 3B/15B", () => {
    const dir = tmp.sub("f16");
    writeRandomModel("tiny-dnabert", 2, dir, { dtype: "f16" });
    const t = readSafetensors(join(dir, "model.safetensors")).tensors;
    expect(t.get("encoder.layer.0.mlp.wo.weight")!.dtype).toBe("f16");
    expect(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).torch_dtype).toBe("float16");
    expect(defaultRandomDtype("esm2_t36_3B_UR50D")).toBe("f16");
    expect(defaultRandomDtype("esm2_t48_15B_UR50D")).toBe("f16");
    expect(defaultRandomDtype("esm2_t33_650M_UR50D")).toBe("f32");
    expect(defaultRandomDtype("dnabert-s")).toBe("f32");
  });

  test("every named architecture is known, unknown ones and bad seeds are refused", () => {
    expect(Object.keys(RANDOM_ARCHS)).toEqual([
      "esm2_t6_8M_UR50D", "esm2_t12_35M_UR50D", "esm2_t30_150M_UR50D", "esm2_t33_650M_UR50D", "esm2_t36_3B_UR50D",
      "esm2_t48_15B_UR50D", "dnabert-s", "classifier", "tiny-esm", "tiny-dnabert", "tiny-classifier",
    ]);
    expect(() => writeRandomModel("esm3", 1, tmp.sub("x"))).toThrow(/unknown architecture 'esm3' \(one of: esm2_t6_8M_UR50D, /);
    expect(() => writeRandomModel("tiny-esm", -1, tmp.sub("x"))).toThrow(/seed must be an integer/);
    expect(() => writeRandomModel("tiny-esm", 1.5, tmp.sub("x"))).toThrow(/seed must be an integer/);
  });
});

describe("synthetic DNA tokenizer", () => {
  const real = JSON.parse(readFileSync("test/fixtures/reference/dnabert-s/tokenizer.json", "utf8"));
  const syn = syntheticDnaTokenizer(1) as typeof real;

  test("shaped like DNABERT-S's tokenizer.json", () => {
    expect(Object.keys(syn)).toEqual(Object.keys(real));
    expect(syn.added_tokens).toEqual(real.added_tokens);
    expect(syn.pre_tokenizer).toEqual(real.pre_tokenizer);
    expect(syn.post_processor).toEqual(real.post_processor);
    const { vocab: _v, merges: _m, ...modelRest } = syn.model;
    const { vocab: _rv, merges: _rm, ...realRest } = real.model;
    expect(modelRest).toEqual(realRest);
    const vocab = syn.model.vocab as Record<string, number>;
    expect(Object.keys(vocab).length).toBe(4096);
    expect(Object.entries(vocab).slice(0, 9)).toEqual([...DNA_SPECIALS, "A", "C", "G", "T"].map((t, i) => [t, i]));
    expect(Object.values(vocab)).toEqual(Array.from({ length: 4096 }, (_, i) => i));
  });

  test("every merge joins two older tokens into one in the vocabulary", () => {
    const vocab = syn.model.vocab as Record<string, number>;
    const merges = syn.model.merges as string[];
    expect(merges.length).toBeGreaterThanOrEqual(4087);
    let maxSeen = 8;
    for (const m of merges) {
      const [l, r] = m.split(" ");
      const id = vocab[l + r];
      expect(id).toBeDefined();
      expect(vocab[l]).toBeLessThan(id);
      expect(vocab[r]).toBeLessThan(id);
      maxSeen = Math.max(maxSeen, id);
    }
    expect(maxSeen).toBe(4095);
  });

  test("deterministic per seed, and usable by the BPE tokenizer", () => {
    expect(JSON.stringify(syntheticDnaTokenizer(1))).toBe(JSON.stringify(syn));
    expect(JSON.stringify(trainBpe(randomDnaCorpus(2, 20000), 300).merges)).not.toBe(JSON.stringify(trainBpe(randomDnaCorpus(3, 20000), 300).merges));
    const tok = BpeTokenizer.fromJSON(syn);
    const dna = "ACGTTGCAAGGCTTACGATCGATCGGATTACCAGTACGATCAGGACTTTAGCA";
    const ids = Array.from(tok.encode(dna));
    expect(ids[0]).toBe(1);
    expect(ids[ids.length - 1]).toBe(2);
    expect(ids.length).toBeLessThan(dna.length / 2); // merges do compress DNA
    expect(ids.slice(1, -1).map((i) => tok.idToToken(i)).join("")).toBe(dna);
  });

  test("trainer on a tiny corpus: most frequent pair first, ties to the older pair", () => {
    // AAAA AAAA CA: pair (A,A) is most frequent
    const words = [new Uint8Array([0, 0, 0, 0]), new Uint8Array([0, 0, 0, 0]), new Uint8Array([1, 0])];
    const m = trainBpe(words, 12);
    expect(m.merges[0]).toEqual(["A", "A"]);
    expect(m.merges[1]).toEqual(["AA", "AA"]);
    expect(m.vocab.slice(9)).toEqual(["AA", "AAAA", "CA"]);
  });

  test("--tokenizer copies the given file", () => {
    const dir = tmp.sub("copy-tok");
    writeRandomModel("tiny-dnabert", 1, dir, { tokenizer: "test/fixtures/reference/dnabert-s/tokenizer.json" });
    expect(readFileSync(join(dir, "tokenizer.json")).equals(readFileSync("test/fixtures/reference/dnabert-s/tokenizer.json"))).toBe(true);
    expect(() => writeRandomModel("tiny-dnabert", 1, dir, { tokenizer: join(dir, "nope.json") })).toThrow(/nope\.json: tokenizer file not found/);
  });
});
