/**
 * Key-value metadata carried by every Parquet and Arrow IPC output file: the virnuc version, the
 * chunk size, the precision, and each model's name with the sha256 of its files.
 *
 * It is ONE key, `virnuc`, whose value is a compact JSON object with keys sorted at every level.
 * One key, because parquet-wasm's writer keeps key-value metadata in a hash map whose iteration
 * order changes from one write to the next within a process: two or more keys would come out in
 * a different order each time, and the same run would not give the same bytes. The value holds
 * nothing that changes between runs (no time, no host, no absolute path), so the files stay a
 * pure function of the inputs and options.
 *
 * Reading it back:
 *   DuckDB:  select decode(value)::json from parquet_kv_metadata('predictions.parquet') where decode(key) = 'virnuc'
 *   pyarrow: json.loads(pq.read_metadata(path).metadata[b'virnuc'])
 *   Arrow:   tableFromIPC(bytes).schema.metadata.get('virnuc')
 */
import { Schema } from "apache-arrow";
import { basename } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { toStableJson } from "./runjson.ts";

export const META_KEY = "virnuc";

export const VIRNUC_VERSION: string = pkg.version;

/** A model file as the run state records it. */
export interface ModelFileRef {
  path: string;
  sha256: string;
}

export interface FileMetaInput {
  chunkSize: number;
  /** the precision the encoders ran at (fp32 on the CPU backend) */
  precision: string;
  /** by role (esm, dnabert, classifier): the files that were loaded */
  models: Record<string, readonly ModelFileRef[]>;
  /** predict --recheck-margin (0 or absent: off, and not written) */
  recheckMargin?: number;
  /** defaults to this virnuc's version */
  version?: string;
}

export interface FileMeta {
  version: string;
  chunk_size: number;
  precision: string;
  /** present only when fp8's near-boundary frames were redone in fp16 (--recheck-margin) */
  recheck_margin?: number;
  models: Record<string, { name: string; files: { file: string; sha256: string }[] }>;
}

/**
 * A model's name from the path of one of its files: ORG/NAME for a Hugging Face cache path
 * (`models--ORG--NAME/snapshots/REV/...`), else the name of the directory holding a
 * `config.json`-style model, else the file name. Never an absolute path (machine-independent).
 */
export function modelName(path: string): string {
  const parts = path.split(/[\\/]+/).filter(Boolean);
  for (let i = parts.length - 1; i >= 0; i--) {
    const m = /^models--(.+?)--(.+)$/.exec(parts[i]);
    if (m) return `${m[1]}/${m[2].replace(/--/g, "/")}`;
  }
  const file = parts[parts.length - 1] ?? "";
  // A model directory's weights (model.safetensors, pytorch_model.bin, ...): name the directory.
  if (/^(model|pytorch_model)([-.].*)?\.(safetensors|bin)$/.test(file) && parts.length >= 2) return parts[parts.length - 2];
  return file;
}

/** The metadata object (sorted keys) of a run. */
export function fileMeta(input: FileMetaInput): FileMeta {
  const models: FileMeta["models"] = {};
  for (const role of Object.keys(input.models).sort()) {
    const files = input.models[role];
    if (!files || files.length === 0) continue;
    // The first file names the model; a tokenizer.json beside the weights does not.
    const weights = files.find((f) => !/tokenizer\.json$/.test(f.path)) ?? files[0];
    models[role] = {
      name: modelName(weights.path),
      files: files.map((f) => ({ file: basename(f.path), sha256: f.sha256 })),
    };
  }
  return {
    version: input.version ?? VIRNUC_VERSION,
    chunk_size: input.chunkSize,
    precision: input.precision,
    ...(input.recheckMargin ? { recheck_margin: input.recheckMargin } : {}),
    models,
  };
}

/** The key-value metadata of an output file: the single `virnuc` key. */
export function fileMetadata(input: FileMetaInput): Map<string, string> {
  return new Map([[META_KEY, JSON.stringify(toStableJson(fileMeta(input)))]]);
}

/** Parse the `virnuc` key of a file's metadata (Map or plain object); null when absent. */
export function parseFileMetadata(metadata: ReadonlyMap<string, string> | Record<string, string> | null | undefined): FileMeta | null {
  if (!metadata) return null;
  const raw = metadata instanceof Map ? metadata.get(META_KEY) : (metadata as Record<string, string>)[META_KEY];
  return raw === undefined ? null : (JSON.parse(raw) as FileMeta);
}

/** `schema` with `metadata` as its (whole) schema-level metadata; fields are shared. */
export function withSchemaMetadata(schema: Schema, metadata: ReadonlyMap<string, string>): Schema {
  return new Schema(schema.fields, new Map(metadata), schema.dictionaries);
}
