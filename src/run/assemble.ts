/**
 * Final outputs from finished parts, in input order: the VirNucPro text files,
 * predictions/windows/sequences.parquet and sequences.tsv (predict), frames.parquet (embed),
 * embeddings.arrow or .parquet, and run.json. Parquet and Arrow files carry the run's key-value
 * metadata (output/filemeta.ts). Every part must be
 * present exactly once; the outputs are a pure function of the parts (so a resumed run writes
 * the same bytes as an uninterrupted one).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { RecordBatch, Schema } from "apache-arrow";
import { CompatWriter } from "../output/compat.ts";
import { writeParquet } from "../output/parquet.ts";
import { readIpc } from "../output/arrowfile.ts";
import { writeRunJson } from "../output/runjson.ts";
import { onFile, writeFileAtomic } from "../output/atomic.ts";
import { predictionsKeyedSchema, windowsKeyedSchema, sequencesKeyedSchema, RECORD_INDEX } from "../output/keys.ts";
import { framesSchema } from "../output/frames.ts";
import { fileMetadata } from "../output/filemeta.ts";
import { TsvWriter } from "../output/tsv.ts";
import { type EmbeddingsFormat, emptyEmbeddingsSchema, writeEmbeddings } from "../output/embeddings.ts";
import { UserError } from "../util/errors.ts";
import { STATE_DIR, type PartStore, type PartEntry } from "./store.ts";
import type { StopControl } from "./stop.ts";

export interface CompletionInfo {
  totalParts: number;
  totalRecords: number;
  frames: number;
  windows: number;
  finishedAt: string;
}

export interface AssembleOptions {
  classify: boolean;
  keepEmbeddings: boolean;
  /** embeddings.arrow (default) or embeddings.parquet */
  embeddingsFormat?: EmbeddingsFormat;
  shard?: { index: number; count: number };
  totalParts: number;
  runInfo: () => Record<string, unknown>;
  /** checked between files: a stop leaves the files written so far to the caller */
  stop?: StopControl;
}

interface Located {
  store: PartStore;
  entry: PartEntry;
}

export async function assembleOutputs(
  dir: string,
  sources: { store: PartStore; parts: number[] }[],
  opts: AssembleOptions,
): Promise<void> {
  // Every expected part, once, validated.
  const located: Located[] = [];
  for (const s of sources)
    for (const k of s.parts) {
      const entry = s.store.validPart(k, { checksums: false });
      if (!entry) throw new UserError(`part ${k} is missing or incomplete in ${s.store.dir}: rerun with --resume`);
      located.push({ store: s.store, entry });
    }
  located.sort((a, b) => a.entry.part - b.entry.part);
  for (let i = 1; i < located.length; i++)
    if (located[i].entry.part === located[i - 1].entry.part) throw new UserError(`part ${located[i].entry.part} appears twice`);
  let records = 0;
  let frames = 0;
  let windows = 0;
  let nextRecord = -1;
  for (const l of located) {
    if (!opts.shard && nextRecord >= 0 && l.entry.firstRecord !== nextRecord)
      throw new UserError(`parts do not cover the input contiguously at part ${l.entry.part}`);
    nextRecord = l.entry.firstRecord + l.entry.records;
    records += l.entry.records;
    frames += l.entry.frames;
    windows += l.entry.windows;
  }
  const completion: CompletionInfo = {
    totalParts: opts.totalParts,
    totalRecords: records,
    frames,
    windows,
    finishedAt: new Date().toISOString(),
  };
  // The output directory's own state: never a source's (merge reads its shards only).
  const stateDir = join(dir, STATE_DIR);
  onFile("create", stateDir, () => mkdirSync(stateDir, { recursive: true }));
  const check = () => opts.stop?.check(dir);
  // A shard stops at its parts; `virnuc merge` assembles the shards.
  if (opts.shard) {
    writeFileAtomic(join(stateDir, "complete.json"), JSON.stringify(completion, null, 2) + "\n");
    return;
  }
  if (located.length !== opts.totalParts)
    throw new UserError(`${opts.totalParts - located.length} of ${opts.totalParts} parts are missing: rerun with --resume`);

  const read = (l: Located, table: string): RecordBatch[] => {
    const bytes = l.store.readPartFile(l.entry, `${table}.arrow`);
    if (!bytes) throw new UserError(`part ${l.entry.part} has no ${table} table in ${l.store.dir}`);
    const t = readIpc(bytes);
    if (!t.schema.fields.some((f) => f.name === RECORD_INDEX))
      throw new UserError(`part ${l.entry.part} in ${l.store.dir} was written by an earlier virnuc (no ${RECORD_INDEX}): start over with --force`);
    const n = t.numRows;
    const want = table === "windows" ? l.entry.windows : table === "sequences" ? l.entry.records : l.entry.frames;
    if (n !== want) throw new UserError(`part ${l.entry.part}: ${table} has ${n} rows, its manifest says ${want}`);
    return t.batches;
  };
  async function* batches(table: string, each?: (b: RecordBatch) => void): AsyncGenerator<RecordBatch> {
    for (const l of located) {
      check();
      for (const b of read(l, table)) {
        each?.(b);
        yield b;
      }
    }
  }

  const state = sources[0].store.readState();
  const metadata = state ? fileMetadata({ chunkSize: state.chunkSize, precision: state.precision, models: state.models }) : undefined;
  const files: Record<string, { bytes: number; sha256: string; rows: number }> = {};
  const note = (name: string, d: { bytes: number; sha256: string; rows: number }) => (files[name] = { bytes: d.bytes, sha256: d.sha256, rows: d.rows });
  if (opts.classify) {
    const compat = new CompatWriter(dir);
    try {
      const d = await writeParquet(join(dir, "predictions.parquet"), batches("predictions", (b) => {
        const ids = b.getChild("frame_id")!.toArray() as unknown as string[];
        const pred = b.getChild("prediction")!.toArray() as unknown as string[];
        compat.addFrameColumns(
          Array.from(ids),
          b.getChild("score_others")!.toArray() as Float32Array,
          b.getChild("score_virus")!.toArray() as Float32Array,
          Array.from(pred, (x) => x === "virus"),
        );
      }), predictionsKeyedSchema as Schema, { metadata });
      note("predictions.parquet", d);
      await compat.close();
    } catch (err) {
      compat.abort();
      throw err;
    }
    check();
    note("windows.parquet", await writeParquet(join(dir, "windows.parquet"), batches("windows"), windowsKeyedSchema, { metadata }));
    check();
    // sequences.tsv: the same rows as text, written as the Parquet file's batches go by
    const tsv = new TsvWriter(join(dir, "sequences.tsv"), sequencesKeyedSchema);
    try {
      note("sequences.parquet", await writeParquet(join(dir, "sequences.parquet"), batches("sequences", (b) => tsv.add(b)), sequencesKeyedSchema, { metadata }));
      note("sequences.tsv", tsv.close());
    } catch (err) {
      tsv.abort();
      throw err;
    }
  } else {
    note("frames.parquet", await writeParquet(join(dir, "frames.parquet"), batches("frames"), framesSchema, { metadata }));
  }
  if (opts.keepEmbeddings) {
    const dtype = state?.embeddingsDtype === "float16" ? "float16" : "float32";
    const e = await writeEmbeddings(dir, opts.embeddingsFormat ?? "arrow", batches("embeddings"), { metadata, empty: emptyEmbeddingsSchema(dtype) });
    note(e.name, e.digest);
  }
  check();
  writeFileAtomic(join(stateDir, "complete.json"), JSON.stringify(completion, null, 2) + "\n");
  writeRunJson(dir, { ...opts.runInfo(), counts: completion, outputs: files });
}
