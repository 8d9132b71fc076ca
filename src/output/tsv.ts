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
import { type Data, type DataType, type RecordBatch, type Schema, Type } from "apache-arrow";
import { AtomicFile } from "./atomic.ts";
import type { FileDigest } from "./arrowfile.ts";
import { formatFloat32 } from "./float32.ts";

/** A column's text, one string per row ("" for null), read straight from its Arrow buffers. */
type ColumnText = (d: Data, n: number) => string[];

const decoder = new TextDecoder();

function utf8Text(name: string): ColumnText {
  return (d, n) => {
    const offs = d.valueOffsets as Int32Array; // sliced with the data: offs[i]..offs[i+1]
    const bytes = d.values as Uint8Array;
    const lo = offs[0];
    const hi = offs[n];
    let ascii = true;
    for (let i = lo; i < hi; i++) {
      const b = bytes[i];
      if (b === 9 || b === 10 || b === 13) {
        let row = 0;
        while (offs[row + 1] <= i) row++;
        throw new Error(`TSV column ${name}: value ${JSON.stringify(decoder.decode(bytes.subarray(offs[row], offs[row + 1])))} holds a tab or line break`);
      }
      if (b >= 0x80) ascii = false;
    }
    const out = new Array<string>(n);
    if (ascii) {
      // One decode for the whole column; byte offsets are character offsets.
      const all = Buffer.from(bytes.buffer, bytes.byteOffset + lo, hi - lo).toString("latin1");
      for (let i = 0; i < n; i++) out[i] = all.slice(offs[i] - lo, offs[i + 1] - lo);
    } else {
      for (let i = 0; i < n; i++) out[i] = decoder.decode(bytes.subarray(offs[i], offs[i + 1]));
    }
    return out;
  };
}

function columnTextFor(type: DataType, name: string): ColumnText {
  switch (type.typeId) {
    case Type.Utf8:
      return utf8Text(name);
    case Type.Int:
      return (d, n) => {
        const v = d.values as ArrayLike<number | bigint>;
        const out = new Array<string>(n);
        for (let i = 0; i < n; i++) out[i] = String(v[i]);
        return out;
      };
    case Type.Float:
      if (String(type) !== "Float32") break;
      return (d, n) => {
        const v = d.values as Float32Array;
        const out = new Array<string>(n);
        if (d.nullCount === 0) for (let i = 0; i < n; i++) out[i] = formatFloat32(v[i]);
        // null cells are left empty (add() blanks them): only valid ones are formatted
        else for (let i = 0; i < n; i++) out[i] = d.getValid(i) ? formatFloat32(v[i]) : "";
        return out;
      };
    case Type.Bool:
      return (d, n) => {
        const bits = d.values as Uint8Array; // not sliced: bit offset + i
        const out = new Array<string>(n);
        for (let i = 0; i < n; i++) {
          const j = d.offset + i;
          out[i] = bits[j >> 3] & (1 << (j & 7)) ? "true" : "false";
        }
        return out;
      };
  }
  throw new Error(`TSV column ${name}: type ${type} is not written as text`);
}

export class TsvWriter {
  private readonly file: AtomicFile;
  private readonly hasher = new Bun.CryptoHasher("sha256");
  private bytes = 0;
  private readonly columns: ColumnText[];
  private closed = false;
  rows = 0;

  constructor(
    readonly path: string,
    readonly schema: Schema,
  ) {
    this.columns = schema.fields.map((f) => columnTextFor(f.type, f.name));
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
    const n = batch.numRows;
    const text = this.columns.map((toText, c) => {
      const d = batch.data.children[c];
      const col = toText(d, n);
      if (d.nullCount > 0) for (let i = 0; i < n; i++) if (!d.getValid(i)) col[i] = "";
      return col;
    });
    const lines = new Array<string>(n);
    for (let r = 0; r < n; r++) {
      let line = text[0][r];
      for (let c = 1; c < text.length; c++) line += "\t" + text[c][r];
      lines[r] = line;
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
