/**
 * FP8 (E4M3) quantization as `--precision fp8` applies it on the GPU, computed by libvirnuc's host
 * reference (vn_fp8_quantize_rows): one scale per row, scale = amax / 448, q = e4m3(x * 448 / amax)
 * rounded to nearest even and saturated to +-448. For tests and tools; the engine does its own.
 */
import { EngineError } from "./engine.ts";
import { Status, lastError, lib } from "./ffi.ts";

/** rows x cols row-major values -> E4M3 bytes (same layout) and one scale per row. */
export function quantizeRowsFp8(x: Float32Array, rows: number, cols: number): { q: Uint8Array; scales: Float32Array } {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || x.length !== rows * cols)
    throw new Error(`quantizeRowsFp8: ${x.length} values do not form ${rows} x ${cols}`);
  const q = new Uint8Array(Math.max(1, rows * cols));
  const scales = new Float32Array(Math.max(1, rows));
  const st = lib().vn_fp8_quantize_rows(x.length ? x : new Float32Array(1), rows, cols, q, scales);
  if (st !== Status.OK) throw new EngineError(`libvirnuc: ${lastError()}`, st);
  return { q: q.subarray(0, rows * cols), scales: scales.subarray(0, rows) };
}

/** E4M3 bytes to their (unscaled) values; 0x7f / 0xff are NaN. */
export function dequantizeFp8(q: Uint8Array): Float32Array {
  const out = new Float32Array(Math.max(1, q.length));
  const st = lib().vn_fp8_dequantize(q.length ? q : new Uint8Array(1), q.length, out);
  if (st !== Status.OK) throw new EngineError(`libvirnuc: ${lastError()}`, st);
  return out.subarray(0, q.length);
}

/** Most outlier channels the FP8 scheme carries in its K extension (common/fp8.h). */
export const FP8_MAX_OUTLIERS = 16;

/** Extension columns after `hidden` for n outlier channels: >= 2n, the row a multiple of 128 (0 for none). */
export function fp8ExtColumns(n: number, hidden: number): number {
  return n > 0 ? Math.ceil((hidden + 2 * n) / 128) * 128 - hidden : 0;
}

/**
 * The hidden channels `--precision fp8` treats as outliers, from the LayerNorm gains of a model
 * (each row of `gains` one LayerNorm's weight vector): max |gain| over the rows above 8x the median
 * channel's, the 16 largest, ascending.
 */
export function fp8OutlierChannels(gains: Float32Array, vectors: number, hidden: number): number[] {
  if (gains.length !== vectors * hidden) throw new Error(`fp8OutlierChannels: ${gains.length} values do not form ${vectors} x ${hidden}`);
  const out = new Int32Array(FP8_MAX_OUTLIERS);
  const n = new Int32Array(1);
  const st = lib().vn_fp8_outlier_channels(gains.length ? gains : new Float32Array(1), vectors, hidden, out, n);
  if (st !== Status.OK) throw new EngineError(`libvirnuc: ${lastError()}`, st);
  return [...out.subarray(0, n[0])];
}

/**
 * quantizeRowsFp8 with each row followed by the outlier extension: for weights [lo | hi | 0], for
 * activations [hi | lo | 0] per channel (hi = the main part's byte, lo = E4M3 of what it left).
 */
export function quantizeRowsFp8Ext(
  x: Float32Array,
  rows: number,
  cols: number,
  channels: number[],
  weights: boolean,
): { q: Uint8Array; scales: Float32Array; ld: number } {
  if (x.length !== rows * cols || cols <= 0) throw new Error(`quantizeRowsFp8Ext: ${x.length} values do not form ${rows} x ${cols}`);
  const ld = cols + fp8ExtColumns(channels.length, cols);
  const q = new Uint8Array(Math.max(1, rows * ld));
  const scales = new Float32Array(Math.max(1, rows));
  const ch = Int32Array.from(channels.length ? channels : [0]);
  const st = lib().vn_fp8_quantize_rows_ext(x.length ? x : new Float32Array(1), rows, cols, ch, channels.length, weights ? 1 : 0, q, scales);
  if (st !== Status.OK) throw new EngineError(`libvirnuc: ${lastError()}`, st);
  return { q: q.subarray(0, rows * ld), scales: scales.subarray(0, rows), ld };
}
