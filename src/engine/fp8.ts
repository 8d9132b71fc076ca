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
