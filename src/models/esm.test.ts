import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { castFloat, fromFloat32, toFloat32 } from "./dtype.ts";
import { loadDnabert } from "./dnabert.ts";
import { esmExpected, esmInvFreq, loadEsm } from "./esm.ts";
import { NewObj, OrderedDict, PyGlobal } from "./pickle.ts";
import { writeRandomModel } from "./random.ts";
import { readCopy, sameBytes, tempDir, values, writeVariant } from "./testing.ts";
import type { HostTensor } from "./tensor.ts";
import { TensorView, writeTorch } from "./torch.ts";

const TESTDATA = join(import.meta.dir, "testdata");
const tmp = tempDir("esm");
afterAll(tmp.remove);

const base = tmp.sub("tiny-esm");
writeRandomModel("tiny-esm", 7, base);
const hub = readCopy(join(base, "model.safetensors"));
const hubConfig = JSON.parse(readFileSync(join(base, "config.json"), "utf8"));
const reference = loadEsm(base);

const TINY = { arch: "esm2", nLayers: 3, hidden: 128, nHeads: 2, intermediate: 512, vocab: 33, lnEps: 1e-5, maskTokenId: 32, tokenDropout: true, maxPoolPositions: 1024 };

/** The fair-esm names for a canonical name. */
function fairName(canonical: string): string {
  return canonical
    .replace("embeddings.word_embeddings.", "embed_tokens.")
    .replace("encoder.emb_layer_norm_after.", "emb_layer_norm_after.")
    .replace(/^encoder\.layer\.(\d+)\.attention\.self\.query\./, "layers.$1.self_attn.q_proj.")
    .replace(/^encoder\.layer\.(\d+)\.attention\.self\.key\./, "layers.$1.self_attn.k_proj.")
    .replace(/^encoder\.layer\.(\d+)\.attention\.self\.value\./, "layers.$1.self_attn.v_proj.")
    .replace(/^encoder\.layer\.(\d+)\.attention\.self\.rotary_embeddings\./, "layers.$1.self_attn.rot_emb.")
    .replace(/^encoder\.layer\.(\d+)\.attention\.output\.dense\./, "layers.$1.self_attn.out_proj.")
    .replace(/^encoder\.layer\.(\d+)\.attention\.LayerNorm\./, "layers.$1.self_attn_layer_norm.")
    .replace(/^encoder\.layer\.(\d+)\.intermediate\.dense\./, "layers.$1.fc1.")
    .replace(/^encoder\.layer\.(\d+)\.output\.dense\./, "layers.$1.fc2.")
    .replace(/^encoder\.layer\.(\d+)\.LayerNorm\./, "layers.$1.final_layer_norm.");
}

function expectSameAsReference(m: ReturnType<typeof loadEsm>) {
  expect(m.config).toEqual(reference.config);
  expect([...m.tensors.keys()]).toEqual([...reference.tensors.keys()]);
  for (const [k, t] of reference.tensors) expect(sameBytes(m.tensors.get(k), t)).toBe(true);
}

describe("loadEsm: Hugging Face layouts", () => {
  test("random tiny-esm directory: config, canonical names in order, shapes, heads dropped", () => {
    expect(reference.config).toEqual(TINY as never);
    expect(reference.files).toEqual([join(base, "model.safetensors")]);
    const expected = esmExpected(reference.config);
    expect(expected.length).toBe(1 + 3 * 17 + 2);
    expect([...reference.tensors.keys()]).toEqual(expected.map((e) => e.name));
    for (const e of expected) expect(reference.tensors.get(e.name)!.shape).toEqual(e.shape);
    expect([...reference.tensors.keys()].some((n) => n.includes("lm_head") || n.includes("contact"))).toBe(false);
    // inv_freq as the released checkpoints hold it: fp16-rounded 1/10000^(2i/64)
    const inv = values(reference.tensors.get("encoder.layer.2.attention.self.rotary_embeddings.inv_freq"));
    expect(inv.length).toBe(32);
    expect(inv[0]).toBe(1);
    expect(inv[1]).toBe(0.75); // 10000^(-1/32) = 0.74989 in fp32, 0.75 in fp16
    expect(inv[5]).toBe(0.2371826171875); // 10000^(-5/32) = 0.23714
    expect(inv).toEqual(Array.from(esmInvFreq(64)));
  });

  test("EsmModel names (no esm. prefix), no config.json: config inferred from shapes and inv_freq", () => {
    const dir = writeVariant(tmp.sub("no-prefix"), hub, (n) => (n.startsWith("lm_head") ? undefined : n.replace(/^esm\./, "")));
    expectSameAsReference(loadEsm(dir));
  });

  test("LayerNorm gamma/beta, position_ids and pooler present", () => {
    const dir = writeVariant(tmp.sub("gamma"), hub, (n) => n.replace(/LayerNorm\.weight$/, "LayerNorm.gamma").replace(/LayerNorm\.bias$/, "LayerNorm.beta"), hubConfig);
    const m = loadEsm(dir);
    expectSameAsReference(m);
    const extra = readCopy(join(dir, "model.safetensors"));
    extra.set("esm.embeddings.position_ids", { dtype: "i64", shape: [1, 2], data: new Uint8Array(16) });
    extra.set("esm.pooler.dense.weight", fromFloat32(new Float32Array(4), [2, 2]));
    extra.set("esm.embeddings.position_embeddings.weight", fromFloat32(new Float32Array(4), [2, 2]));
    expectSameAsReference(loadEsm(writeVariant(tmp.sub("extras"), extra, (n) => n, hubConfig)));
  });

  test("one shared inv_freq is replicated to every layer", () => {
    const shared = hub.get("esm.encoder.layer.0.attention.self.rotary_embeddings.inv_freq")!;
    const variant = new Map(hub);
    for (const k of [...variant.keys()]) if (k.endsWith("inv_freq")) variant.delete(k);
    variant.set("esm.encoder.rotary_embeddings.inv_freq", shared);
    const m = loadEsm(writeVariant(tmp.sub("shared-inv"), variant, (n) => n, hubConfig));
    expectSameAsReference(m);
    const t0 = m.tensors.get("encoder.layer.0.attention.self.rotary_embeddings.inv_freq");
    expect(m.tensors.get("encoder.layer.2.attention.self.rotary_embeddings.inv_freq")).toBe(t0!);
  });

  test("no inv_freq at all: the fp16-rounded frequencies are rebuilt", () => {
    const dir = writeVariant(tmp.sub("no-inv"), hub, (n) => (n.endsWith("inv_freq") ? undefined : n), hubConfig);
    const m = loadEsm(dir);
    expect(values(m.tensors.get("encoder.layer.1.attention.self.rotary_embeddings.inv_freq"))).toEqual(Array.from(esmInvFreq(64)));
  });

  test("sharded pytorch_model-*.bin with an index.json", () => {
    const dir = tmp.sub("sharded");
    const names = [...hub.keys()];
    const half = Math.ceil(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const weightMap: Record<string, string> = {};
    shards.forEach((list, i) => {
      const file = `pytorch_model-0000${i + 1}-of-00002.bin`;
      writeTorch(join(dir, file), new OrderedDict(new Map(list.map((n) => [n, hub.get(n)!]))));
      for (const n of list) weightMap[n] = file;
    });
    writeFileSync(join(dir, "pytorch_model.bin.index.json"), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
    writeFileSync(join(dir, "config.json"), JSON.stringify(hubConfig));
    const m = loadEsm(dir);
    expectSameAsReference(m);
    expect(m.files.map((f) => f.slice(dir.length + 1))).toEqual(["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"]);
  });

  test("f16 and bf16 weights keep their dtype", () => {
    const dir = tmp.sub("f16");
    writeRandomModel("tiny-esm", 7, dir, { dtype: "f16" });
    const m = loadEsm(dir);
    expect(m.config).toEqual(reference.config);
    expect(m.tensors.get("encoder.layer.0.attention.self.query.weight")!.dtype).toBe("f16");
    // the same draws as the f32 model, rounded
    const a = values(m.tensors.get("encoder.layer.0.attention.self.query.weight")).slice(0, 50);
    const b = values(reference.tensors.get("encoder.layer.0.attention.self.query.weight")).slice(0, 50);
    a.forEach((x, i) => expect(Math.abs(x - b[i])).toBeLessThan(1e-4));
    const bf = new Map([...hub].map(([k, t]) => [k, castFloat(t, "bf16")] as [string, HostTensor]));
    const mb = loadEsm(writeVariant(tmp.sub("bf16"), bf, (n) => n, hubConfig));
    expect(mb.tensors.get("encoder.emb_layer_norm_after.weight")!.dtype).toBe("bf16");
  });
});

describe("loadEsm: fair-esm .pt", () => {
  const canonical = reference.tensors;
  const namespace = (fields: Record<string, unknown>) => new NewObj(new PyGlobal("argparse", "Namespace"), [], new Map(Object.entries(fields)));

  test("{model, cfg: {model: Namespace}} with encoder.sentence_encoder. names, written by our pickle writer", () => {
    const sd = new Map<string, unknown>();
    for (const [k, t] of canonical) sd.set(`encoder.sentence_encoder.${fairName(k)}`, t);
    sd.set("encoder.lm_head.weight", canonical.get("embeddings.word_embeddings.weight"));
    sd.set("encoder.lm_head.bias", fromFloat32(new Float32Array(33), [33]));
    const cfg = namespace({ encoder_layers: 3, encoder_embed_dim: 128, encoder_attention_heads: 2, encoder_ffn_embed_dim: 512, token_dropout: true });
    const path = join(tmp.path, "esm2_tiny.pt");
    writeTorch(path, new Map<string, unknown>([["model", new OrderedDict(sd)], ["cfg", new Map([["model", cfg]])], ["args", null]]));
    const m = loadEsm(path);
    expectSameAsReference(m);
    expect(m.files).toEqual([path]);
  });

  test("prefix encoder. only, no config: inferred; a transposed (non-contiguous) weight is materialised", () => {
    const sd = new Map<string, unknown>();
    for (const [k, t] of canonical) sd.set(`encoder.${fairName(k)}`, t);
    // store fc1 of layer 1 as the transpose of a [H, I] buffer, the way t() views are saved
    const w = canonical.get("encoder.layer.1.intermediate.dense.weight")!;
    const [I, H] = w.shape;
    const src = toFloat32(w);
    const tr = new Float32Array(I * H);
    for (let i = 0; i < I; i++) for (let h = 0; h < H; h++) tr[h * I + i] = src[i * H + h];
    sd.set("encoder.layers.1.fc1.weight", new TensorView(fromFloat32(tr, [H * I]), 0, [I, H], [1, I]));
    const path = join(tmp.path, "esm2_noconfig.pt");
    writeTorch(path, new Map([["model", sd]]));
    expectSameAsReference(loadEsm(path));
  });

  test("a file written by torch: fp16 weights, Namespace config", () => {
    const m = loadEsm(`${TESTDATA}/fair_esm_tiny.pt`);
    expect(m.config).toEqual({ ...TINY, nLayers: 2, hidden: 8, nHeads: 2, intermediate: 32 } as never);
    const expectLines = readFileSync(`${TESTDATA}/fair_esm_tiny.expect.txt`, "utf8").trim().split("\n");
    const fairToCanonical = new Map([...m.tensors.keys()].map((k) => [`encoder.sentence_encoder.${fairName(k)}`, k]));
    let checked = 0;
    for (const line of expectLines) {
      const [name, ...nums] = line.split(" ");
      const canonicalName = fairToCanonical.get(name);
      if (!canonicalName) continue; // lm_head
      const t = m.tensors.get(canonicalName)!;
      expect(t.dtype).toBe("f16");
      const v = values(t);
      const sum = Number(nums.pop());
      expect(v.slice(0, 3)).toEqual(nums.map(Number));
      expect(v.reduce((a, b) => a + b, 0)).toBeCloseTo(sum, 3);
      checked++;
    }
    expect(checked).toBe(m.tensors.size);
  });
});

describe("loadEsm: errors", () => {
  test("missing tensors are named with a count", () => {
    const dir = writeVariant(tmp.sub("missing"), hub, (n) => (/layer\.[12]\.attention\.self\.(query|key)\./.test(n) ? undefined : n), hubConfig);
    expect(() => loadEsm(dir)).toThrow(
      /not a usable ESM-2 checkpoint: missing 8 tensors \(encoder\.layer\.1\.attention\.self\.query\.weight, encoder\.layer\.1\.attention\.self\.query\.bias, encoder\.layer\.1\.attention\.self\.key\.weight, \.\.\. 5 more\)$/,
    );
  });

  test("a wrong shape is named with both shapes", () => {
    const variant = new Map(hub);
    variant.set("esm.encoder.layer.0.output.dense.weight", fromFloat32(new Float32Array(128 * 100), [128, 100]));
    const dir = writeVariant(tmp.sub("shape"), variant, (n) => n, hubConfig);
    expect(() => loadEsm(dir)).toThrow(/1 wrong \(encoder\.layer\.0\.output\.dense\.weight is \[128, 100\], expected \[128, 512\]\)/);
  });

  test("config.json that disagrees with the weights", () => {
    const dir = writeVariant(tmp.sub("cfg-layers"), hub, (n) => n, { ...hubConfig, num_hidden_layers: 2 });
    expect(() => loadEsm(dir)).toThrow(/checkpoint has 3 layers but the config says 2/);
    const dir2 = writeVariant(tmp.sub("cfg-hidden"), hub, (n) => n, { ...hubConfig, num_attention_heads: 4 });
    expect(() => loadEsm(dir2)).toThrow(/rotary_embeddings\.inv_freq is \[32\], expected \[16\]/);
  });

  test("a DNABERT-S checkpoint is not an ESM-2 one, and the other way round", () => {
    const dir = tmp.sub("dna");
    writeRandomModel("tiny-dnabert", 1, dir);
    expect(() => loadEsm(dir)).toThrow(/dna: not an ESM-2 checkpoint \(no attention query weights; found embeddings\.LayerNorm\.bias, .*\.\.\. 23 more\)$/);
    expect(() => loadDnabert(base)).toThrow(/not a DNABERT-S checkpoint \(no attention\.self\.Wqkv weights; found esm\.contact_head\.regression\.bias, /);
  });

  test("a missing path", () => {
    expect(() => loadEsm(join(tmp.path, "nope"))).toThrow(/nope: no such file or directory/);
  });
});
