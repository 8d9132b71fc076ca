/**
 * The embeddings file: `embeddings.arrow` (Arrow IPC, the default) or `embeddings.parquet`
 * (`--embeddings-format parquet`), one row per kept frame: frame_id, record_index, dnabert
 * FixedSizeList<float>[768], esm FixedSizeList<float>[2560].
 *
 * Parquet has no fixed-size list type: the columns are Parquet LISTs of FLOAT, and the Arrow
 * schema stored in the file (ARROW:schema) lets Arrow readers restore the FixedSizeList types
 * (checked with arrow-rs in the tests). DuckDB reads them as FLOAT[] lists of 768 / 2560 values;
 * `esm::FLOAT[2560]` makes them DuckDB arrays (for array_cosine_similarity and friends).
 *
 * float16 with Parquet: the file is written as float32, with one warning. Parquet's FLOAT16 type
 * is recent and reading it depends on the reader and its version (DuckDB reads it), while the
 * Parquet outputs must open everywhere without hints, so float16 stays an embeddings.arrow option.
 */
import { join } from "node:path";
import type { RecordBatch, Schema } from "apache-arrow";
import { UserError } from "../util/errors.ts";
import { type FileDigest, writeIpcFile } from "./arrowfile.ts";
import { writeParquet } from "./parquet.ts";
import { type EmbeddingDtype, embeddingsSchema } from "./schema.ts";
import { keyedSchema } from "./keys.ts";

export type EmbeddingsFormat = "arrow" | "parquet";
export const EMBEDDINGS_FORMATS: readonly EmbeddingsFormat[] = ["arrow", "parquet"];

export const EMBEDDINGS_FILE: Record<EmbeddingsFormat, string> = {
  arrow: "embeddings.arrow",
  parquet: "embeddings.parquet",
};

/** Rows per Parquet row group: 4096 frames of 768 + 2560 floats are about 55 MB. */
export const EMBEDDINGS_ROW_GROUP = 4096;

export interface EmbeddingsPlan {
  format: EmbeddingsFormat;
  /** the dtype the embeddings are stored with (float16 only in embeddings.arrow) */
  dtype: EmbeddingDtype;
  /** one line to show the user when the request was changed */
  warning?: string;
}

/** Checks --embeddings-format and --embeddings-dtype and decides how embeddings are stored. */
export function embeddingsPlan(format: unknown = "arrow", dtype: unknown = "float32"): EmbeddingsPlan {
  const f = String(format);
  const d = String(dtype);
  if (!EMBEDDINGS_FORMATS.includes(f as EmbeddingsFormat))
    throw new UserError(`--embeddings-format ${f}: expected arrow or parquet`);
  if (d !== "float32" && d !== "float16") throw new UserError(`--embeddings-dtype ${d}: expected float32 or float16`);
  if (f === "parquet" && d === "float16")
    return {
      format: "parquet",
      dtype: "float32",
      warning: "embeddings.parquet is written as float32: --embeddings-dtype float16 applies to embeddings.arrow only (not every Parquet reader reads FLOAT16)",
    };
  return { format: f as EmbeddingsFormat, dtype: d };
}

/** The schema of an embeddings file with no rows (widths of the real models). */
export function emptyEmbeddingsSchema(dtype: EmbeddingDtype = "float32"): Schema {
  return keyedSchema(embeddingsSchema(undefined, undefined, dtype));
}

/**
 * Write DIR/embeddings.arrow or DIR/embeddings.parquet from the parts' embeddings batches.
 * The schema is the first batch's (the model widths are only known from the data); `empty` is
 * used when there are no batches at all.
 */
export async function writeEmbeddings(
  dir: string,
  format: EmbeddingsFormat,
  source: AsyncIterable<RecordBatch>,
  opts: { metadata?: ReadonlyMap<string, string>; empty?: Schema } = {},
): Promise<{ name: string; digest: FileDigest }> {
  const name = EMBEDDINGS_FILE[format];
  const path = join(dir, name);
  const it = source[Symbol.asyncIterator]();
  const first = await it.next();
  const schema = first.done ? (opts.empty ?? emptyEmbeddingsSchema()) : first.value.schema;
  async function* all(): AsyncGenerator<RecordBatch> {
    if (first.done) return;
    yield first.value;
    for (;;) {
      const n = await it.next();
      if (n.done) return;
      yield n.value;
    }
  }
  const digest =
    format === "parquet"
      ? // snappy and no dictionaries: float embeddings barely compress, and zstd doubles the time
        await writeParquet(path, all(), schema, { metadata: opts.metadata, rowGroupSize: EMBEDDINGS_ROW_GROUP, compression: "snappy", dictionary: false })
      : await writeIpcFile(path, all(), schema, { metadata: opts.metadata });
  return { name, digest };
}
