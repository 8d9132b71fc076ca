import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assembleOutputs } from "./assemble.ts";
import { prewarmParquetThread } from "./parquet-thread.ts";
import { PartStore, type RunState } from "./store.ts";
import { ipcFileBytes } from "../output/arrowfile.ts";
import { withRecordIndex } from "../output/keys.ts";
import { readParquet } from "../output/parquet.ts";
import { META_KEY, parseFileMetadata } from "../output/filemeta.ts";
import { sampleRun } from "../output/testdata.ts";
import { UserError } from "../util/errors.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const state: RunState = {
  version: 1,
  command: "predict",
  inputs: [{ path: "/in/a.fa", bytes: 1 }],
  chunkSize: 500,
  windowReads: 100,
  precision: "fp16",
  saveEmbeddings: false,
  embeddingsDtype: "float32",
  models: { esm: [{ path: "/m/models--facebook--esm2_t36_3B_UR50D/snapshots/r/model.safetensors", sha256: "a".repeat(64) }] },
};

/** A one-part run dir whose part tables have (or lack, as an earlier virnuc wrote them) record_index. */
function runDir(keyed: boolean, extraWindows = 0) {
  const dir = mkdtempSync(join(tmpdir(), "virnuc-assemble-"));
  dirs.push(dir);
  const store = new PartStore(dir);
  store.open(state, { resume: false, force: true });
  const run = sampleRun(20, 4);
  const key = (b: typeof run.predictions, idx: ArrayLike<number>) => (keyed ? withRecordIndex(b, Array.from(idx)) : b);
  // sampleRun's ids are read_<r>: r is the record's index
  const rec = (t: typeof run.predictions) => (t.getChild("sequence_id")!.toArray() as unknown as string[]).map((s) => Number(s.slice(5)));
  store.writePart(
    { part: 0, firstRecord: 0, records: run.sequences.numRows, windows: run.windows.numRows + extraWindows, frames: run.predictions.numRows, inputHash: "0" },
    [
      { suffix: "predictions.arrow", data: ipcFileBytes(key(run.predictions, rec(run.predictions))) },
      { suffix: "windows.arrow", data: ipcFileBytes(key(run.windows, rec(run.windows))) },
      { suffix: "sequences.arrow", data: ipcFileBytes(key(run.sequences, rec(run.sequences))) },
    ],
  );
  return { dir, store, run };
}

const opts = { classify: true, keepEmbeddings: false, totalParts: 1, runInfo: () => ({ command: "predict" }) };

describe("assembleOutputs", () => {
  test("parts with record_index: Parquet with the run's metadata, sequences.tsv, run.json outputs", async () => {
    const { dir, store, run } = runDir(true);
    await assembleOutputs(dir, [{ store, parts: [0] }], opts);
    const seq = readParquet(readFileSync(join(dir, "sequences.parquet")));
    expect(seq.schema.fields[1].name).toBe("record_index");
    expect(seq.numRows).toBe(run.sequences.numRows);
    const tsv = readFileSync(join(dir, "sequences.tsv"), "utf8").trimEnd().split("\n");
    expect(tsv.length).toBe(run.sequences.numRows + 1);
    expect(tsv[1].split("\t").slice(0, 2)).toEqual(["read_0", "0"]);
    const out = JSON.parse(readFileSync(join(dir, "run.json"), "utf8"));
    expect(Object.keys(out.outputs).sort()).toEqual(["predictions.parquet", "sequences.parquet", "sequences.tsv", "windows.parquet"]);
    // the metadata comes from the run's state
    const { DuckDBInstance } = await import("@duckdb/node-api");
    const db = await DuckDBInstance.create(":memory:");
    const c = await db.connect();
    try {
      const [[value]] = (await c.runAndReadAll(`select decode(value) from parquet_kv_metadata('${join(dir, "windows.parquet")}') where decode(key) = '${META_KEY}'`)).getRows();
      const meta = parseFileMetadata(new Map([[META_KEY, value as string]]))!;
      expect(meta.chunk_size).toBe(500);
      expect(meta.precision).toBe("fp16");
      expect(meta.models.esm).toEqual({ name: "facebook/esm2_t36_3B_UR50D", files: [{ file: "model.safetensors", sha256: "a".repeat(64) }] });
    } finally {
      c.closeSync();
      db.closeSync();
    }
  });

  test("parts written without record_index (an earlier virnuc) are refused with what to do", async () => {
    const { dir, store } = runDir(false);
    await expect(assembleOutputs(dir, [{ store, parts: [0] }], opts)).rejects.toThrow(/earlier virnuc \(no record_index\): start over with --force/);
    expect(existsSync(join(dir, "predictions.parquet"))).toBe(false);
    expect(existsSync(join(dir, "sequences.tsv"))).toBe(false);
    expect(readdirSync(dir)).toEqual([".virnuc"]); // no partial or temporary files
  });
});

describe("assembleOutputs: Parquet files on a second thread", () => {
  const finalFiles = (dir: string) =>
    Object.fromEntries(
      readdirSync(dir)
        .filter((f) => !f.startsWith(".") && f !== "run.json")
        .sort()
        .map((f) => [f, new Bun.CryptoHasher("sha256").update(readFileSync(join(dir, f))).digest("hex")]),
    );

  test("the same bytes on this thread, one thread (started ahead or not), or one thread per file; the same run.json outputs", async () => {
    const written = [];
    for (const [parquetThreads, warm] of [[0, false], [1, false], [3, false], [1, true]] as const) {
      const r = runDir(true);
      if (warm) prewarmParquetThread(); // as predict does while the parts are computed
      await assembleOutputs(r.dir, [{ store: r.store, parts: [0] }], { ...opts, parquetThreads });
      written.push({ files: finalFiles(r.dir), outputs: JSON.parse(readFileSync(join(r.dir, "run.json"), "utf8")).outputs });
    }
    expect(Object.keys(written[0].files)).toEqual([
      "prediction_results.txt",
      "prediction_results_highestscore.csv",
      "predictions.parquet",
      "sequences.parquet",
      "sequences.tsv",
      "windows.parquet",
    ]);
    expect(Object.keys(written[0].outputs).sort()).toEqual(["predictions.parquet", "sequences.parquet", "sequences.tsv", "windows.parquet"]);
    for (const name of Object.keys(written[0].outputs)) expect(written[0].outputs[name].sha256).toBe(written[0].files[name]);
    expect(written[1]).toEqual(written[0]);
    expect(written[2]).toEqual(written[0]);
    expect(written[3]).toEqual(written[0]);
  });

  test("a part the thread alone reads (windows) that is bad: the thread's error, as the one line it would be on one thread", async () => {
    // the manifest says the windows table has one more row than it holds: only the Parquet thread reads it
    const { dir, store } = runDir(true, 1);
    for (const parquetThreads of [1, 3]) {
      const err = await assembleOutputs(dir, [{ store, parts: [0] }], { ...opts, parquetThreads }).catch((e) => e);
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toMatch(/^part 0: windows has \d+ rows, its manifest says \d+$/);
      expect(existsSync(join(dir, "run.json"))).toBe(false);
      expect(readdirSync(dir).filter((f) => f.startsWith(".") && f !== ".virnuc")).toEqual([]); // no temporary files
    }
  });
});
