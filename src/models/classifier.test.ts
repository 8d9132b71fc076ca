import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { classifierExpected, loadClassifier } from "./classifier.ts";
import { fromFloat32 } from "./dtype.ts";
import { OrderedDict } from "./pickle.ts";
import { writeRandomModel } from "./random.ts";
import { writeSafetensors } from "./safetensors.ts";
import { sameBytes, tempDir, values } from "./testing.ts";
import { torchModule, writeTorch } from "./torch.ts";

const TESTDATA = join(import.meta.dir, "testdata");
const tmp = tempDir("classifier");
afterAll(tmp.remove);

describe("loadClassifier", () => {
  test("a VirNucPro-style whole-module pickle written by torch", () => {
    const m = loadClassifier(`${TESTDATA}/mlp_module.pth`);
    expect(m.config).toEqual({ inFeatures: 16, hidden: 8, nClasses: 2, bnEps: 1e-3 });
    expect([...m.tensors.keys()]).toEqual(classifierExpected(m.config).map((e) => e.name));
    const expected = new Map(
      readFileSync(`${TESTDATA}/mlp_module.expect.txt`, "utf8")
        .trim()
        .split("\n")
        .map((l) => {
          const [name, ...nums] = l.split(" ");
          return [name, nums.map(Number)] as [string, number[]];
        }),
    );
    for (const [name, t] of m.tensors) expect(values(t)).toEqual(Array.from(Float32Array.from(expected.get(name)!)));
  });

  test("random VirNucPro classifier (3328 -> 512 -> 2) round trip", () => {
    const dir = tmp.sub("cls");
    writeRandomModel("classifier", 5, dir);
    const m = loadClassifier(join(dir, "model.pth"));
    expect(m.config).toEqual({ inFeatures: 3328, hidden: 512, nClasses: 2, bnEps: 1e-5 });
    expect(m.files).toEqual([join(dir, "model.pth")]);
    const rv = values(m.tensors.get("bn1.running_var"));
    expect(Math.min(...rv)).toBeGreaterThan(0);
    // a directory holding model.pth is accepted too
    expect(loadClassifier(dir).config).toEqual(m.config);
  });

  test("state dicts: .pth with DataParallel's module. prefix, and .safetensors", () => {
    const ref = loadClassifier(`${TESTDATA}/mlp_module.pth`);
    const sdPath = join(tmp.path, "sd.pth");
    writeTorch(sdPath, new OrderedDict(new Map([...ref.tensors].map(([k, t]) => [`module.${k}`, t]))));
    const fromPth = loadClassifier(sdPath);
    expect(fromPth.config).toEqual({ ...ref.config, bnEps: 1e-5 }); // a state dict does not record eps
    const stPath = join(tmp.path, "sd.safetensors");
    writeSafetensors(stPath, ref.tensors);
    const fromSt = loadClassifier(stPath);
    for (const [k, t] of ref.tensors) {
      expect(sameBytes(fromPth.tensors.get(k), t)).toBe(true);
      expect(sameBytes(fromSt.tensors.get(k), t)).toBe(true);
    }
  });

  test("DataParallel-wrapped module keeps the pickled eps", () => {
    const ref = loadClassifier(`${TESTDATA}/mlp_module.pth`);
    const t = (n: string) => ref.tensors.get(n)!;
    const inner = torchModule("__main__.MLPClassifier", {
      modules: {
        hidden_layer: torchModule("torch.nn.modules.linear.Linear", { parameters: { weight: t("hidden_layer.weight"), bias: t("hidden_layer.bias") } }),
        bn1: torchModule("torch.nn.modules.batchnorm.BatchNorm1d", {
          parameters: { weight: t("bn1.weight"), bias: t("bn1.bias") },
          buffers: { running_mean: t("bn1.running_mean"), running_var: t("bn1.running_var") },
          fields: { eps: 0.01 },
        }),
        output_layer: torchModule("torch.nn.modules.linear.Linear", { parameters: { weight: t("output_layer.weight"), bias: t("output_layer.bias") } }),
      },
    });
    const path = join(tmp.path, "dp.pth");
    writeTorch(path, torchModule("torch.nn.parallel.data_parallel.DataParallel", { modules: { module: inner } }));
    expect(loadClassifier(path).config.bnEps).toBe(0.01);
  });

  test("errors: not a classifier, a missing BatchNorm buffer, wrong widths", () => {
    const other = join(tmp.path, "other.safetensors");
    writeSafetensors(other, new Map([["x.weight", fromFloat32(new Float32Array(4), [2, 2])]]));
    expect(() => loadClassifier(other)).toThrow(/not a VirNucPro classifier \(needs hidden_layer\.weight and output_layer\.weight; found x\.weight\)/);

    const ref = loadClassifier(`${TESTDATA}/mlp_module.pth`);
    const broken = new Map(ref.tensors);
    broken.delete("bn1.running_var");
    broken.set("output_layer.bias", fromFloat32(new Float32Array(3), [3]));
    const path = join(tmp.path, "broken.safetensors");
    writeSafetensors(path, broken);
    expect(() => loadClassifier(path)).toThrow(
      /broken\.safetensors: not a usable classifier checkpoint: missing 1 tensor \(bn1\.running_var\); 1 wrong \(output_layer\.bias is \[3\], expected \[2\]\)/,
    );
  });
});
