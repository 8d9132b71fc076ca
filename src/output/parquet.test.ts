import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RecordBatch } from "apache-arrow";
import { sha256File } from "./arrowfile.ts";
import { readParquet, writeParquet } from "./parquet.ts";
import { predictionsSchema, sequencesSchema, windowsSchema } from "./schema.ts";
import { sampleRun } from "./testdata.ts";

type Conn = { runAndReadAll(sql: string): Promise<{ getRows(): unknown[][]; columnNames(): string[] }> };
let conn: Conn;
let closeDb: () => void = () => {};

beforeAll(async () => {
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const db = await DuckDBInstance.create(":memory:");
  const c = await db.connect();
  conn = c as unknown as Conn;
  closeDb = () => {
    c.closeSync();
    db.closeSync();
  };
});
afterAll(() => closeDb());

async function rows(sql: string): Promise<unknown[][]> {
  return (await conn.runAndReadAll(sql)).getRows();
}

/** DESCRIBE as [name, type] pairs. */
async function describeFile(path: string): Promise<[string, string][]> {
  return (await rows(`describe select * from '${path}'`)).map((r) => [r[0] as string, r[1] as string]);
}

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "virnuc-parquet-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Cut a batch into pieces of the given sizes (cycled). */
function pieces(batch: RecordBatch, sizes: number[]): RecordBatch[] {
  const out: RecordBatch[] = [];
  let at = 0;
  for (let i = 0; at < batch.numRows; i++) {
    const n = Math.min(sizes[i % sizes.length], batch.numRows - at);
    out.push(batch.slice(at, at + n));
    at += n;
  }
  return out;
}

describe("writeParquet read back by DuckDB", () => {
  const run = sampleRun(300, 7);

  test("predictions: types, row count and values", async () => {
    const dir = tempDir();
    const path = join(dir, "predictions.parquet");
    const d = await writeParquet(path, run.predictions, predictionsSchema);
    expect(d.rows).toBe(run.predictions.numRows);
    expect(d.bytes).toBe(statSync(path).size);
    expect(d.sha256).toBe(sha256File(path));
    expect(readdirSync(dir)).toEqual(["predictions.parquet"]);
    expect(await describeFile(path)).toEqual([
      ["frame_id", "VARCHAR"],
      ["window_id", "VARCHAR"],
      ["sequence_id", "VARCHAR"],
      ["window_index", "INTEGER"],
      ["window_start", "BIGINT"],
      ["window_end", "BIGINT"],
      ["frame", "VARCHAR"],
      ["protein_length", "INTEGER"],
      ["score_others", "FLOAT"],
      ["score_virus", "FLOAT"],
      ["prediction", "VARCHAR"],
    ]);
    const got = await rows(`select * from '${path}'`);
    expect(got.length).toBe(run.predictions.numRows);
    for (let i = 0; i < got.length; i += 37) {
      const r = got[i];
      expect(r[0]).toBe(run.frameIds[i]);
      expect(r[1]).toBe(run.frameIds[i].slice(0, -2));
      expect(r[2]).toBe((r[1] as string).replace(/_chunk_\d+$/, ""));
      expect(r[3]).toBe(Number(/_chunk_(\d+)$/.exec(r[1] as string)![1]));
      expect(r[5] as bigint).toBe((r[4] as bigint) + 500n);
      expect(r[6]).toBe(run.frameIds[i].slice(-2));
      expect(r[8]).toBe(run.scoreOthers[i]);
      expect(r[9]).toBe(run.scoreVirus[i]);
      expect(r[10]).toBe(run.scoreVirus[i] > run.scoreOthers[i] ? "virus" : "others");
    }
    const [[virus]] = await rows(`select count(*) from '${path}' where prediction = 'virus'`);
    let want = 0;
    for (let i = 0; i < run.scoreVirus.length; i++) if (run.scoreVirus[i] > run.scoreOthers[i]) want++;
    expect(Number(virus)).toBe(want);
  });

  test("windows and sequences: nulls and booleans", async () => {
    const dir = tempDir();
    const wp = join(dir, "windows.parquet");
    const sp = join(dir, "sequences.parquet");
    await writeParquet(wp, run.windows, windowsSchema);
    await writeParquet(sp, run.sequences, sequencesSchema);
    expect(await describeFile(wp)).toEqual([
      ["window_id", "VARCHAR"],
      ["sequence_id", "VARCHAR"],
      ["window_index", "INTEGER"],
      ["window_start", "BIGINT"],
      ["window_end", "BIGINT"],
      ["n_frames", "INTEGER"],
      ["max_score_others", "FLOAT"],
      ["max_score_virus", "FLOAT"],
      ["is_virus", "BOOLEAN"],
    ]);
    expect(await describeFile(sp)).toEqual([
      ["sequence_id", "VARCHAR"],
      ["length", "BIGINT"],
      ["n_windows", "INTEGER"],
      ["n_viral_windows", "INTEGER"],
      ["max_score_virus", "FLOAT"],
      ["call", "VARCHAR"],
    ]);
    const [[n, empty, nullCalls, badNulls, badCalls]] = await rows(
      `select count(*), count(*) filter (n_frames = 0), count(*) filter (is_virus is null),
              count(*) filter ((n_frames = 0) <> (max_score_virus is null)),
              count(*) filter (n_frames > 0 and is_virus <> (max_score_virus >= max_score_others))
       from '${wp}'`,
    );
    expect(Number(n)).toBe(run.windows.numRows);
    expect(Number(empty)).toBeGreaterThan(0);
    expect(Number(nullCalls)).toBe(Number(empty));
    expect(Number(badNulls)).toBe(0);
    expect(Number(badCalls)).toBe(0);
    // sequences agree with their windows
    const [[mismatch, seqs]] = await rows(
      `with w as (select sequence_id, count(*) nw, count(*) filter (is_virus) nv, max(max_score_virus) mx
                  from '${wp}' group by sequence_id)
       select count(*) filter (s.n_windows <> w.nw or s.n_viral_windows <> w.nv
                               or s.max_score_virus is distinct from w.mx
                               or s.call is distinct from (case when w.mx is null then null
                                                                when w.nv > 0 then 'virus' else 'others' end)),
              count(*)
       from '${sp}' s join w using (sequence_id)`,
    );
    expect(Number(mismatch)).toBe(0);
    expect(Number(seqs)).toBe(300);
  });

  test("same rows give the same bytes whatever the batching; row groups are bounded", async () => {
    const dir = tempDir();
    const a = await writeParquet(join(dir, "a.parquet"), run.predictions, predictionsSchema, { rowGroupSize: 64 });
    const b = await writeParquet(join(dir, "b.parquet"), pieces(run.predictions, [5, 100, 1, 63]), predictionsSchema, {
      rowGroupSize: 64,
    });
    async function* slowly() {
      for (const p of pieces(run.predictions, [17])) {
        await Bun.sleep(0);
        yield p;
      }
    }
    const c = await writeParquet(join(dir, "c.parquet"), slowly(), predictionsSchema, { rowGroupSize: 64 });
    expect(b.sha256).toBe(a.sha256);
    expect(c.sha256).toBe(a.sha256);
    const groups = await rows(
      `select row_group_id, max(row_group_num_rows) from parquet_metadata('${join(dir, "a.parquet")}') group by 1 order by 1`,
    );
    const n = run.predictions.numRows;
    expect(groups.length).toBe(Math.ceil(n / 64));
    expect(groups.slice(0, -1).every((g) => Number(g[1]) === 64)).toBe(true);
    const [[codec]] = await rows(`select distinct compression from parquet_metadata('${join(dir, "a.parquet")}')`);
    expect(codec).toBe("ZSTD");
    // and it is the same data as the unsplit file
    const [[diff]] = await rows(
      `select count(*) from (select * from '${join(dir, "a.parquet")}' except all select * from '${join(dir, "b.parquet")}')`,
    );
    expect(Number(diff)).toBe(0);
  });

  test("an empty source gives a zero-row file with the schema", async () => {
    const dir = tempDir();
    const path = join(dir, "windows.parquet");
    const d = await writeParquet(path, [], windowsSchema);
    expect(d.rows).toBe(0);
    expect((await describeFile(path)).map((c) => c[0])).toEqual(windowsSchema.fields.map((f) => f.name));
    expect(await rows(`select count(*) from '${path}'`)).toEqual([[0n]]);
  });

  test("snappy option, read back with parquet-wasm", async () => {
    const dir = tempDir();
    const path = join(dir, "s.parquet");
    await writeParquet(path, run.sequences, sequencesSchema, { compression: "snappy" });
    const [[codec]] = await rows(`select distinct compression from parquet_metadata('${path}')`);
    expect(codec).toBe("SNAPPY");
    const t = readParquet(readFileSync(path));
    expect(t.numRows).toBe(300);
    expect([...t.getChild("call")!].slice(0, 5)).toEqual([...run.sequences.getChild("call")!].slice(0, 5));
  });

  test("a failing source or a wrong schema leaves no file behind", async () => {
    const dir = tempDir();
    async function* broken() {
      yield run.predictions.slice(0, 10);
      throw new Error("encoder failed");
    }
    await expect(writeParquet(join(dir, "p.parquet"), broken(), predictionsSchema)).rejects.toThrow("encoder failed");
    await expect(writeParquet(join(dir, "w.parquet"), run.windows, predictionsSchema)).rejects.toThrow(/does not match/);
    expect(readdirSync(dir)).toEqual([]);
  });
});
