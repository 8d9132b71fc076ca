import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TsvWriter } from "./tsv.ts";
import { embeddingsBatch, sequencesBatch, windowsBatch } from "./schema.ts";
import { sequencesKeyedSchema, withRecordIndex } from "./keys.ts";
import { writeParquet } from "./parquet.ts";
import { sampleRun } from "./testdata.ts";
import { duckdbQueries } from "../../test/helpers.ts";
import { sha256File } from "./arrowfile.ts";

const dirs: string[] = [];
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), "virnuc-tsv-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function sequences() {
  return withRecordIndex(
    sequencesBatch({
      sequenceId: ["r1", "r1", "ré", "z"],
      length: [300, 2 ** 40, 5, 0],
      nWindows: Int32Array.of(1, 3, 1, 0),
      nViralWindows: Int32Array.of(1, 0, 0, 0),
      maxScoreVirus: Float32Array.of(0.9, 1e-5, NaN, NaN),
      call: Int8Array.of(1, 0, -1, -1),
    }),
    [0, 1, 2, 3],
  );
}

describe("TSV tables", () => {
  test("header, columns in order, numpy float32 text, empty nulls, true/false", () => {
    const dir = temp();
    const w = new TsvWriter(join(dir, "sequences.tsv"), sequencesKeyedSchema);
    const b = sequences();
    w.add(b.slice(0, 1));
    w.add(b.slice(1));
    const d = w.close();
    const text = readFileSync(join(dir, "sequences.tsv"), "utf8");
    expect(text).toBe(
      [
        "sequence_id\trecord_index\tlength\tn_windows\tn_viral_windows\tmax_score_virus\tcall",
        "r1\t0\t300\t1\t1\t0.9\tvirus",
        "r1\t1\t1099511627776\t3\t0\t1e-05\tothers",
        "ré\t2\t5\t1\t0\t\t",
        "z\t3\t0\t0\t0\t\t",
        "",
      ].join("\n"),
    );
    expect(d.rows).toBe(4);
    expect(d.bytes).toBe(Buffer.byteLength(text));
    expect(d.sha256).toBe(sha256File(join(dir, "sequences.tsv")));
    // booleans and nulls of windows.parquet's kind
    const wb = windowsBatch({
      windowId: ["a_chunk_1", "a_chunk_2"], sequenceId: ["a", "a"], windowIndex: Int32Array.of(1, 2), windowStart: [0, 300], windowEnd: [300, 600],
      nFrames: Int32Array.of(2, 0), maxScoreOthers: Float32Array.of(0.25, 0), maxScoreVirus: Float32Array.of(0.75, 0),
      isVirus: Int8Array.of(1, -1),
    });
    const ww = new TsvWriter(join(dir, "w.tsv"), wb.schema);
    ww.add(wb);
    ww.close();
    expect(readFileSync(join(dir, "w.tsv"), "utf8").split("\n").slice(1, 3)).toEqual(["a_chunk_1\ta\t1\t0\t300\t2\t0.25\t0.75\ttrue", "a_chunk_2\ta\t2\t300\t600\t0\t\t\t"]);
    // slices: booleans and validity read at the slice's bit offset
    const w3 = windowsBatch({
      windowId: ["x1", "x2", "x3"], sequenceId: ["x", "x", "x"], windowIndex: Int32Array.of(1, 2, 3), windowStart: [0, 1, 2], windowEnd: [1, 2, 3],
      nFrames: Int32Array.of(1, 0, 1), maxScoreOthers: Float32Array.of(0.9, 0, 0.1), maxScoreVirus: Float32Array.of(0.1, 0, 0.9),
      isVirus: Int8Array.of(0, -1, 1),
    });
    const ws = new TsvWriter(join(dir, "ws.tsv"), w3.schema);
    ws.add(w3.slice(1));
    ws.close();
    expect(readFileSync(join(dir, "ws.tsv"), "utf8").split("\n").slice(1, 3)).toEqual(["x2\tx\t2\t1\t2\t0\t\t\t", "x3\tx\t3\t2\t3\t1\t0.1\t0.9\ttrue"]);
  });

  test("no rows: the header alone; refused values leave no file", () => {
    const dir = temp();
    const w = new TsvWriter(join(dir, "e.tsv"), sequencesKeyedSchema);
    w.close();
    expect(readFileSync(join(dir, "e.tsv"), "utf8")).toBe("sequence_id\trecord_index\tlength\tn_windows\tn_viral_windows\tmax_score_virus\tcall\n");
    const bad = new TsvWriter(join(dir, "bad.tsv"), sequencesKeyedSchema);
    const tab = withRecordIndex(
      sequencesBatch({ sequenceId: ["a\tb"], length: [1], nWindows: Int32Array.of(0), nViralWindows: Int32Array.of(0), maxScoreVirus: Float32Array.of(NaN), call: Int8Array.of(-1) }),
      [0],
    );
    expect(() => bad.add(tab)).toThrow(/tab or line break/);
    bad.abort();
    expect(() => bad.add(sequencesBatch({ sequenceId: ["a"], length: [1], nWindows: Int32Array.of(0), nViralWindows: Int32Array.of(0), maxScoreVirus: Float32Array.of(NaN), call: Int8Array.of(-1) }))).toThrow(/not the table's/);
    expect(readdirSync(dir)).toEqual(["e.tsv"]);
    const emb = embeddingsBatch({ frameId: ["f"], dnabert: new Float32Array(2), esm: new Float32Array(2), dnabertDim: 2, esmDim: 2 });
    expect(() => new TsvWriter(join(dir, "x.tsv"), emb.schema)).toThrow(/not written as text/);
    expect(existsSync(join(dir, "x.tsv"))).toBe(false);
  });
});

describe("TSV against its Parquet twin in DuckDB", () => {
  const q = duckdbQueries();

  test("read_csv of the TSV equals the Parquet rows (float32 text reads back exactly)", async () => {
    const dir = temp();
    const run = sampleRun(200, 5);
    const rows = run.sequences.numRows;
    const keyed = withRecordIndex(run.sequences, Float64Array.from({ length: rows }, (_, i) => i));
    await writeParquet(join(dir, "s.parquet"), keyed, sequencesKeyedSchema);
    const w = new TsvWriter(join(dir, "s.tsv"), sequencesKeyedSchema);
    w.add(keyed);
    w.close();
    const tsv = join(dir, "s.tsv");
    const pq = join(dir, "s.parquet");
    const [[diff, n, nulls]] = await q(
        `with t as (select * from read_csv('${tsv}', delim='\t', header=true, columns={
           'sequence_id':'VARCHAR','record_index':'BIGINT','length':'BIGINT','n_windows':'INT','n_viral_windows':'INT','max_score_virus':'FLOAT','call':'VARCHAR'}))
         select (select count(*) from (select * from t except all select * from '${pq}'))::INT, (select count(*) from t)::INT,
                (select count(*) from t where call is null)::INT`,
    );
    expect(n).toBe(rows);
    expect(diff).toBe(0);
    const [[pqNulls]] = await q(`select count(*)::INT from '${pq}' where call is null`);
    expect(pqNulls as number).toBeGreaterThan(0);
    expect(nulls).toBe(pqNulls);
  });
});
