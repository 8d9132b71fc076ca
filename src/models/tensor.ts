/** Host tensors as read from checkpoint files: contiguous row-major little-endian bytes. */
export type DType = "f64" | "f32" | "f16" | "bf16" | "i64" | "i32" | "i16" | "i8" | "u8" | "bool";

export interface HostTensor {
  dtype: DType;
  shape: number[];
  /** Contiguous little-endian bytes (a view into a mapped file where possible). */
  data: Uint8Array;
}

export const DTYPE_BYTES: Record<DType, number> = {
  f64: 8, f32: 4, f16: 2, bf16: 2, i64: 8, i32: 4, i16: 2, i8: 1, u8: 1, bool: 1,
};

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Encoder description handed to libvirnuc (mirrors vn_model_config in cuda/include/virnuc.h). */
export interface EncoderConfig {
  arch: "esm2" | "dnabert";
  nLayers: number;
  hidden: number;
  nHeads: number;
  intermediate: number;
  vocab: number;
  lnEps: number;
  /** ESM-2: <mask> id for the token-dropout rescale (32), and whether it applies. */
  maskTokenId?: number;
  tokenDropout?: boolean;
  /** ESM-2: residues pooled are 1..min(maxPoolPositions, p) (1024). */
  maxPoolPositions?: number;
}

export interface ClassifierConfig {
  inFeatures: number;
  hidden: number;
  nClasses: number;
  bnEps: number;
}
