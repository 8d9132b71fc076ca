import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tableFromIPC } from "apache-arrow";
import { META_KEY, VIRNUC_VERSION, fileMeta, fileMetadata, modelName, parseFileMetadata } from "./filemeta.ts";
import { writeParquet } from "./parquet.ts";
import { writeIpcFile } from "./arrowfile.ts";
import { embeddingsBatch, predictionsSchema } from "./schema.ts";
import { sampleRun } from "./testdata.ts";
import { duckdbQueries } from "../../test/helpers.ts";
import pkg from "../../package.json" with { type: "json" };

const SHA = (c: string) => c.repeat(64);
const input = {
  chunkSize: 300,
  precision: "fp16",
  models: {
    esm: [{ path: "/home/u/.cache/huggingface/hub/models--facebook--esm2_t36_3B_UR50D/snapshots/abc/model.safetensors", sha256: SHA("a") }],
    dnabert: [
      { path: "/data/models/DNABERT-S/model.safetensors", sha256: SHA("b") },
      { path: "/data/models/DNABERT-S/tokenizer.json", sha256: SHA("c") },
    ],
    classifier: [{ path: "/x/300_model.pth", sha256: SHA("d") }],
  },
};

describe("file metadata", () => {
  test("model names never carry a machine's paths", () => {
    expect(modelName(input.models.esm[0].path)).toBe("facebook/esm2_t36_3B_UR50D");
    expect(modelName("/c/hub/models--zhihan1996--DNABERT-S/snapshots/r/model-00001-of-00002.safetensors")).toBe("zhihan1996/DNABERT-S");
    expect(modelName("/data/models/DNABERT-S/model.safetensors")).toBe("DNABERT-S");
    expect(modelName("/torch/hub/checkpoints/esm2_t36_3B_UR50D.pt")).toBe("esm2_t36_3B_UR50D.pt");
    expect(modelName("300_model.pth")).toBe("300_model.pth");
  });

  test("one key holding sorted JSON: version, chunk size, precision, models with sha256", () => {
    const md = fileMetadata(input);
    expect([...md.keys()]).toEqual([META_KEY]);
    const value = md.get(META_KEY)!;
    expect(value).toBe(JSON.stringify(JSON.parse(value))); // compact
    expect(value.startsWith('{"chunk_size":300,"models":{"classifier":')).toBe(true); // sorted keys
    const m = parseFileMetadata(md)!;
    expect(m.version).toBe(pkg.version);
    expect(VIRNUC_VERSION).toBe(pkg.version);
    expect(m.precision).toBe("fp16");
    expect(m.models.dnabert).toEqual({
      name: "DNABERT-S",
      files: [
        { file: "model.safetensors", sha256: SHA("b") },
        { file: "tokenizer.json", sha256: SHA("c") },
      ],
    });
    expect(m.models.esm.name).toBe("facebook/esm2_t36_3B_UR50D");
    expect(value).not.toContain("/home/u"); // no absolute paths
    // the same input in another key order gives the same string
    const reordered = { precision: "fp16", models: { classifier: input.models.classifier, dnabert: input.models.dnabert, esm: input.models.esm }, chunkSize: 300 };
    expect(fileMetadata(reordered).get(META_KEY)).toBe(value);
    // a role without files (embed has no classifier) is left out
    expect(Object.keys(fileMeta({ ...input, models: { ...input.models, classifier: [] } }).models)).toEqual(["dnabert", "esm"]);
    expect(parseFileMetadata(new Map())).toBeNull();
    expect(parseFileMetadata(null)).toBeNull();
  });
});

describe("metadata in the files", () => {
  const q = duckdbQueries();
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const temp = () => {
    const d = mkdtempSync(join(tmpdir(), "virnuc-filemeta-"));
    dirs.push(d);
    return d;
  };

  test("DuckDB reads the Parquet key-value metadata; same rows and metadata give the same bytes", async () => {
    const dir = temp();
    const run = sampleRun(50, 3);
    const md = fileMetadata(input);
    const a = await writeParquet(join(dir, "a.parquet"), run.predictions, predictionsSchema, { metadata: md });
    // written again in the same process, after other writes: byte-identical
    await writeParquet(join(dir, "other.parquet"), run.predictions, predictionsSchema, { metadata: fileMetadata({ ...input, chunkSize: 500 }) });
    const b = await writeParquet(join(dir, "b.parquet"), run.predictions, predictionsSchema, { metadata: md });
    expect(b.sha256).toBe(a.sha256);
    const rows = await q(`select decode(key) from parquet_kv_metadata('${a.path}') order by 1`);
    expect(rows.map((r) => r[0])).toEqual(["ARROW:schema", META_KEY]);
    const [[version, chunk, precision, esmSha]] = await q(
        `select j->>'version', (j->>'chunk_size')::INT, j->>'precision', j->'models'->'esm'->'files'->0->>'sha256'
         from (select decode(value)::json j from parquet_kv_metadata('${a.path}') where decode(key) = '${META_KEY}')`,
    );
    expect([version, chunk, precision, esmSha]).toEqual([pkg.version, 300, "fp16", SHA("a")]);
    // the rows are untouched
    const [[n]] = await q(`select count(*)::INT from '${a.path}'`);
    expect(n).toBe(run.predictions.numRows);
  });

  test("Parquet refuses several keys (their order would not be stable)", async () => {
    const dir = temp();
    const two = new Map([
      ["a", "1"],
      ["b", "2"],
    ]);
    await expect(writeParquet(join(dir, "x.parquet"), sampleRun(3).predictions, predictionsSchema, { metadata: two })).rejects.toThrow(/one key only/);
  });

  test("Arrow IPC files carry the same key in their schema", async () => {
    const dir = temp();
    const batch = embeddingsBatch({ frameId: ["f1", "f2"], dnabert: new Float32Array(2 * 4).fill(1), esm: new Float32Array(2 * 3).fill(2), dnabertDim: 4, esmDim: 3 });
    const md = fileMetadata(input);
    const a = await writeIpcFile(join(dir, "e.arrow"), [batch, batch], undefined, { metadata: md });
    const t = tableFromIPC(readFileSync(a.path));
    expect(t.numRows).toBe(4);
    expect(t.schema.metadata.get(META_KEY)).toBe(md.get(META_KEY));
    expect(parseFileMetadata(t.schema.metadata)!.chunk_size).toBe(300);
    const b = await writeIpcFile(join(dir, "e2.arrow"), [batch, batch], undefined, { metadata: md });
    expect(b.sha256).toBe(a.sha256);
    // without the option: no metadata (as before)
    const c = await writeIpcFile(join(dir, "e3.arrow"), batch);
    expect(tableFromIPC(readFileSync(c.path)).schema.metadata.size).toBe(0);
  });
});
