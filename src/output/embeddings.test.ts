import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tableFromIPC, type RecordBatch } from "apache-arrow";
import { EMBEDDINGS_FILE, embeddingsPlan, emptyEmbeddingsSchema, writeEmbeddings } from "./embeddings.ts";
import { embeddingsBatch, toFloat16Bits, DNABERT_DIM, ESM_DIM } from "./schema.ts";
import { withRecordIndex } from "./keys.ts";
import { readParquet } from "./parquet.ts";
import { duckdbQueries } from "../../test/helpers.ts";
import { META_KEY, fileMetadata } from "./filemeta.ts";

const dirs: string[] = [];
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), "virnuc-emb-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** `n` frames at full model widths; value (row, col) = row + col / 4096 in dnabert, -(...) in esm. */
function batchOf(n: number, first: number, f16 = false): RecordBatch {
  const d = new Float32Array(n * DNABERT_DIM);
  const e = new Float32Array(n * ESM_DIM);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < DNABERT_DIM; c++) d[r * DNABERT_DIM + c] = first + r + c / 4096;
    for (let c = 0; c < ESM_DIM; c++) e[r * ESM_DIM + c] = -(first + r + c / 4096);
  }
  const ids = Array.from({ length: n }, (_, i) => `read_${first + i}_chunk_1F1`);
  const b = embeddingsBatch({ frameId: ids, dnabert: f16 ? toFloat16Bits(d) : d, esm: f16 ? toFloat16Bits(e) : e });
  return withRecordIndex(b, Array.from({ length: n }, (_, i) => first + i));
}

async function* source(...batches: RecordBatch[]): AsyncGenerator<RecordBatch> {
  yield* batches;
}

const meta = fileMetadata({ chunkSize: 500, precision: "fp32", models: { esm: [{ path: "/m/esm/model.safetensors", sha256: "1".repeat(64) }] } });

describe("embeddings options", () => {
  test("arrow by default; float16 with Parquet is widened to float32 with one warning line", () => {
    expect(embeddingsPlan()).toEqual({ format: "arrow", dtype: "float32" });
    expect(embeddingsPlan("arrow", "float16")).toEqual({ format: "arrow", dtype: "float16" });
    expect(embeddingsPlan("parquet", "float32")).toEqual({ format: "parquet", dtype: "float32" });
    const p = embeddingsPlan("parquet", "float16");
    expect(p.format).toBe("parquet");
    expect(p.dtype).toBe("float32");
    expect(p.warning).toContain("float32");
    expect(p.warning!.includes("\n")).toBe(false);
    expect(() => embeddingsPlan("csv")).toThrow("--embeddings-format csv: expected arrow or parquet");
    expect(() => embeddingsPlan("parquet", "bf16")).toThrow("--embeddings-dtype bf16: expected float32 or float16");
    expect(EMBEDDINGS_FILE.parquet).toBe("embeddings.parquet");
  });
});

describe("embeddings.parquet in DuckDB", () => {
  const q = duckdbQueries();

  test("FLOAT lists of 768 / 2560 that cast to FLOAT[768] / FLOAT[2560]; values, record_index and metadata", async () => {
    const dir = temp();
    const { name, digest } = await writeEmbeddings(dir, "parquet", source(batchOf(3, 0), batchOf(2, 3)), { metadata: meta });
    expect(name).toBe("embeddings.parquet");
    expect(digest.rows).toBe(5);
    const f = join(dir, name);
    const types = Object.fromEntries((await q(`describe select * from '${f}'`)).map((r) => [r[0], r[1]]));
    expect(types).toEqual({ frame_id: "VARCHAR", record_index: "BIGINT", dnabert: "FLOAT[]", esm: "FLOAT[]" });
    const cast = (await q(`describe select dnabert::FLOAT[768] d, esm::FLOAT[2560] e from '${f}'`)).map((r) => r[1]);
    expect(cast).toEqual(["FLOAT[768]", "FLOAT[2560]"]);
    const [[lenD, lenE, v, w, ri, id]] = await q(
      `select len(dnabert)::INT, len(esm)::INT, (esm::FLOAT[2560])[2561 - 1]::DOUBLE, dnabert[2]::DOUBLE, record_index::INT, frame_id
       from '${f}' where record_index = 4`,
    );
    expect([lenD, lenE, ri, id]).toEqual([768, 2560, 4, "read_4_chunk_1F1"]);
    expect(v).toBe(Math.fround(-(4 + 2559 / 4096)));
    expect(w).toBe(Math.fround(4 + 1 / 4096));
    const [[sim]] = await q(`select array_cosine_similarity(esm::FLOAT[2560], esm::FLOAT[2560])::DOUBLE from '${f}' limit 1`);
    expect(Math.abs((sim as number) - 1)).toBeLessThan(1e-6);
    const [[m]] = await q(`select decode(value)::json->>'precision' from parquet_kv_metadata('${f}') where decode(key) = '${META_KEY}'`);
    expect(m).toBe("fp32");
    // the Arrow schema in the file restores the fixed-size lists for Arrow readers (pyarrow, polars, arrow-rs)
    const back = readParquet(readFileSync(f));
    expect(back.schema.fields.map((x) => `${x.name}: ${x.type}`)).toEqual([
      "frame_id: Utf8",
      "record_index: Int64",
      "dnabert: FixedSizeList[768]<Float32>",
      "esm: FixedSizeList[2560]<Float32>",
    ]);
    // deterministic
    const again = await writeEmbeddings(temp(), "parquet", source(batchOf(5, 0)), { metadata: meta });
    expect(again.digest.sha256).toBe(digest.sha256);
  });

  test("no frames: a zero-row file with the real widths", async () => {
    const dir = temp();
    const { digest } = await writeEmbeddings(dir, "parquet", source(), { metadata: meta });
    expect(digest.rows).toBe(0);
    const back = readParquet(readFileSync(join(dir, "embeddings.parquet")));
    expect(back.numRows).toBe(0);
    expect(String(back.schema.fields[3].type)).toBe("FixedSizeList[2560]<Float32>");
    expect(String(emptyEmbeddingsSchema("float16").fields[2].type)).toBe("FixedSizeList[768]<Float16>");
  });
});

describe("embeddings.arrow", () => {
  test("record_index and the metadata key; float16 kept", async () => {
    const dir = temp();
    const { name, digest } = await writeEmbeddings(dir, "arrow", source(batchOf(2, 0, true), batchOf(1, 2, true)), { metadata: meta });
    expect(name).toBe("embeddings.arrow");
    expect(digest.rows).toBe(3);
    const t = tableFromIPC(readFileSync(join(dir, name)));
    expect(t.schema.fields.map((x) => x.name)).toEqual(["frame_id", "record_index", "dnabert", "esm"]);
    expect(String(t.schema.fields[3].type)).toBe("FixedSizeList[2560]<Float16>");
    expect(t.schema.metadata.get(META_KEY)).toBe(meta.get(META_KEY));
    expect(Array.from(t.getChild("record_index")!.toArray() as BigInt64Array, Number)).toEqual([0, 1, 2]);
  });
});
