/**
 * The strings of an Arrow Utf8 column, decoded in one go: an all-ASCII column (record and frame
 * ids) is decoded once as a whole and sliced (byte offsets are then character offsets), which is
 * an order of magnitude faster than apache-arrow's per-value decoding. Other columns are decoded
 * value by value with the same decoder apache-arrow uses (invalid bytes become U+FFFD), so the
 * strings are always those of `vector.toArray()`. Null values come back as null.
 */
import type { Data, Utf8 } from "apache-arrow";

const decoder = new TextDecoder();

export function utf8Strings(d: Data<Utf8>): (string | null)[] {
  const n = d.length;
  const offs = d.valueOffsets as Int32Array; // sliced with the data: offs[i]..offs[i+1]
  const bytes = d.values as Uint8Array;
  const lo = offs[0];
  const hi = offs[n];
  let ascii = true;
  for (let i = lo; i < hi; i++)
    if (bytes[i] >= 0x80) {
      ascii = false;
      break;
    }
  const out = new Array<string | null>(n);
  if (ascii) {
    const all = hi > lo ? Buffer.from(bytes.buffer, bytes.byteOffset + lo, hi - lo).toString("latin1") : "";
    for (let i = 0; i < n; i++) out[i] = all.slice(offs[i] - lo, offs[i + 1] - lo);
  } else {
    for (let i = 0; i < n; i++) out[i] = decoder.decode(bytes.subarray(offs[i], offs[i + 1]));
  }
  if (d.nullCount > 0) for (let i = 0; i < n; i++) if (!d.getValid(i)) out[i] = null;
  return out;
}
