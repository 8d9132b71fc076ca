/**
 * Resolves, loads and uploads the three models of a run, and fingerprints their files
 * (run.json records them; --resume refuses when they changed).
 */
import { statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { resolveModel } from "../models/hub/resolve.ts";
import { loadEsm } from "../models/esm.ts";
import { loadDnabert } from "../models/dnabert.ts";
import { loadClassifier } from "../models/classifier.ts";
import { Engine, backendAvailable, cudaDeviceCount, type ClassifierHandle, type EncoderHandle } from "../engine/engine.ts";
import { EsmTokenizer } from "../tokenize/esm.ts";
import { BpeTokenizer } from "../tokenize/bpe.ts";
import { UserError } from "../util/errors.ts";
import { fingerprintFile, type FileFingerprint } from "../models/hub/fingerprint.ts";
import type { Tokenizers } from "../frames/prepare.ts";

export interface ModelSpec {
  esm?: string;
  dnabert?: string;
  tokenizer?: string;
  classifier?: string;
  chunkSize: number;
  needClassifier: boolean;
}

// sha256 of model files: trusted from Hugging Face blob names, else hashed once and cached.
export { fingerprintFile, type FileFingerprint };

export interface ResolvedModels {
  esm: string;
  dnabert: string;
  classifier?: string;
  tokenizer: string;
  files: { esm: FileFingerprint[]; dnabert: FileFingerprint[]; classifier: FileFingerprint[] };
}

export interface DeviceChoice {
  backend: "cpu" | "cuda";
  device: number;
}

export function chooseDevice(spec: string): DeviceChoice {
  const s = spec.trim().toLowerCase();
  if (s === "cpu") return { backend: "cpu", device: 0 };
  const m = /^cuda(?::(\d+))?$/.exec(s);
  if (m) {
    if (!backendAvailable("cuda") || cudaDeviceCount() === 0)
      throw new UserError(
        `--device ${spec}: no CUDA backend or device (libvirnuc was built ${backendAvailable("cuda") ? "with CUDA but sees no GPU" : "without CUDA: install the CUDA toolkit with cuBLAS and rerun bun install"})`,
      );
    return { backend: "cuda", device: m[1] ? Number(m[1]) : 0 };
  }
  if (s === "auto") {
    if (backendAvailable("cuda") && cudaDeviceCount() > 0) return { backend: "cuda", device: 0 };
    return { backend: "cpu", device: 0 };
  }
  throw new UserError(`--device ${spec}: expected auto, cpu, cuda or cuda:N`);
}

/**
 * Records the weight files (and tokenizer) of each model with their sha256, without loading
 * anything onto a device (the parent of worker subprocesses needs only this).
 */
export function fingerprintModels(r: ResolvedModels): void {
  const d = loadDnabert(r.dnabert);
  r.tokenizer ||= d.tokenizerPath ?? "";
  recordFiles(r, loadEsm(r.esm).files, d.files, r.classifier ? loadClassifier(r.classifier).files : []);
}

function recordFiles(r: ResolvedModels, esm: string[], dnabert: string[], classifier: string[]): void {
  r.files = {
    esm: esm.map(fingerprintFile),
    dnabert: [...dnabert, ...(r.tokenizer ? [r.tokenizer] : [])].map(fingerprintFile),
    classifier: classifier.map(fingerprintFile),
  };
}

export interface LoadedModels {
  engine: Engine;
  device: DeviceChoice;
  description: string;
  esm: EncoderHandle;
  /** --recheck-margin: ESM-2 again in fp16 for the frames fp8 left near the boundary */
  esmRecheck?: EncoderHandle;
  dnabert: EncoderHandle;
  classifier?: ClassifierHandle;
  tokenizers: Tokenizers;
  resolved: ResolvedModels;
  esmConfig: { hidden: number; nLayers: number };
  /** where model loading time goes (run.json) */
  timings: { read_weights_s: number; hash_files_s: number; device_load_s: number };
  dnabertConfig: { hidden: number; nLayers: number };
  close(): void;
}

export async function resolveModels(spec: ModelSpec): Promise<ResolvedModels> {
  const esm = await resolveModel("esm", spec.esm, { chunkSize: spec.chunkSize });
  const dnabert = await resolveModel("dnabert", spec.dnabert, { chunkSize: spec.chunkSize });
  const classifier = spec.needClassifier
    ? await resolveModel("classifier", spec.classifier, { chunkSize: spec.chunkSize })
    : undefined;
  return { esm, dnabert, classifier, tokenizer: spec.tokenizer ? resolve(spec.tokenizer) : "", files: { esm: [], dnabert: [], classifier: [] } };
}

export function loadModels(
  resolved: ResolvedModels,
  device: DeviceChoice,
  precision: "fp32" | "fp16" | "fp8",
  opts: { threads?: number; recheck?: boolean } = {},
): LoadedModels {
  const prec = device.backend === "cpu" ? "fp32" : precision;
  if (device.backend === "cpu" && precision !== "fp32" && precision !== "fp16")
    throw new UserError(`--precision ${precision} needs the CUDA backend`);
  const tRead = performance.now();
  const esmModel = loadEsm(resolved.esm);
  const dnaModel = loadDnabert(resolved.dnabert);
  const tokenizerPath =
    resolved.tokenizer ||
    dnaModel.tokenizerPath ||
    join(statSync(resolved.dnabert).isDirectory() ? resolved.dnabert : dirname(resolved.dnabert), "tokenizer.json");
  let dnabertTok: BpeTokenizer;
  try {
    dnabertTok = BpeTokenizer.fromFile(tokenizerPath);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`DNABERT-S tokenizer: cannot read ${tokenizerPath} (${(err as Error).message}): give one with --tokenizer FILE`);
  }
  const clsModel = resolved.classifier ? loadClassifier(resolved.classifier) : undefined;
  if (clsModel && clsModel.config.inFeatures !== dnaModel.config.hidden + esmModel.config.hidden)
    throw new UserError(
      `classifier ${resolved.classifier} takes ${clsModel.config.inFeatures} features but DNABERT-S (${dnaModel.config.hidden}) + ESM-2 (${esmModel.config.hidden}) give ${dnaModel.config.hidden + esmModel.config.hidden}: the models do not belong together`,
    );
  resolved.tokenizer = tokenizerPath;
  const tHash = performance.now();
  recordFiles(resolved, esmModel.files, dnaModel.files, clsModel ? clsModel.files : []);
  const tDevice = performance.now();
  const engine = Engine.create(device.backend, { device: device.device, threads: opts.threads });
  try {
    const esm = engine.loadEncoder(esmModel.config, esmModel.tensors, prec);
    // fp8 applies to ESM-2 (95% of the work); DNABERT-S stays fp16.
    const dnabert = engine.loadEncoder(dnaModel.config, dnaModel.tensors, prec === "fp8" ? "fp16" : prec);
    const classifier = clsModel ? engine.loadClassifier(clsModel.config, clsModel.tensors) : undefined;
    // Tests of the CPU backend give another ESM-2 (same width) for the recheck: VIRNUC_TEST_RECHECK_ESM.
    const recheckModel = opts.recheck ? (process.env.VIRNUC_TEST_RECHECK_ESM ? loadEsm(process.env.VIRNUC_TEST_RECHECK_ESM) : esmModel) : undefined;
    const esmRecheck = recheckModel ? engine.loadEncoder(recheckModel.config, recheckModel.tensors, prec === "fp8" ? "fp16" : prec) : undefined;
    const tDone = performance.now();
    return {
      timings: {
        read_weights_s: (tHash - tRead) / 1000,
        hash_files_s: (tDevice - tHash) / 1000,
        device_load_s: (tDone - tDevice) / 1000,
      },
      engine,
      device,
      description: engine.describe(),
      esm,
      esmRecheck,
      dnabert,
      classifier,
      tokenizers: { esm: EsmTokenizer.default(), dnabert: dnabertTok },
      resolved,
      esmConfig: { hidden: esmModel.config.hidden, nLayers: esmModel.config.nLayers },
      dnabertConfig: { hidden: dnaModel.config.hidden, nLayers: dnaModel.config.nLayers },
      close() {
        classifier?.close();
        esmRecheck?.close();
        dnabert.close();
        esm.close();
        engine.close();
      },
    };
  } catch (err) {
    engine.close();
    throw err;
  }
}
