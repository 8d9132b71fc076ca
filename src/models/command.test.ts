import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../util/errors.ts";
import { modelsCommand } from "./command.ts";
import { fromFloat32 } from "./dtype.ts";
import { detectKind, inspectModel } from "./inspect.ts";
import { writeSafetensors } from "./safetensors.ts";
import { tempDir } from "./testing.ts";

// subprocesses and heavy checks on a busy machine take longer than the 5 s default (bunfig has no such key)
setDefaultTimeout(120_000);

const TESTDATA = join(import.meta.dir, "testdata");
const tmp = tempDir("models-cmd");
afterAll(tmp.remove);

/** Run the command and return what it wrote to stdout. */
async function stdoutOf(fn: () => Promise<void>): Promise<string> {
  const write = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  let out = "";
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stdout.write = write;
    process.stderr.write = err;
  }
  return out;
}

describe("virnuc models random / inspect", () => {
  test("random writes a model that inspect recognises", async () => {
    const dir = join(tmp.path, "esm");
    await stdoutOf(() => modelsCommand("random", [], { arch: "tiny-esm", seed: 3, output: dir }));
    expect(existsSync(join(dir, "model.safetensors"))).toBe(true);
    const out = await stdoutOf(() => modelsCommand("inspect", [dir], {}));
    expect(out).toContain(`files: ${join(dir, "model.safetensors")}`);
    expect(out).toMatch(/^esm\.encoder\.layer\.0\.attention\.self\.query\.weight\s+f32\s+\[128, 128\]$/m);
    expect(out).toMatch(/^model: ESM-2: 3 layers, hidden 128, 2 heads, intermediate 512, vocab 33, LayerNorm eps 0\.00001, mask id 32, token dropout on$/m);
  });

  test("inspect: DNABERT-S with its tokenizer, the classifier pickle, a feature file", async () => {
    const dna = join(tmp.path, "dna");
    await stdoutOf(() => modelsCommand("random", [], { arch: "tiny-dnabert", seed: "4", output: dna, dtype: "f16" }));
    const d = inspectModel(dna);
    expect(d).toMatch(/^encoder\.layer\.1\.mlp\.gated_layers\.weight\s+f16\s+\[512, 128\]$/m);
    expect(d).toContain(`model: DNABERT-S: 2 layers, hidden 128, 2 heads, intermediate 256, vocab 4096, LayerNorm eps 1e-12, tokenizer ${join(dna, "tokenizer.json")}`);

    const c = inspectModel(`${TESTDATA}/mlp_module.pth`);
    expect(c).toContain("top level: __main__.MLPClassifier object");
    expect(c).toMatch(/^bn1\.num_batches_tracked\s+i64\s+\[\]$/m);
    expect(c).toContain("model: VirNucPro classifier: 16 -> 8 -> 2, BatchNorm eps 0.001");

    const f = inspectModel("test/fixtures/reference/virnucpro/reference_output/output_1_merged.pt");
    expect(f).toContain("top level: ids: list[4], data: tensor f32 [4, 3328]");
    expect(f).toContain("1 tensors, 13,312 values, 52.0 KiB");
    expect(f).toContain("model: not a known layout");
  });

  test("inspect says why a recognised but broken model cannot be used", () => {
    expect(inspectModel(`${TESTDATA}/fair_esm_tiny.pt`)).toContain("model: ESM-2: 2 layers, hidden 8, 2 heads");
    const broken = join(tmp.path, "broken.safetensors");
    writeSafetensors(broken, new Map([["esm.encoder.layer.0.attention.self.query.weight", fromFloat32(new Float32Array(4), [2, 2])]]));
    expect(inspectModel(broken)).toContain(`model: looks like esm2, but cannot be used: ${broken}: not an ESM-2 checkpoint`);
    expect(detectKind(["encoder.layer.0.attention.self.Wqkv.weight"])).toBe("dnabert");
    expect(detectKind(["layers.0.self_attn.q_proj.weight"])).toBe("esm2");
    expect(detectKind(["hidden_layer.weight"])).toBe("classifier");
    expect(detectKind(["foo"])).toBeUndefined();
  });

  test("usage errors", async () => {
    await expect(modelsCommand("frobnicate", [], {})).rejects.toThrow(
      new UserError("unknown models action 'frobnicate' (one of: list, resolve, inspect, verify, pull, random)"),
    );
    await expect(modelsCommand("inspect", [], {})).rejects.toThrow(/needs exactly one FILE or DIR/);
    await expect(modelsCommand("random", [], { output: tmp.path })).rejects.toThrow(/needs --arch NAME \(one of: esm2_t6_8M_UR50D/);
    await expect(modelsCommand("random", [], { arch: "tiny-esm" })).rejects.toThrow(/needs -o DIR/);
    await expect(modelsCommand("random", [], { arch: "tiny-esm", output: tmp.path, dtype: "f8" })).rejects.toThrow(/--dtype must be f32 or f16, got 'f8'/);
    await expect(modelsCommand("random", [], { arch: "tiny-esm", output: tmp.path, seed: "abc" })).rejects.toThrow(/seed must be an integer/);
  });

  test("through the CLI: one-line error, non-zero exit", () => {
    const r = Bun.spawnSync(["bun", join(import.meta.dir, "../cli.ts"), "models", "inspect", join(tmp.path, "missing.pt")], { env: process.env });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr.toString().trim()).toBe(`virnuc: error: ${join(tmp.path, "missing.pt")}: no such file or directory`);
  });
});
