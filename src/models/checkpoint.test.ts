import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { collectTensors, loadStateDict, openCheckpoint } from "./checkpoint.ts";
import { fromFloat32 } from "./dtype.ts";
import { NewObj, OrderedDict, PyGlobal } from "./pickle.ts";
import { writeSafetensors } from "./safetensors.ts";
import { tempDir, values } from "./testing.ts";
import type { HostTensor } from "./tensor.ts";
import { readTorch, torchModule, writeTorch } from "./torch.ts";

const tmp = tempDir("ckpt");
afterAll(tmp.remove);
const f32 = (v: number[], shape = [v.length]): HostTensor => fromFloat32(Float32Array.from(v), shape);

describe("loadStateDict", () => {
  test("format by magic bytes, not by file name", () => {
    const st = join(tmp.path, "weights.bin");
    writeSafetensors(st, new Map([["a", f32([1, 2])]]));
    const pt = join(tmp.path, "weights.safetensors");
    writeTorch(pt, new OrderedDict(new Map([["b", f32([3])]])));
    expect(values(loadStateDict(st).get("a"))).toEqual([1, 2]);
    expect(values(loadStateDict(pt).get("b"))).toEqual([3]);
  });

  test("whole-module pickle flattened like module.state_dict()", () => {
    const bn = torchModule("torch.nn.modules.batchnorm.BatchNorm1d", {
      parameters: { weight: f32([1]), bias: f32([2]) },
      buffers: { running_mean: f32([3]), running_var: f32([4]), scratch: f32([9]) },
      fields: { _non_persistent_buffers_set: new Set(["scratch"]) },
    });
    const seq = torchModule("torch.nn.modules.container.Sequential", {
      modules: { "0": torchModule("torch.nn.modules.linear.Linear", { parameters: { weight: f32([5, 6], [1, 2]), bias: null } }) },
    });
    const path = join(tmp.path, "net.pth");
    writeTorch(path, torchModule("__main__.Net", { parameters: { scale: f32([7]) }, modules: { bn1: bn, head: seq, act: torchModule("torch.nn.modules.activation.ReLU", {}) } }));
    const sd = loadStateDict(path);
    expect([...sd.keys()]).toEqual(["scale", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "head.0.weight"]);
    expect(values(sd.get("bn1.running_mean"))).toEqual([3]);
  });

  test("wrapper dicts: {'state_dict': ...}, {'model': ..., 'args': Namespace}", () => {
    const a = join(tmp.path, "wrapped.pt");
    writeTorch(a, new Map<string, unknown>([["epoch", 3], ["state_dict", new OrderedDict(new Map([["w", f32([1])]]))]]));
    expect([...loadStateDict(a).keys()]).toEqual(["w"]);
    const b = join(tmp.path, "fair.pt");
    const args = new NewObj(new PyGlobal("argparse", "Namespace"), [], new Map([["encoder_layers", 1]]));
    writeTorch(b, new Map<string, unknown>([["args", args], ["model", new Map([["x.weight", f32([2])]])]]));
    const ck = openCheckpoint(b);
    expect([...ck.tensors.keys()]).toEqual(["x.weight"]);
    expect(ck.root).toBeInstanceOf(Map);
  });

  test("an index.json path directly; a tensor missing from its shard", () => {
    const dir = tmp.sub("idx");
    writeSafetensors(join(dir, "s1.safetensors"), new Map([["a", f32([1])]]));
    writeSafetensors(join(dir, "s2.safetensors"), new Map([["b", f32([2])]]));
    writeFileSync(join(dir, "custom.index.json"), JSON.stringify({ weight_map: { a: "s1.safetensors", b: "s2.safetensors" } }));
    const ck = openCheckpoint(join(dir, "custom.index.json"));
    expect([...ck.tensors.keys()].sort()).toEqual(["a", "b"]);
    expect(ck.files).toEqual([join(dir, "s1.safetensors"), join(dir, "s2.safetensors")]);
    writeFileSync(join(dir, "bad.index.json"), JSON.stringify({ weight_map: { c: "s1.safetensors" } }));
    expect(() => openCheckpoint(join(dir, "bad.index.json"))).toThrow(/s1\.safetensors: tensor c listed in bad\.index\.json is not in the shard/);
    writeFileSync(join(dir, "junk.index.json"), "{");
    expect(() => openCheckpoint(join(dir, "junk.index.json"))).toThrow(/not a valid JSON index/);
  });

  test("a directory with a single oddly named weight file", () => {
    const dir = tmp.sub("single");
    writeTorch(join(dir, "500_model.pth"), new OrderedDict(new Map([["w", f32([1])]])));
    expect([...loadStateDict(dir).keys()]).toEqual(["w"]);
  });

  test("legacy torch pickles, unknown files and tensor-free pickles are user errors", () => {
    const legacy = join(tmp.path, "old.pt");
    writeFileSync(legacy, new Uint8Array([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]));
    expect(() => loadStateDict(legacy)).toThrow(/old\.pt: legacy \(pre-1\.6\) PyTorch format/);
    const text = join(tmp.path, "readme.bin");
    writeFileSync(text, "just some text, definitely not weights");
    expect(() => loadStateDict(text)).toThrow(/readme\.bin: not a safetensors or PyTorch checkpoint/);
    const none = join(tmp.path, "none.pt");
    writeTorch(none, new Map([["epoch", 3]]));
    expect(() => loadStateDict(none)).toThrow(/none\.pt: no tensors found/);
  });
});

describe("collectTensors", () => {
  test("names tensors by their path through dicts and lists", () => {
    const v = readTorch("test/fixtures/reference/virnucpro/reference_output/output_1_ESM.pt");
    const all = collectTensors(v);
    expect([...all.keys()]).toEqual(["data.0", "data.1", "data.2", "data.3"]);
    expect(all.get("data.3")!.shape).toEqual([2560]);
  });
});
