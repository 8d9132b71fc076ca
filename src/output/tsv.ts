/**
 * Plain tab-separated copies of result tables (sequences.tsv beside sequences.parquet), for
 * grep, awk, sort and spreadsheets. Same columns in the same order as the Parquet file, one
 * header line of column names, one line per row, `\n` line ends, UTF-8.
 *
 * Values: strings as they are (record ids hold no whitespace, so no quoting is ever needed; a
 * tab or line break in a value is refused); integers in decimal; float32 as numpy prints a
 * float32, like prediction_results.txt (the shortest decimal that reads back as the same
 * float32: `0.12100612`, `1.0`, `1e-05`); booleans `true`/`false`; null as an empty field.
 *
 * Rows are written as batches arrive (memory holds one batch's text); the file appears
 * atomically on close. The text is a pure function of the rows (deterministic).
 */
import { type DataType, type RecordBatch, type Schema, Type } from "apache-arrow";
import { AtomicFile } from "./atomic.ts";
import type { FileDigest } from "./arrowfile.ts";
import { formatFloat32 } from "./float32.ts";

type Cell = (v: unknown) => string;

function formatterFor(type: DataType, name: string): Cell {
  switch (type.typeId) {
    case Type.Utf8:
    case Type.LargeUtf8:
      return (v) => {
        const s = v as string;
        if (/[\t\n\r]/.test(s)) throw new Error(`TSV column ${name}: value ${JSON.stringify(s)} holds a tab or line break`);
        return s;
      };
    case Type.Int:
      return (v) => String(v);
    case Type.Float:
      return String(type) === "Float32" ? (v) => formatFloat32(v as number) : (v) => String(v);
    case Type.Bool:
      return (v) => (v ? "true" : "false");
    default:
      throw new Error(`TSV column ${name}: type ${type} is not written as text`);
  }
}

export class TsvWriter {
  private readonly file: AtomicFile;
  private readonly hasher = new Bun.CryptoHasher("sha256");
  private bytes = 0;
  private readonly cells: Cell[];
  private closed = false;
  rows = 0;

  constructor(
    readonly path: string,
    readonly schema: Schema,
  ) {
    this.cells = schema.fields.map((f) => formatterFor(f.type, f.name));
    this.file = new AtomicFile(path);
    this.write(schema.fields.map((f) => f.name).join("\t") + "\n");
  }

  private write(text: string): void {
    const bytes = Buffer.from(text, "utf8");
    this.file.write(bytes);
    this.hasher.update(bytes);
    this.bytes += bytes.byteLength;
  }

  /** Append a batch's rows; its columns must be the schema's, in order. */
  add(batch: RecordBatch): void {
    const fields = batch.schema.fields;
    if (fields.length !== this.schema.fields.length || fields.some((f, i) => f.name !== this.schema.fields[i].name))
      throw new Error(`TSV ${this.path}: batch columns (${fields.map((f) => f.name).join(", ")}) are not the table's`);
    const cols = fields.map((_, i) => batch.getChildAt(i)!);
    const lines: string[] = new Array(batch.numRows);
    const row: string[] = new Array(cols.length);
    for (let r = 0; r < batch.numRows; r++) {
      for (let c = 0; c < cols.length; c++) {
        const v = cols[c].get(r);
        row[c] = v === null || v === undefined ? "" : this.cells[c](v);
      }
      lines[r] = row.join("\t");
    }
    if (lines.length) this.write(lines.join("\n") + "\n");
    this.rows += batch.numRows;
  }

  /** Publish the file; returns its size and sha256. */
  close(): FileDigest {
    if (this.closed) throw new Error(`TSV ${this.path}: closed twice`);
    this.closed = true;
    this.file.commit();
    return { path: this.path, bytes: this.bytes, sha256: this.hasher.digest("hex"), rows: this.rows };
  }

  /** Drop the partial file. */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    this.file.abort();
  }
}
