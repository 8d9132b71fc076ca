/**
 * `virnuc cohort --sample NAME=DIR ... -o OUT`: one table over the finished runs of many
 * samples (the workflow's gather step).
 *
 *   OUT/sequences.parquet     every sample's sequences.parquet rows, a `sample` column first
 *   OUT/predictions.parquet   the same for predictions.parquet
 *   OUT/cohort_summary.tsv    sample, reads, viral_sequences, viral_windows (one row a sample)
 *
 * Samples keep the order given, rows keep each run's order, so the same runs give the same
 * bytes. Runs are read one row group at a time: memory does not grow with the cohort.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import * as pq from "parquet-wasm";
import { Field, RecordBatch, Schema, Struct, Utf8, makeData, tableFromIPC, type Data } from "apache-arrow";
import { writeParquet } from "../output/parquet.ts";
import { writeFileAtomic } from "../output/atomic.ts";
import { UserError } from "../util/errors.ts";

export interface CohortSample {
  name: string;
  dir: string;
}

/** The tables gathered over the cohort (each sample's run must hold them). */
export const COHORT_TABLES = ["sequences", "predictions"] as const;
export const SUMMARY_FILE = "cohort_summary.tsv";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** `--sample NAME=DIR` values and plain DIR arguments (named by their last path component). */
export function parseSamples(dirs: string[] = [], sampleOpts: string | string[] | undefined): CohortSample[] {
  const out: CohortSample[] = [];
  const opts = sampleOpts === undefined ? [] : Array.isArray(sampleOpts) ? sampleOpts : [sampleOpts];
  for (const s of opts) {
    const eq = String(s).indexOf("=");
    if (eq <= 0 || eq === String(s).length - 1) throw new UserError(`--sample ${s}: expected NAME=DIR`);
    out.push({ name: String(s).slice(0, eq), dir: String(s).slice(eq + 1) });
  }
  for (const d of dirs) out.push({ name: basename(resolve(d)), dir: d });
  if (out.length === 0) throw new UserError("cohort: give the samples' run directories (--sample NAME=DIR, or DIR...)");
  const seen = new Set<string>();
  for (const s of out) {
    if (!NAME.test(s.name))
      throw new UserError(`cohort: sample name '${s.name}' must be letters, digits, '.', '_' or '-' (not starting with '.', '_' or '-')`);
    if (seen.has(s.name)) throw new UserError(`cohort: sample '${s.name}' is given twice`);
    seen.add(s.name);
  }
  return out;
}

/** A column holding one string n times. */
function constantUtf8(value: string, n: number): Data<Utf8> {
  const bytes1 = new TextEncoder().encode(value);
  const offsets = new Int32Array(n + 1);
  const bytes = new Uint8Array(bytes1.length * n);
  for (let i = 0; i < n; i++) {
    offsets[i + 1] = (i + 1) * bytes1.length;
    bytes.set(bytes1, i * bytes1.length);
  }
  return makeData({ type: new Utf8(), length: n, valueOffsets: offsets, data: bytes });
}

function describe(s: Schema): string {
  return s.fields.map((f) => `${f.name}: ${f.type}`).join(", ");
}

function sameColumns(a: Schema, b: Schema): boolean {
  return a.fields.length === b.fields.length && a.fields.every((f, i) => f.name === b.fields[i].name && String(f.type) === String(b.fields[i].type));
}

/** One sample's table, a row group at a time, as Arrow batches in the file's schema. */
async function openTable(
  path: string,
): Promise<{ schema: Schema; groups: number; read: (i: number) => Promise<RecordBatch[]>; close: () => void }> {
  let file: pq.ParquetFile;
  try {
    file = await pq.ParquetFile.fromFile(Bun.file(path));
  } catch (err) {
    throw new UserError(`${path}: not a readable Parquet file (${err instanceof Error ? err.message : String(err)}); rerun that sample`);
  }
  const groups = file.metadata().numRowGroups();
  return {
    schema: tableFromIPC(file.schema().intoIPCStream()).schema,
    groups,
    read: async (i) => tableFromIPC((await file.read({ rowGroups: [i], batchSize: 65536 })).intoIPCStream()).batches,
    close: () => file.free(),
  };
}

interface SampleCounts {
  reads: number;
  viralSequences: number;
  viralWindows: number;
}

export async function cohortCommand(dirs: string[], opts: { output?: string; sample?: string | string[] }): Promise<void> {
  if (!opts.output) throw new UserError("cohort: -o DIR is required");
  const samples = parseSamples(dirs, opts.sample);
  for (const s of samples) {
    if (!existsSync(s.dir) || !statSync(s.dir).isDirectory()) throw new UserError(`cohort: sample '${s.name}': ${s.dir} is not a directory`);
    for (const t of COHORT_TABLES)
      if (!existsSync(join(s.dir, `${t}.parquet`)))
        throw new UserError(`cohort: sample '${s.name}': ${join(s.dir, `${t}.parquet`)} is missing: is it a finished 'virnuc predict' (or 'virnuc merge') output?`);
  }
  const out = resolve(opts.output);
  for (const s of samples)
    if (resolve(s.dir) === out) throw new UserError(`cohort: -o ${opts.output} is the run directory of sample '${s.name}': choose another`);
  mkdirSync(out, { recursive: true });

  const counts = new Map<string, SampleCounts>(samples.map((s) => [s.name, { reads: 0, viralSequences: 0, viralWindows: 0 }]));
  for (const table of COHORT_TABLES) {
    const opened: { sample: CohortSample; table: Awaited<ReturnType<typeof openTable>> }[] = [];
    for (const s of samples) opened.push({ sample: s, table: await openTable(join(s.dir, `${table}.parquet`)) });
    const base = opened[0].table.schema;
    for (const o of opened.slice(1))
      if (!sameColumns(o.table.schema, base))
        throw new UserError(
          `cohort: ${join(o.sample.dir, `${table}.parquet`)} has other columns (${describe(o.table.schema)}) than ${join(opened[0].sample.dir, `${table}.parquet`)} (${describe(base)}): were the runs made by different virnuc versions?`,
        );
    if (base.fields.some((f) => f.name === "sample")) throw new UserError(`cohort: ${table}.parquet already has a 'sample' column`);
    const schema = new Schema([new Field("sample", new Utf8(), false), ...base.fields]);
    async function* rows(): AsyncGenerator<RecordBatch> {
      for (const o of opened) {
        const c = counts.get(o.sample.name)!;
        for (let g = 0; g < o.table.groups; g++)
          for (const b of await o.table.read(g)) {
            if (table === "sequences") tally(b, c);
            const children = [constantUtf8(o.sample.name, b.numRows), ...b.data.children];
            yield new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: b.numRows, children, nullCount: 0 }));
          }
      }
    }
    try {
      await writeParquet(join(out, `${table}.parquet`), rows(), schema);
    } finally {
      for (const o of opened) o.table.close();
    }
  }
  const lines = ["sample\treads\tviral_sequences\tviral_windows"];
  for (const s of samples) {
    const c = counts.get(s.name)!;
    lines.push(`${s.name}\t${c.reads}\t${c.viralSequences}\t${c.viralWindows}`);
  }
  writeFileAtomic(join(out, SUMMARY_FILE), lines.join("\n") + "\n");
}

/** Adds one sequences batch to a sample's counts. */
function tally(b: RecordBatch, c: SampleCounts): void {
  const call = b.getChild("call");
  const nViral = b.getChild("n_viral_windows");
  if (!call || !nViral) throw new UserError("cohort: sequences.parquet lacks the 'call' or 'n_viral_windows' column");
  c.reads += b.numRows;
  for (let i = 0; i < b.numRows; i++) {
    if (call.get(i) === "virus") c.viralSequences++;
    c.viralWindows += Number(nViral.get(i));
  }
}
