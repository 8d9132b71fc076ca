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
import type { RecordBatch } from "apache-arrow";
import { CompatWriter } from "../output/compat.ts";
import { writeParquet } from "../output/parquet.ts";
import type { FileDigest } from "../output/arrowfile.ts";
import { writeRunJson } from "../output/runjson.ts";
import { onFile, writeFileAtomic } from "../output/atomic.ts";
import { sequencesKeyedSchema } from "../output/keys.ts";
import { framesSchema } from "../output/frames.ts";
import { fileMetadata } from "../output/filemeta.ts";
import { TsvWriter } from "../output/tsv.ts";
import { type EmbeddingsFormat, emptyEmbeddingsSchema, writeEmbeddings } from "../output/embeddings.ts";
import { UserError } from "../util/errors.ts";
import { STATE_DIR, type PartStore, type PartEntry } from "./store.ts";
import type { StopControl } from "./stop.ts";
import { readPartTable, type PartTable } from "./parttable.ts";
import { startParquetFiles } from "./parquet-thread.ts";
import { utf8Strings } from "../output/utf8column.ts";

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
  /**
   * predict: threads that encode the Parquet files beside this one (0: none, 1: one, 3: one per
   * file; default by the CPUs available, parquet-thread.ts). The bytes are the same either way.
   */
  parquetThreads?: number;
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

  const read = (l: Located, table: PartTable): RecordBatch[] => readPartTable(l.store, l.entry, table);
  async function* batches(table: PartTable, each?: (b: RecordBatch) => void): AsyncGenerator<RecordBatch> {
    for (const l of located) {
      check();
      for (const b of read(l, table)) {
        each?.(b);
        yield b;
      }
    }
  }

  const state = sources[0].store.readState();
  const metadata = state ? fileMetadata({ chunkSize: state.chunkSize, precision: state.precision, recheckMargin: state.recheckMargin, models: state.models }) : undefined;
  const files: Record<string, { bytes: number; sha256: string; rows: number }> = {};
  const note = (name: string, d: { bytes: number; sha256: string; rows: number }) => (files[name] = { bytes: d.bytes, sha256: d.sha256, rows: d.rows });
  if (opts.classify) {
    // The three Parquet files are encoded on a second thread while this one writes the text
    // files from the same parts; each side reads the parts it needs.
    const parquet = startParquetFiles(
      {
        dir,
        parts: located.map((l) => ({ storeDir: l.store.dir, entry: l.entry })),
        tables: ["predictions", "windows", "sequences"],
        metadata: metadata ? [...metadata] : undefined,
      },
      opts.parquetThreads,
    );
    const checkBoth = () => {
      check();
      const err = parquet.failed();
      if (err) throw err;
    };
    const compat = new CompatWriter(dir);
    // sequences.tsv: the same rows as sequences.parquet, as text
    const tsv = new TsvWriter(join(dir, "sequences.tsv"), sequencesKeyedSchema);
    let digests: FileDigest[];
    let tsvDigest: FileDigest;
    try {
      for (const l of located) {
        checkBoth();
        for (const b of read(l, "predictions")) {
          // the id and call columns decoded in one go (utf8column.ts), not value by value
          const ids = utf8Strings(b.getChild("frame_id")!.data[0]) as string[];
          const pred = utf8Strings(b.getChild("prediction")!.data[0]);
          compat.addFrameColumns(
            ids,
            b.getChild("score_others")!.toArray() as Float32Array,
            b.getChild("score_virus")!.toArray() as Float32Array,
            Array.from(pred, (x) => x === "virus"),
          );
        }
      }
      await compat.close();
      for (const l of located) {
        checkBoth();
        for (const b of read(l, "sequences")) tsv.add(b);
      }
      tsvDigest = tsv.close();
      // Wait for the Parquet thread, still answering a stop.
      for (;;) {
        checkBoth();
        const done = await Promise.race([parquet.result, Bun.sleep(50).then(() => null)]);
        if (done) {
          digests = done;
          break;
        }
      }
    } catch (err) {
      compat.abort();
      tsv.abort();
      await parquet.cancel();
      throw err;
    }
    note("predictions.parquet", digests[0]);
    note("windows.parquet", digests[1]);
    note("sequences.parquet", digests[2]);
    note("sequences.tsv", tsvDigest);
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
