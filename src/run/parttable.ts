/**
 * One table of one finished part, read and checked (assemble.ts and its Parquet thread share it,
 * so that both report a bad part the same way).
 */
import type { RecordBatch } from "apache-arrow";
import { readIpc } from "../output/arrowfile.ts";
import { RECORD_INDEX } from "../output/keys.ts";
import { UserError } from "../util/errors.ts";
import type { PartEntry, PartStore } from "./store.ts";

export type PartTable = "predictions" | "windows" | "sequences" | "frames" | "embeddings";

export function readPartTable(store: PartStore, entry: PartEntry, table: PartTable): RecordBatch[] {
  const bytes = store.readPartFile(entry, `${table}.arrow`);
  if (!bytes) throw new UserError(`part ${entry.part} has no ${table} table in ${store.dir}`);
  const t = readIpc(bytes);
  if (!t.schema.fields.some((f) => f.name === RECORD_INDEX))
    throw new UserError(`part ${entry.part} in ${store.dir} was written by an earlier virnuc (no ${RECORD_INDEX}): start over with --force`);
  const n = t.numRows;
  const want = table === "windows" ? entry.windows : table === "sequences" ? entry.records : entry.frames;
  if (n !== want) throw new UserError(`part ${entry.part}: ${table} has ${n} rows, its manifest says ${want}`);
  return t.batches;
}
