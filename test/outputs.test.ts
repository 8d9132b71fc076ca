/**
 * The analytics side of the outputs end to end (CPU backend, tiny random models): record_index
 * joins one-to-one with duplicate record ids across two inputs and several parts, the file
 * key-value metadata, run.json provenance, sequences.tsv, embeddings.parquet and embed's frames
 * table.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { ROOT, modelArgs, outputsOf, runCli, syntheticFasta, tempDir, tinyModels } from "./helpers.ts";

type Conn = Awaited<ReturnType<Awaited<ReturnType<typeof DuckDBInstance.create>>["connect"]>>;
let conn: Conn;
let db: Awaited<ReturnType<typeof DuckDBInstance.create>>;
const q = async (sql: string) => (await conn.runAndReadAll(sql)).getRows() as unknown[][];

const tmp: string[] = [];
let inputs: string[] = [];
let ids: string[] = [];
let pred = "";
let emb = "";
let embStderr = "";
const embedArgs = () => modelArgs().filter((a, i, all) => a !== "--classifier" && all[i - 1] !== "--classifier");

beforeAll(async () => {
  tinyModels();
  db = await DuckDBInstance.create(":memory:");
  conn = await db.connect();
  const dir = tempDir("outputs-in");
  tmp.push(dir);
  // Two inputs whose record ids repeat within and across the files.
  const raw = join(dir, "raw.fa");
  syntheticFasta(raw, 40, 420, 11);
  const recs = readFileSync(raw, "utf8").split(">").filter(Boolean).map((r) => r.slice(r.indexOf("\n") + 1));
  const fa = (from: number, to: number) =>
    recs
      .slice(from, to)
      .map((seq, i) => `>dup_${(from + i) % 6} read ${from + i}\n${seq}`)
      .join("");
  inputs = [join(dir, "a.fa"), join(dir, "b.fa")];
  writeFileSync(inputs[0], fa(0, 25));
  writeFileSync(inputs[1], fa(25, 40));
  ids = Array.from({ length: 40 }, (_, i) => `dup_${i % 6}`);
  pred = tempDir("outputs-pred");
  emb = tempDir("outputs-emb");
  tmp.push(pred, emb);
  const p = runCli(["predict", ...inputs, "-o", pred, "--chunk-size", "300", "--window-reads", "9", "--save-embeddings", "--embeddings-format", "parquet", "--no-progress", ...modelArgs()]);
  expect(p.stderr).not.toContain("error");
  expect(p.code).toBe(0);
  const e = runCli(["embed", ...inputs, "-o", emb, "--chunk-size", "300", "--window-reads", "16", "--embeddings-format", "parquet", "--embeddings-dtype", "float16", "--no-progress", ...embedArgs()]);
  expect(e.code).toBe(0);
  embStderr = e.stderr;
}, 120_000);

afterAll(() => {
  conn?.closeSync();
  db?.closeSync();
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

const P = (f: string) => join(pred, f);
const E = (f: string) => join(emb, f);

describe("record_index", () => {
  test("sequences: one row per input record, record_index = its ordinal over both inputs", async () => {
    const rows = await q(`select record_index::INT, sequence_id from '${P("sequences.parquet")}'`);
    expect(rows.map((r) => r[0])).toEqual([...Array(40).keys()]);
    expect(rows.map((r) => r[1])).toEqual(ids);
  });

  test("predictions, windows, sequences and embeddings.parquet join one-to-one on record_index with duplicate ids", async () => {
    const [[nPred]] = await q(`select count(*)::INT from '${P("predictions.parquet")}'`);
    expect(nPred as number).toBeGreaterThan(10);
    const [[joined, distinctKeys, badScores]] = await q(
      `select count(*)::INT, count(distinct (pr.record_index, pr.frame_id))::INT,
              count(*) filter (where w.max_score_virus < pr.score_virus)::INT
       from '${P("predictions.parquet")}' pr
       join '${P("sequences.parquet")}' s on s.record_index = pr.record_index
       join '${P("windows.parquet")}' w on w.record_index = pr.record_index and w.window_id = pr.window_id
       join '${P("embeddings.parquet")}' e on e.record_index = pr.record_index and e.frame_id = pr.frame_id`,
    );
    expect(joined).toBe(nPred);
    expect(distinctKeys).toBe(nPred);
    expect(badScores).toBe(0);
    // joining on the ids instead multiplies rows: the ids repeat
    const [[byId]] = await q(`select count(*)::INT from '${P("predictions.parquet")}' pr join '${P("sequences.parquet")}' s using (sequence_id)`);
    expect(byId as number).toBeGreaterThan(nPred as number);
    // every embedding row has its prediction
    const [[nEmb, orphans]] = await q(
      `select count(*)::INT, count(*) filter (where pr.frame_id is null)::INT
       from '${P("embeddings.parquet")}' e left join '${P("predictions.parquet")}' pr using (record_index, frame_id)`,
    );
    expect(nEmb).toBe(nPred);
    expect(orphans).toBe(0);
    // per-record counts agree between tables
    const [[mismatch]] = await q(
      `select count(*)::INT from '${P("sequences.parquet")}' s
       left join (select record_index, count(*) n from '${P("windows.parquet")}' group by 1) w using (record_index)
       where coalesce(w.n, 0) <> s.n_windows`,
    );
    expect(mismatch).toBe(0);
  });

  test("embeddings.parquet: FLOAT lists that cast to FLOAT[128] arrays (the tiny models' width)", async () => {
    const types = (await q(`describe select * from '${P("embeddings.parquet")}'`)).map((r) => `${r[0]} ${r[1]}`);
    expect(types).toEqual(["frame_id VARCHAR", "record_index BIGINT", "dnabert FLOAT[]", "esm FLOAT[]"]);
    const [[t, n]] = await q(`select typeof(esm::FLOAT[128]), len(esm)::INT from '${P("embeddings.parquet")}' limit 1`);
    expect([t, n]).toEqual(["FLOAT[128]", 128]);
  });
});

describe("file metadata and provenance", () => {
  test("every Parquet file carries the same virnuc key: version, chunk size, precision, model sha256s from run.json", async () => {
    const run = JSON.parse(readFileSync(P("run.json"), "utf8"));
    const values = new Set<string>();
    for (const f of ["predictions.parquet", "windows.parquet", "sequences.parquet", "embeddings.parquet"]) {
      const rows = await q(`select decode(key), decode(value) from parquet_kv_metadata('${P(f)}') where decode(key) = 'virnuc'`);
      expect(rows.length).toBe(1);
      values.add(rows[0][1] as string);
    }
    expect(values.size).toBe(1);
    const meta = JSON.parse([...values][0]);
    expect(meta.version).toBe(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version);
    expect(meta.chunk_size).toBe(300);
    expect(meta.precision).toBe("fp32");
    for (const role of ["esm", "dnabert", "classifier"])
      expect(meta.models[role].files.map((f: { sha256: string }) => f.sha256)).toEqual(run.models.files[role].map((f: { sha256: string }) => f.sha256));
    expect(meta.models.esm.name).toBe("esm"); // the tiny model's directory
  });

  test("run.json: version, commit, argv, inputs, libvirnuc build, machine", () => {
    const run = JSON.parse(readFileSync(P("run.json"), "utf8"));
    expect(run.virnuc.version).toBe(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version);
    const git = Bun.spawnSync(["git", "-C", ROOT, "rev-parse", "HEAD"], { stdout: "pipe", stderr: "ignore" });
    if (git.exitCode === 0) expect(run.virnuc.commit).toBe(git.stdout.toString().trim());
    else expect(run.virnuc.commit).toBeUndefined();
    expect(run.argv.slice(2, 6)).toEqual(["predict", inputs[0], inputs[1], "-o"]);
    expect(run.argv).toContain("--embeddings-format");
    expect(run.inputs.map((i: { path: string }) => i.path)).toEqual(inputs);
    expect(run.inputs[0].bytes).toBe(readFileSync(inputs[0]).byteLength);
    expect(run.libvirnuc.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(run.libvirnuc.backends.cpu).toBe(true);
    expect(run.machine.cpu.cores).toBeGreaterThan(0);
    expect(run.machine.memoryBytes).toBeGreaterThan(0);
    expect(run.embeddingsFormat).toBe("parquet");
    expect(Object.keys(run.outputs).sort()).toEqual(["embeddings.parquet", "predictions.parquet", "sequences.parquet", "sequences.tsv", "windows.parquet"]);
  });
});

describe("sequences.tsv", () => {
  test("the rows of sequences.parquet as text", async () => {
    const lines = readFileSync(P("sequences.tsv"), "utf8").split("\n");
    expect(lines[0]).toBe("sequence_id\trecord_index\tlength\tn_windows\tn_viral_windows\tmax_score_virus\tcall");
    expect(lines.length).toBe(40 + 2); // header, rows, final newline
    const [[diff]] = await q(
      `select count(*)::INT from (
         select * from read_csv('${P("sequences.tsv")}', delim='\t', header=true, columns={
           'sequence_id':'VARCHAR','record_index':'BIGINT','length':'BIGINT','n_windows':'INT','n_viral_windows':'INT','max_score_virus':'FLOAT','call':'VARCHAR'})
         except all select * from '${P("sequences.parquet")}')`,
    );
    expect(diff).toBe(0);
  });
});

describe("embed", () => {
  test("frames.parquet and embeddings.parquet join one-to-one; they are predict's frames", async () => {
    expect(existsSync(E("prediction_results.txt"))).toBe(false);
    expect(existsSync(E("embeddings.arrow"))).toBe(false);
    const [[nFrames, joined]] = await q(
      `select (select count(*) from '${E("frames.parquet")}')::INT, count(*)::INT
       from '${E("frames.parquet")}' f join '${E("embeddings.parquet")}' e using (record_index, frame_id)`,
    );
    expect(joined).toBe(nFrames);
    const cols = (await q(`describe select * from '${E("frames.parquet")}'`)).map((r) => r[0]);
    expect(cols).toEqual(["frame_id", "window_id", "sequence_id", "record_index", "window_index", "window_start", "window_end", "frame", "protein_length", "sequence_length"]);
    const shared = "record_index, frame_id, window_id, sequence_id, window_index, window_start, window_end, frame, protein_length";
    const [[a, b]] = await q(
      `select (select count(*) from (select ${shared} from '${E("frames.parquet")}' except all select ${shared} from '${P("predictions.parquet")}'))::INT,
              (select count(*) from (select ${shared} from '${P("predictions.parquet")}' except all select ${shared} from '${E("frames.parquet")}'))::INT`,
    );
    expect([a, b]).toEqual([0, 0]);
    const [[badLen]] = await q(`select count(*)::INT from '${E("frames.parquet")}' f join '${P("sequences.parquet")}' s using (record_index) where f.sequence_length <> s.length`);
    expect(badLen).toBe(0);
  });

  test("float16 with Parquet: one warning, float32 values", async () => {
    const warnings = embStderr.split("\n").filter((l) => l.includes("float32"));
    expect(warnings.length).toBe(1);
    const [[t]] = await q(`select typeof(dnabert[1]) from '${E("embeddings.parquet")}' limit 1`);
    expect(t).toBe("FLOAT");
    const [[item]] = await q(`select type from parquet_schema('${E("embeddings.parquet")}') where name = 'item' limit 1`);
    expect(item).toBe("FLOAT");
    const run = JSON.parse(readFileSync(E("run.json"), "utf8"));
    expect(Object.keys(run.outputs).sort()).toEqual(["embeddings.parquet", "frames.parquet"]);
  });

  test("the same bytes whatever the part size", () => {
    const other = tempDir("outputs-emb2");
    tmp.push(other);
    const r = runCli(["embed", ...inputs, "-o", other, "--chunk-size", "300", "--window-reads", "7", "--embeddings-format", "parquet", "--no-progress", ...embedArgs()]);
    expect(r.code).toBe(0);
    expect(outputsOf(other)).toEqual(outputsOf(emb));
  }, 60_000);
});
