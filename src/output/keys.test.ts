import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RECORD_INDEX, keyedSchema, predictionsKeyedSchema, recordIndexOfRows, sequencesKeyedSchema, windowsKeyedSchema, withRecordIndex } from "./keys.ts";
import { framesBatch, framesSchema } from "./frames.ts";
import { embeddingsBatch, predictionsBatch, sequencesBatch, windowsBatch, predictionsSchema } from "./schema.ts";
import { writeParquet } from "./parquet.ts";
import { frameIsVirus } from "../classify/calls.ts";
import { duckdbQueries } from "../../test/helpers.ts";
import { readIpc, ipcFileBytes } from "./arrowfile.ts";

/**
 * A small run whose record ids repeat: records "r", "r", "s", "r" (record_index 10..13, as in a
 * part that starts at record 10), 1-2 windows each, frames F1/R1 per window.
 */
function duplicateRun() {
  const ids = ["r", "r", "s", "r"];
  const recordIndex = [10, 11, 12, 13];
  const nWin = [2, 1, 1, 2];
  const win = { id: [] as string[], rec: [] as number[], k: [] as number[], start: [] as number[], end: [] as number[] };
  const fr = { id: [] as string[], win: [] as number[], frame: [] as string[], plen: [] as number[] };
  ids.forEach((id, r) => {
    for (let k = 1; k <= nWin[r]; k++) {
      const w = win.id.length;
      win.id.push(`${id}_chunk_${k}`);
      win.rec.push(r);
      win.k.push(k);
      win.start.push((k - 1) * 300);
      win.end.push(k * 300);
      for (const f of ["F1", "R1"]) {
        fr.id.push(`${id}_chunk_${k}${f}`);
        fr.win.push(w);
        fr.frame.push(f);
        fr.plen.push(99);
      }
    }
  });
  const frameWin = Int32Array.from(fr.win);
  const frameRec = Int32Array.from(fr.win, (w) => win.rec[w]);
  const n = fr.id.length;
  const scoreVirus = Float32Array.from({ length: n }, (_, i) => (i % 3) / 3);
  const scoreOthers = scoreVirus.map((v) => 1 - v);
  const predictions = withRecordIndex(
    predictionsBatch({
      frameId: fr.id,
      windowId: { values: win.id, index: frameWin },
      sequenceId: { values: ids, index: frameRec },
      windowIndex: Int32Array.from(fr.win, (w) => win.k[w]),
      windowStart: fr.win.map((w) => win.start[w]),
      windowEnd: fr.win.map((w) => win.end[w]),
      frame: fr.frame,
      proteinLength: Int32Array.from(fr.plen),
      scoreOthers,
      scoreVirus,
      isVirus: Uint8Array.from(scoreVirus, (v, i) => (frameIsVirus(scoreOthers[i], v) ? 1 : 0)),
    }),
    recordIndexOfRows(recordIndex, frameRec),
  );
  const windows = withRecordIndex(
    windowsBatch({
      windowId: win.id,
      sequenceId: { values: ids, index: Int32Array.from(win.rec) },
      windowIndex: Int32Array.from(win.k),
      windowStart: win.start,
      windowEnd: win.end,
      nFrames: new Int32Array(win.id.length).fill(2),
      maxScoreOthers: new Float32Array(win.id.length).fill(0.5),
      maxScoreVirus: new Float32Array(win.id.length).fill(0.25),
      isVirus: new Int8Array(win.id.length), // 0.25 < 0.5: others
    }),
    recordIndexOfRows(recordIndex, win.rec),
  );
  const sequences = withRecordIndex(
    sequencesBatch({
      sequenceId: ids,
      length: nWin.map((w) => w * 300),
      nWindows: Int32Array.from(nWin),
      nViralWindows: new Int32Array(4),
      maxScoreVirus: new Float32Array(4).fill(0.25),
      call: new Int8Array(4),
    }),
    recordIndex,
  );
  const dim = 4;
  const embeddings = withRecordIndex(
    embeddingsBatch({
      frameId: fr.id,
      dnabert: Float32Array.from({ length: n * dim }, (_, i) => i),
      esm: Float32Array.from({ length: n * dim * 2 }, (_, i) => -i),
      dnabertDim: dim,
      esmDim: dim * 2,
    }),
    recordIndexOfRows(recordIndex, frameRec),
  );
  return { ids, recordIndex, predictions, windows, sequences, embeddings, frames: fr.id.length };
}

describe("record_index columns", () => {
  test("inserted after sequence_id (after frame_id in embeddings), int64, not null, other columns shared", () => {
    const run = duplicateRun();
    const names = (b: { schema: { fields: { name: string }[] } }) => b.schema.fields.map((f) => f.name);
    expect(names(run.predictions).slice(0, 4)).toEqual(["frame_id", "window_id", "sequence_id", RECORD_INDEX]);
    expect(names(run.windows).slice(0, 3)).toEqual(["window_id", "sequence_id", RECORD_INDEX]);
    expect(names(run.sequences).slice(0, 2)).toEqual(["sequence_id", RECORD_INDEX]);
    expect(names(run.embeddings)).toEqual(["frame_id", RECORD_INDEX, "dnabert", "esm"]);
    expect(String(run.predictions.schema)).toBe(String(predictionsKeyedSchema));
    expect(String(run.windows.schema)).toBe(String(windowsKeyedSchema));
    expect(String(run.sequences.schema)).toBe(String(sequencesKeyedSchema));
    const f = run.predictions.schema.fields[3];
    expect(String(f.type)).toBe("Int64");
    expect(f.nullable).toBe(false);
    expect(Array.from(run.sequences.getChild(RECORD_INDEX)!.toArray() as BigInt64Array, Number)).toEqual([10, 11, 12, 13]);
    // frames of records 0 and 1 ("r" both) keep their own index
    const ri = Array.from(run.predictions.getChild(RECORD_INDEX)!.toArray() as BigInt64Array, Number);
    expect(ri).toEqual([10, 10, 10, 10, 11, 11, 12, 12, 13, 13, 13, 13]);
    // the scores column is the builder's, not a copy
    const plain = predictionsBatch({
      frameId: ["a"], windowId: ["w"], sequenceId: ["s"], windowIndex: Int32Array.of(1), windowStart: [0], windowEnd: [3],
      frame: ["F1"], proteinLength: Int32Array.of(1), scoreOthers: Float32Array.of(0.5), scoreVirus: Float32Array.of(0.5),
      isVirus: Uint8Array.of(0),
    });
    const keyed = withRecordIndex(plain, [7]);
    expect(keyed.getChild("score_virus")!.data[0]).toBe(plain.getChild("score_virus")!.data[0]);
    // Arrow IPC round trip keeps the column
    const back = readIpc(ipcFileBytes(run.windows));
    expect(Array.from(back.getChild(RECORD_INDEX)!.toArray() as BigInt64Array, Number)).toEqual([10, 10, 11, 12, 13, 13]);
  });

  test("bad record_index columns are refused", () => {
    const run = duplicateRun();
    const base = sequencesBatch({ sequenceId: ["a", "b"], length: [1, 2], nWindows: new Int32Array(2), nViralWindows: new Int32Array(2), maxScoreVirus: new Float32Array(2).fill(NaN), call: Int8Array.of(-1, -1) });
    expect(() => withRecordIndex(base, [0])).toThrow(/1 values for 2 rows/);
    expect(() => withRecordIndex(base, [0, -1])).toThrow(/negative/);
    expect(() => withRecordIndex(base, [0, 1.5])).toThrow(/whole number/);
    expect(() => withRecordIndex(run.sequences, [0, 1, 2, 3])).toThrow(/already has record_index/);
    expect(() => recordIndexOfRows([5, 6], [0, 2])).toThrow(/record 2 of 2/);
    expect(keyedSchema(predictionsSchema)).toBe(predictionsKeyedSchema);
  });

  test("frames table: predictions' frame columns, record_index and the record length", () => {
    const b = framesBatch({
      frameId: ["x_chunk_1F1", "x_chunk_1R2", "x_chunk_1F1"],
      windowId: { values: ["x_chunk_1"], index: Int32Array.of(0, 0, 0) },
      sequenceId: ["x", "x", "x"],
      recordIndex: [0, 0, 1],
      windowIndex: Int32Array.of(1, 1, 1),
      windowStart: [0, 0, 0],
      windowEnd: [300, 300, 250],
      frame: ["F1", "R2", "F1"],
      proteinLength: Int32Array.of(100, 99, 83),
      sequenceLength: [300, 300, 250],
    });
    expect(String(b.schema)).toBe(String(framesSchema));
    expect(b.schema.fields.map((f) => f.name)).toEqual([
      "frame_id", "window_id", "sequence_id", RECORD_INDEX, "window_index", "window_start", "window_end", "frame", "protein_length", "sequence_length",
    ]);
    const rows = b.toArray().map((r) => r.toJSON());
    expect(rows[1]).toMatchObject({ frame_id: "x_chunk_1R2", window_id: "x_chunk_1", frame: "R2", protein_length: 99, record_index: 0n, sequence_length: 300n });
    expect(rows[2]).toMatchObject({ record_index: 1n, window_end: 250n });
    expect(() => framesBatch({
      frameId: ["a"], windowId: ["w"], sequenceId: ["s"], recordIndex: [0], windowIndex: Int32Array.of(1), windowStart: [0], windowEnd: [3],
      frame: ["F1"], proteinLength: Int32Array.of(1), sequenceLength: [1, 2],
    })).toThrow(/sequence_length: 2 rows, expected 1/);
  });
});

describe("DuckDB joins on record_index with duplicate ids", () => {
  const q = duckdbQueries();
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "virnuc-keys-"));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test("predictions, windows, sequences and embeddings join one-to-one; sequence_id would not", async () => {
    const run = duplicateRun();
    const p = (t: string) => join(dir, `${t}.parquet`);
    for (const t of ["predictions", "windows", "sequences", "embeddings"] as const) await writeParquet(p(t), run[t], run[t].schema);
    expect((await q(`select column_type from (describe select record_index from '${p("embeddings")}')`)).flat()).toEqual(["BIGINT"]);
    // every prediction meets exactly one sequence row and one embedding row
    const [[nPred, nJoined, nKeys]] = await q(
      `select (select count(*) from '${p("predictions")}')::INT,
              count(*)::INT,
              count(distinct (pr.record_index, pr.frame_id))::INT
       from '${p("predictions")}' pr
       join '${p("sequences")}' s using (record_index)
       join '${p("embeddings")}' e on e.record_index = pr.record_index and e.frame_id = pr.frame_id
       join '${p("windows")}' w on w.record_index = pr.record_index and w.window_id = pr.window_id`,
    );
    expect(nJoined).toBe(run.frames);
    expect(nPred).toBe(run.frames);
    expect(nKeys).toBe(run.frames);
    // the same join on the ids multiplies rows (records 0, 1 and 3 are all "r")
    const [[byId]] = await q(`select count(*)::INT from '${p("predictions")}' pr join '${p("sequences")}' s using (sequence_id)`);
    expect(byId).toBeGreaterThan(run.frames);
    // keys are unique in the tables that are one row per record / per window per record
    const [[seqKeys, seqRows]] = await q(`select count(distinct record_index)::INT, count(*)::INT from '${p("sequences")}'`);
    expect(seqKeys).toBe(seqRows);
    // an embedding value arrives on the right prediction row
    const [[v]] = await q(
      `select e.dnabert[1]::INT from '${p("predictions")}' pr join '${p("embeddings")}' e using (record_index, frame_id)
       where pr.record_index = 11 and pr.frame = 'R1'`,
    );
    expect(v).toBe(5 * 4); // frame row 5 (record 11's R1), dnabert width 4
  });
});
