import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../util/errors.ts";
import { ipcFileBytes, readIpc, readIpcFile, sha256File, sha256Hex, writeIpcFile } from "./arrowfile.ts";
import { embeddingsBatch, embeddingsSchema, predictionsSchema, toFloat16Bits, windowsSchema } from "./schema.ts";
import { lcg, sampleRun } from "./testdata.ts";

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "virnuc-ipc-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function embeddings(first: number, n: number, dn = 768, es = 2560) {
  const rnd = lcg(first + 1);
  const ids = Array.from({ length: n }, (_, i) => `r${first + i}_chunk_1F1`);
  const dnabert = new Float32Array(n * dn).map(() => rnd() - 0.5);
  const esm = new Float32Array(n * es).map(() => rnd() - 0.5);
  return { ids, dnabert, esm, batch: embeddingsBatch({ frameId: ids, dnabert, esm }) };
}

describe("Arrow IPC files", () => {
  test("embeddings stream to disk and read back exactly (apache-arrow)", async () => {
    const dir = tempDir();
    const path = join(dir, "embeddings.arrow");
    const parts = [embeddings(0, 5), embeddings(5, 3), embeddings(8, 0), embeddings(8, 4)];
    async function* source() {
      for (const p of parts) yield p.batch;
    }
    const d = await writeIpcFile(path, source());
    expect(d.rows).toBe(12);
    expect(d.bytes).toBe(statSync(path).size);
    expect(d.sha256).toBe(sha256File(path));
    expect(d.sha256).toBe(sha256Hex(readFileSync(path)));
    expect(readdirSync(dir)).toEqual(["embeddings.arrow"]);
    // An Arrow IPC *file* (magic at both ends), not a stream.
    const bytes = readFileSync(path);
    expect(bytes.subarray(0, 6).toString()).toBe("ARROW1");
    expect(bytes.subarray(bytes.length - 6).toString()).toBe("ARROW1");

    const t = readIpcFile(path);
    expect(t.numRows).toBe(12);
    expect(t.schema.fields.map((f) => `${f.name}: ${f.type}`)).toEqual(
      embeddingsSchema().fields.map((f) => `${f.name}: ${f.type}`),
    );
    const ids = [...t.getChild("frame_id")!];
    expect(ids).toEqual(parts.flatMap((p) => p.ids));
    // Row 6 is row 1 of the second part: every float comes back bit for bit.
    const dn = t.getChild("dnabert")!.get(6)!;
    const es = t.getChild("esm")!.get(6)!;
    expect(Float32Array.from(dn as unknown as Iterable<number>)).toEqual(parts[1].dnabert.subarray(768, 2 * 768));
    expect(Float32Array.from(es as unknown as Iterable<number>)).toEqual(parts[1].esm.subarray(2560, 2 * 2560));
  });

  test("float16 embeddings and in-memory part files", () => {
    const values = new Float32Array([0.5, -1.25, 3, 65504, 1e-3, 7, 0.1, -0]);
    const batch = embeddingsBatch({ frameId: ["a", "b"], dnabert: toFloat16Bits(values.subarray(0, 4)), esm: toFloat16Bits(values.subarray(4)) });
    const t = readIpc(ipcFileBytes(batch));
    expect(t.getChild("dnabert")!.type.toString()).toContain("Float16");
    expect([...(t.getChild("dnabert")!.get(0) as unknown as Iterable<number>)]).toEqual([0.5, -1.25]);
    expect([...(t.getChild("esm")!.get(1) as unknown as Iterable<number>)]).toEqual([Math.fround(0.0999755859375), -0]);
  });

  test("result parts round trip with nulls, and several batches keep their order", () => {
    const run = sampleRun(50, 3);
    const half = Math.floor(run.windows.numRows / 2);
    const bytes = ipcFileBytes([run.windows.slice(0, half), run.windows.slice(half)]);
    const t = readIpc(bytes);
    expect(t.numRows).toBe(run.windows.numRows);
    expect([...t.getChild("is_virus")!]).toEqual([...run.windows.getChild("is_virus")!]);
    expect([...t.getChild("max_score_virus")!]).toEqual([...run.windows.getChild("max_score_virus")!]);
    expect(t.getChild("is_virus")!.nullCount).toBe(run.windows.getChild("is_virus")!.nullCount);
    expect(sha256Hex(bytes)).toBe(sha256Hex(ipcFileBytes([run.windows.slice(0, half), run.windows.slice(half)])));
  });

  test("no rows: the file still has the schema", async () => {
    const dir = tempDir();
    const d = await writeIpcFile(join(dir, "p.arrow"), [], predictionsSchema);
    expect(d.rows).toBe(0);
    const t = readIpcFile(join(dir, "p.arrow"));
    expect(t.numRows).toBe(0);
    expect(t.schema.fields.map((f) => f.name)).toEqual(predictionsSchema.fields.map((f) => f.name));
    expect(readIpc(ipcFileBytes([], windowsSchema)).schema.fields.length).toBe(windowsSchema.fields.length);
    await expect(writeIpcFile(join(dir, "x.arrow"), [])).rejects.toThrow(/no schema/);
    expect(readdirSync(dir)).toEqual(["p.arrow"]);
  });

  test("a batch of another schema is refused and nothing is written", async () => {
    const dir = tempDir();
    const run = sampleRun(5, 1);
    await expect(writeIpcFile(join(dir, "w.arrow"), [run.windows, run.predictions])).rejects.toThrow(/does not match/);
    expect(readdirSync(dir)).toEqual([]);
  });

  test("a damaged file is a UserError naming it", () => {
    const dir = tempDir();
    const p = join(dir, "part-000001.predictions.arrow");
    writeFileSync(p, "not arrow at all");
    expect(() => readIpcFile(p)).toThrow(UserError);
    expect(() => readIpcFile(p)).toThrow(p);
    expect(() => readIpcFile(join(dir, "missing.arrow"))).toThrow(/cannot read/);
  });
});
