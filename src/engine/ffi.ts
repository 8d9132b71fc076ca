/**
 * The bun:ffi table for libvirnuc (cuda/include/virnuc.h), loaded on first use from
 * build/libvirnuc.so at the repository root, or from $VIRNUC_LIB.
 */
import { dlopen, FFIType } from "bun:ffi";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { UserError } from "../util/errors.ts";

/** Must equal VN_ABI_VERSION of the library. */
export const ABI_VERSION = 2;

export const Status = {
  OK: 0,
  INVALID: 1,
  OOM: 2,
  BACKEND: 3,
  UNSUPPORTED: 4,
  NONFINITE: 5,
  PENDING: 6,
  CANCELLED: 7,
} as const;

export const BackendCode = { cpu: 0, cuda: 1 } as const;
export const DTypeCode = { f32: 0, f16: 1, bf16: 2 } as const;
export const PrecisionCode = { fp32: 0, fp16: 1, fp8: 2 } as const;
export const ArchCode = { esm2: 1, dnabert: 2, mlp: 3 } as const;

const { i32, i64, ptr, void: none, cstring } = FFIType;

const symbols = {
  vn_last_error: { args: [], returns: cstring },
  vn_abi_version: { args: [], returns: i32 },
  vn_backend_available: { args: [i32], returns: i32 },
  vn_cuda_device_count: { args: [], returns: i32 },
  vn_engine_create: { args: [i32, i32, i32, ptr], returns: i32 },
  vn_engine_destroy: { args: [ptr], returns: none },
  vn_engine_describe: { args: [ptr, ptr, i32], returns: i32 },
  vn_engine_memory: { args: [ptr, ptr, ptr], returns: i32 },
  vn_engine_cancel: { args: [ptr], returns: i32 },
  vn_host_alloc: { args: [ptr, i64], returns: ptr },
  vn_host_free: { args: [ptr, ptr], returns: none },
  vn_model_load: { args: [ptr, ptr, ptr, i32, i32, ptr], returns: i32 },
  vn_model_destroy: { args: [ptr], returns: none },
  vn_model_output_dim: { args: [ptr], returns: i32 },
  vn_submit_embed: { args: [ptr, ptr, ptr, i32, ptr, ptr], returns: i32 },
  vn_submit_classify: { args: [ptr, ptr, i32, ptr, ptr], returns: i32 },
  vn_wait: { args: [ptr, i64], returns: i32 },
  vn_poll: { args: [ptr, i64], returns: i32 },
  vn_ticket_bad_row: { args: [ptr, i64], returns: i32 },
  vn_model_suggest_token_budget: { args: [ptr], returns: i64 },
  vn_fp8_quantize_rows: { args: [ptr, i64, i64, ptr, ptr], returns: i32 },
  vn_fp8_dequantize: { args: [ptr, i64, ptr], returns: i32 },
  vn_fp8_outlier_channels: { args: [ptr, i64, i64, ptr, ptr], returns: i32 },
  vn_fp8_quantize_rows_ext: { args: [ptr, i64, i64, ptr, i32, i32, ptr, ptr], returns: i32 },
} as const;

export type Lib = ReturnType<typeof dlopen<typeof symbols>>["symbols"];

/** Where the library is looked for: $VIRNUC_LIB, else build/libvirnuc.so of this repository. */
export function libraryPath(): string {
  const env = process.env.VIRNUC_LIB;
  if (env) return resolve(env);
  return resolve(import.meta.dir, "..", "..", "build", "libvirnuc.so");
}

let loaded: Lib | null = null;

/** The loaded library (dlopen on first call). */
export function lib(): Lib {
  if (loaded) return loaded;
  const path = libraryPath();
  if (!existsSync(path)) {
    throw new UserError(
      process.env.VIRNUC_LIB
        ? `libvirnuc not found at VIRNUC_LIB=${process.env.VIRNUC_LIB}`
        : "libvirnuc not built: run bun install (or bun run build:native)",
    );
  }
  let handle: ReturnType<typeof dlopen<typeof symbols>>;
  try {
    handle = dlopen(path, symbols);
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, " ");
    throw new UserError(`cannot load libvirnuc from ${path} (${why}): rebuild it with bun run build:native`);
  }
  const abi = handle.symbols.vn_abi_version();
  if (abi !== ABI_VERSION) {
    handle.close();
    throw new UserError(
      `libvirnuc at ${path} has ABI version ${abi}, this virnuc needs ${ABI_VERSION}: rebuild it with bun run build:native`,
    );
  }
  loaded = handle.symbols;
  return loaded;
}

/** The library's last error on this thread, as one line. */
export function lastError(): string {
  const msg = lib().vn_last_error();
  return msg ? String(msg) : "unknown libvirnuc error";
}
