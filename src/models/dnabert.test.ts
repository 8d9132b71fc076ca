import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromFloat32 } from "./dtype.ts";
import { dnabertExpected, loadDnabert } from "./dnabert.ts";
import { OrderedDict } from "./pickle.ts";
import { writeRandomModel } from "./random.ts";
import { readCopy, sameBytes, tempDir, writeVariant } from "./testing.ts";
import { writeTorch } from "./torch.ts";

const tmp = tempDir("dnabert");
afterAll(tmp.remove);

const base = tmp.sub("tiny-dnabert");
writeRandomModel("tiny-dnabert", 3, base);
const plain = readCopy(join(base, "model.safetensors"));
const config = JSON.parse(readFileSync(join(base, "config.json"), "utf8"));
const reference = loadDnabert(base);

function expectSameAsReference(m: ReturnType<typeof loadDnabert>) {
  expect(m.config).toEqual(reference.config);
  expect([...m.tensors.keys()]).toEqual([...reference.tensors.keys()]);
  for (const [k, t] of reference.tensors) expect(sameBytes(m.tensors.get(k), t)).toBe(true);
}

describe("loadDnabert", () => {
  test("random tiny-dnabert directory: config, names, shapes, tokenizer", () => {
    expect(reference.config).toEqual({ arch: "dnabert", nLayers: 2, hidden: 128, nHeads: 2, intermediate: 256, vocab: 4096, lnEps: 1e-12 });
    const expected = dnabertExpected(reference.config);
    expect(expected.length).toBe(4 + 2 * 11);
    expect([...reference.tensors.keys()]).toEqual(expected.map((e) => e.name));
    expect(reference.tensors.get("encoder.layer.1.attention.self.Wqkv.weight")!.shape).toEqual([384, 128]);
    expect(reference.tensors.get("encoder.layer.1.mlp.gated_layers.weight")!.shape).toEqual([512, 128]);
    expect(reference.tensors.get("encoder.layer.1.mlp.wo.weight")!.shape).toEqual([128, 256]);
    expect(reference.tokenizerPath).toBe(join(base, "tokenizer.json"));
    expect(reference.files).toEqual([join(base, "model.safetensors")]);
  });

  test("bert. prefix, gamma/beta, pooler and cls heads ignored", () => {
    const variant = new Map(plain);
    variant.set("pooler.dense.weight", fromFloat32(new Float32Array(4), [2, 2]));
    variant.set("cls.predictions.bias", fromFloat32(new Float32Array(4096), [4096]));
    const dir = writeVariant(
      tmp.sub("bert-prefix"),
      variant,
      (n) => (n.startsWith("cls.") ? n : `bert.${n}`).replace(/LayerNorm\.weight$/, "LayerNorm.gamma").replace(/LayerNorm\.bias$/, "LayerNorm.beta"),
      config,
    );
    copyFileSync(join(base, "tokenizer.json"), join(dir, "tokenizer.json"));
    expectSameAsReference(loadDnabert(dir));
  });

  test("pytorch_model.bin, as DNABERT-S ships it", () => {
    const dir = tmp.sub("bin");
    writeTorch(join(dir, "pytorch_model.bin"), new OrderedDict(new Map([...plain].map(([k, t]) => [`bert.${k}`, t]))));
    writeFileSync(join(dir, "config.json"), JSON.stringify(config));
    const m = loadDnabert(dir);
    expectSameAsReference(m);
    expect(m.files).toEqual([join(dir, "pytorch_model.bin")]);
    expect(m.tokenizerPath).toBeUndefined();
  });

  test("sharded safetensors with model.safetensors.index.json", () => {
    const dir = tmp.sub("sharded");
    const names = [...plain.keys()];
    const weightMap: Record<string, string> = {};
    names.forEach((n, i) => (weightMap[n] = `model-0000${(i % 3) + 1}-of-00003.safetensors`));
    for (let s = 1; s <= 3; s++) {
      const file = `model-0000${s}-of-00003.safetensors`;
      writeVariant(tmp.sub(`sharded-tmp-${s}`), plain, (n) => (weightMap[n] === file ? n : undefined));
      copyFileSync(join(tmp.path, `sharded-tmp-${s}`, "model.safetensors"), join(dir, file));
    }
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: weightMap }));
    writeFileSync(join(dir, "config.json"), JSON.stringify(config));
    const m = loadDnabert(dir);
    expectSameAsReference(m);
    expect(m.files.length).toBe(3);
    rmSync(join(dir, "model-00002-of-00003.safetensors"));
    expect(() => loadDnabert(dir)).toThrow(/shard model-00002-of-00003\.safetensors is missing/);
  });

  test("no config.json: inferred from shapes (64-wide heads)", () => {
    const m = loadDnabert(writeVariant(tmp.sub("noconfig"), plain, (n) => n));
    expect(m.config).toEqual({ ...reference.config, nHeads: 2 });
  });

  test("missing and wrong-shaped tensors in one line", () => {
    const variant = new Map(plain);
    variant.delete("encoder.layer.1.mlp.wo.bias");
    variant.set("encoder.layer.0.attention.self.Wqkv.weight", fromFloat32(new Float32Array(128 * 128), [128, 128]));
    const dir = writeVariant(tmp.sub("broken"), variant, (n) => n, config);
    expect(() => loadDnabert(dir)).toThrow(
      /not a usable DNABERT-S checkpoint: missing 1 tensor \(encoder\.layer\.1\.mlp\.wo\.bias\); 1 wrong \(encoder\.layer\.0\.attention\.self\.Wqkv\.weight is \[128, 128\], expected \[384, 128\]\)/,
    );
  });

  test("an empty directory names the files it looked for", () => {
    expect(() => loadDnabert(tmp.sub("empty"))).toThrow(/no weights found \(expected one of model\.safetensors, /);
  });
});
