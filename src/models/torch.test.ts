import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromFloat32, toFloat32 } from "./dtype.ts";
import { NewObj, OrderedDict, PersistentId, PyGlobal, PyObject, pickle, Reduce, Tuple } from "./pickle.ts";
import type { HostTensor } from "./tensor.ts";
import { Parameter, readTorch, readTorchArchive, TensorView, torchModule, writeTorch } from "./torch.ts";
import { ZipWriter } from "./zip.ts";

const REF = "test/fixtures/reference/virnucpro/reference_output";
const TESTDATA = join(import.meta.dir, "testdata");
const dir = mkdtempSync(join(tmpdir(), "virnuc-torch-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const f32 = (values: number[], shape = [values.length]): HostTensor => fromFloat32(Float32Array.from(values), shape);
const vals = (t: unknown) => Array.from(toFloat32(t as HostTensor));

describe("VirNucPro reference feature files (torch.save output)", () => {
  const dna = readTorch(`${REF}/output_1_DNABERT_S.pt`) as Map<string, unknown>;
  const esm = readTorch(`${REF}/output_1_ESM.pt`) as Map<string, unknown>;
  const merged = readTorch(`${REF}/output_1_merged.pt`) as Map<string, unknown>;

  test("DNABERT-S file: ids and 768-float mean representations", () => {
    const ids = dna.get("nucleotide") as string[];
    expect(ids).toEqual([
      "synthetic_seq_1_chunk_1R1", "synthetic_seq_1_chunk_1R2", "synthetic_seq_2_chunk_1R1", "synthetic_seq_2_chunk_1R2",
    ]);
    const data = dna.get("data") as Map<string, unknown>[];
    expect(data.length).toBe(4);
    for (let i = 0; i < 4; i++) {
      expect(data[i].get("label")).toBe(ids[i]);
      expect((data[i].get("mean_representation") as number[]).length).toBe(768);
    }
    expect((data[0].get("mean_representation") as number[])[0]).toBeCloseTo(-0.07058204710483551, 15);
  });

  test("ESM file: protein ids and 2560-float tensors", () => {
    const ids = esm.get("proteins") as string[];
    expect(ids.length).toBe(4);
    const data = esm.get("data") as HostTensor[];
    for (const t of data) {
      expect(t.dtype).toBe("f32");
      expect(t.shape).toEqual([2560]);
    }
  });

  test("merged rows are concat(DNABERT-S, ESM) of the same id, in order", () => {
    expect(merged.get("ids")).toEqual(dna.get("nucleotide"));
    const m = merged.get("data") as HostTensor;
    expect(m.dtype).toBe("f32");
    expect(m.shape).toEqual([4, 3328]);
    const rows = toFloat32(m);
    const esmIds = esm.get("proteins") as string[];
    const esmData = esm.get("data") as HostTensor[];
    const dnaData = dna.get("data") as Map<string, unknown>[];
    (merged.get("ids") as string[]).forEach((id, r) => {
      const row = rows.subarray(r * 3328, (r + 1) * 3328);
      const d = dnaData.find((x) => x.get("label") === id)!.get("mean_representation") as number[];
      const e = toFloat32(esmData[esmIds.indexOf(id)]);
      // the DNABERT-S list holds float64 copies of float32 values
      expect(Array.from(row.subarray(0, 768))).toEqual(Array.from(Float32Array.from(d)));
      expect(Array.from(row.subarray(768))).toEqual(Array.from(e));
    });
  });
});

describe("files written by torch itself", () => {
  test("mixed strides and dtypes", () => {
    const v = readTorch(`${TESTDATA}/mixed.pt`) as Map<string, unknown>;
    const x = Array.from({ length: 24 }, (_, i) => i);
    const t = v.get("t") as HostTensor;
    expect(t.shape).toEqual([6, 4]);
    expect(vals(t)).toEqual([0, 6, 12, 18, 1, 7, 13, 19, 2, 8, 14, 20, 3, 9, 15, 21, 4, 10, 16, 22, 5, 11, 17, 23]);
    expect(vals(v.get("s"))).toEqual([6, 8, 10, 12, 14, 16]);
    expect((v.get("h") as HostTensor).dtype).toBe("f16");
    expect(vals(v.get("h"))).toEqual(x);
    expect((v.get("b") as HostTensor).dtype).toBe("bf16");
    expect(vals(v.get("b"))).toEqual(x.map((i) => i / 8));
    expect((v.get("d") as HostTensor).dtype).toBe("f64");
    expect(vals(v.get("d"))).toEqual(x);
    expect((v.get("l") as HostTensor).dtype).toBe("i64");
    expect(vals(v.get("l"))).toEqual([0, 1, 2, 3, 4]);
    expect(vals(v.get("bool"))).toEqual([1, 0, 1]);
    const sc = v.get("scalar") as HostTensor;
    expect(sc.shape).toEqual([]);
    expect(vals(sc)).toEqual([3.5]);
    expect(v.get("size")).toEqual([4, 6]);
    const [r0, r2] = v.get("shared") as HostTensor[];
    expect(vals(r0)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(vals(r2)).toEqual([12, 13, 14, 15, 16, 17]);
    // stride 0 (expand): every row reads the same storage
    const ex = v.get("expanded") as HostTensor;
    expect(ex.shape).toEqual([2, 3]);
    expect(vals(ex)).toEqual([1, 1, 1, 1, 1, 1]);
  });

  test("whole-module pickle: classes recorded, not constructed", () => {
    const { value, root } = readTorchArchive(`${TESTDATA}/mlp_module.pth`);
    expect(root).toBe("mlp_module");
    const m = value as PyObject;
    expect(m.__class__).toBe("__main__.MLPClassifier");
    const mods = m.get("_modules") as Map<string, PyObject>;
    expect([...mods.keys()]).toEqual(["hidden_layer", "bn1", "output_layer", "dropout"]);
    expect(mods.get("hidden_layer")!.__class__).toBe("torch.nn.modules.linear.Linear");
    expect(mods.get("bn1")!.get("eps")).toBe(0.001);
    expect(mods.get("dropout")!.get("p")).toBe(0.5);
    const w = (mods.get("hidden_layer")!.get("_parameters") as Map<string, HostTensor>).get("weight")!;
    expect(w.shape).toEqual([8, 16]);
  });
});

describe("writeTorch -> readTorch", () => {
  test("tensors of every float and int dtype, shared storages, parameters", () => {
    const a = f32([1, 2, 3, 4, 5, 6], [2, 3]);
    const value = new Map<string, unknown>([
      ["a", a],
      ["again", a],
      ["half", fromFloat32(Float32Array.from([0.5, -2, 65504]), [3], "f16")],
      ["bf", fromFloat32(Float32Array.from([1.5, -3]), [2], "bf16")],
      ["long", { dtype: "i64", shape: [2], data: new Uint8Array(new BigInt64Array([7n, -9n]).buffer) }],
      ["flag", { dtype: "bool", shape: [2], data: new Uint8Array([1, 0]) }],
      ["param", new Parameter(f32([9, 8]))],
      ["empty", f32([], [0, 4])],
    ]);
    const path = join(dir, "values.pt");
    writeTorch(path, value);
    const v = readTorch(path) as Map<string, HostTensor>;
    expect(vals(v.get("a"))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(v.get("a")!.shape).toEqual([2, 3]);
    // one storage for both: the views point at the same bytes
    expect(v.get("again")!.data.buffer).toBe(v.get("a")!.data.buffer);
    expect(v.get("again")!.data.byteOffset).toBe(v.get("a")!.data.byteOffset);
    expect(v.get("half")!.dtype).toBe("f16");
    expect(vals(v.get("half"))).toEqual([0.5, -2, 65504]);
    expect(vals(v.get("bf"))).toEqual([1.5, -3]);
    expect(vals(v.get("long"))).toEqual([7, -9]);
    expect(vals(v.get("flag"))).toEqual([1, 0]);
    expect(vals(v.get("param"))).toEqual([9, 8]);
    expect(v.get("empty")!.shape).toEqual([0, 4]);
    expect(v.get("empty")!.data.byteLength).toBe(0);
  });

  test("non-contiguous views are materialised in logical order", () => {
    const storage = f32(Array.from({ length: 20 }, (_, i) => i));
    const path = join(dir, "strided.pt");
    writeTorch(
      path,
      new Map<string, unknown>([
        ["t", new TensorView(storage, 0, [5, 4], [1, 5])], // a 4x5 matrix transposed
        ["slice", new TensorView(storage, 5, [2, 3], [10, 2])],
        ["offset", new TensorView(storage, 15, [5], [1])],
      ]),
    );
    const v = readTorch(path) as Map<string, HostTensor>;
    expect(v.get("t")!.shape).toEqual([5, 4]);
    expect(vals(v.get("t"))).toEqual([0, 5, 10, 15, 1, 6, 11, 16, 2, 7, 12, 17, 3, 8, 13, 18, 4, 9, 14, 19]);
    expect(vals(v.get("slice"))).toEqual([5, 7, 9, 15, 17, 19]);
    expect(vals(v.get("offset"))).toEqual([15, 16, 17, 18, 19]);
  });

  test("a view past the end of its storage is refused", () => {
    const path = join(dir, "bad.pt");
    writeTorch(path, new TensorView(f32([1, 2, 3]), 1, [3], [1]));
    expect(() => readTorch(path)).toThrow(/runs past its storage/);
  });

  test("module objects written like torch.save(model) read back with their state", () => {
    const lin = torchModule("torch.nn.modules.linear.Linear", {
      parameters: { weight: f32([1, 2], [1, 2]), bias: null },
      fields: { in_features: 2, out_features: 1 },
    });
    const path = join(dir, "module.pth");
    writeTorch(path, torchModule("__main__.Net", { modules: { fc: lin } }), { root: "module" });
    const { value, root } = readTorchArchive(path);
    expect(root).toBe("module");
    const net = value as PyObject;
    expect(net.__class__).toBe("__main__.Net");
    expect(net.get("training")).toBe(false);
    const fc = (net.get("_modules") as Map<string, PyObject>).get("fc")!;
    expect(fc.get("in_features")).toBe(2);
    const params = fc.get("_parameters") as Map<string, unknown>;
    expect(params.get("bias")).toBeNull();
    expect(vals(params.get("weight"))).toEqual([1, 2]);
  });

  test("zip64 archives read the same", () => {
    const path = join(dir, "z64.pt");
    writeTorch(path, new Map([["x", f32([1, 2, 3])]]), { zip64: true });
    expect(vals((readTorch(path) as Map<string, unknown>).get("x"))).toEqual([1, 2, 3]);
  });
});

describe("storage and rebuild variants", () => {
  test("torch.<dtype> storage types and _rebuild_from_type_v2 (tensor subclasses)", () => {
    const path = join(dir, "variants.pt");
    const storage = (dtype: string, key: string, n: number) =>
      new PersistentId(new Tuple(["storage", new PyGlobal("torch", dtype), key, "cuda:0", n]));
    const rebuild = new PyGlobal("torch._utils", "_rebuild_tensor_v2");
    const tensor = (st: PersistentId, shape: number[]) => new Reduce(rebuild, [st, 0, new Tuple(shape), new Tuple([1]), false, new OrderedDict(new Map())]);
    const value = new Map<string, unknown>([
      ["half", tensor(storage("float16", "0", 2), [2])],
      [
        "sub",
        new Reduce(new PyGlobal("torch._tensor", "_rebuild_from_type_v2"), [
          rebuild,
          new PyGlobal("torch", "Tensor"),
          new Tuple([storage("float32", "1", 1), 0, new Tuple([1]), new Tuple([1]), false, new OrderedDict(new Map())]),
          new Map(),
        ]),
      ],
    ]);
    const zip = new ZipWriter(path);
    zip.add("variants/data.pkl", pickle(value));
    zip.add("variants/data/0", new Uint8Array(new Uint16Array([0x3c00, 0xc000]).buffer));
    zip.add("variants/data/1", new Uint8Array(new Float32Array([2.5]).buffer));
    zip.close();
    const v = readTorch(path) as Map<string, HostTensor>;
    expect(v.get("half")!.dtype).toBe("f16");
    expect(vals(v.get("half"))).toEqual([1, -2]);
    expect(vals(v.get("sub"))).toEqual([2.5]);
  });
});

describe("errors", () => {
  test("a zip without data.pkl, a non-zip, a missing storage", () => {
    const notTorch = join(dir, "notes.txt");
    writeFileSync(notTorch, "hello, this is not a checkpoint at all");
    expect(() => readTorch(notTorch)).toThrow(/notes\.txt: not a valid zip archive/);
    const path = join(dir, "x.pt");
    writeTorch(path, new Map([["x", f32([1])]]));
    // rename the storage entry in place so data.pkl points at nothing
    const bytes = readFileSync(path);
    const name = Buffer.from("archive/data/0");
    let at = bytes.indexOf(name);
    while (at >= 0) {
      bytes[at + name.length - 1] = "7".charCodeAt(0);
      at = bytes.indexOf(name, at + 1);
    }
    writeFileSync(path, bytes);
    expect(() => readTorch(path)).toThrow(/storage data\/0 is missing/);
  });

  test("an unknown storage type is named", () => {
    const path = join(dir, "weird.pt");
    const pid = new Tuple(["storage", new PyGlobal("torch", "ComplexFloatStorage"), "0", "cpu", 1]);
    writeTorch(path, new NewObj(new PyGlobal("m", "C"), [], new Map([["s", new PersistentId(pid)]])));
    expect(() => readTorch(path)).toThrow(/unsupported type torch\.ComplexFloatStorage/);
  });
});
