/**
 * `predict` / `embed` options, validated once into a run plan: every later step reads the plan,
 * never the raw options. Numbers have sane ranges (a usage error, exit 2, names the option);
 * --threads beyond the machine's cores is capped with a warning (--workers beyond them only warns).
 */
import { resolve } from "node:path";
import { checkInputs } from "./source.ts";
import { availableParallelism } from "node:os";
import { UserError, UsageError } from "../util/errors.ts";
import { chooseDevice, type DeviceChoice } from "./models.ts";
import { cudaDeviceCount } from "../engine/engine.ts";
import type { EmbeddingDtype } from "../output/schema.ts";
import { embeddingsPlan, type EmbeddingsFormat } from "../output/embeddings.ts";

export interface PredictOptions {
  output?: string;
  chunkSize?: number | string;
  esm?: string;
  dnabert?: string;
  tokenizer?: string;
  classifier?: string;
  device?: string;
  gpus?: string | number;
  workers?: string | number;
  precision?: string;
  /** predict --precision fp8: redo frames near the decision boundary in fp16 (classify/recheck.ts) */
  recheckMargin?: string | number;
  tokenBudget?: string | number;
  windowReads?: string | number;
  shard?: string;
  resume?: boolean;
  force?: boolean;
  saveEmbeddings?: boolean;
  embeddingsDtype?: string;
  embeddingsFormat?: string;
  progress?: boolean;
  logJson?: string;
  /** predict: write report.html at the end (--no-report: false) */
  report?: boolean;
  threads?: string | number;
}

export type Precision = "fp32" | "fp16" | "fp8";

/** What processParts needs; plain data, sent as is to worker subprocesses. */
export interface PartPlan {
  dir: string;
  chunkSize: number;
  classify: boolean;
  keepEmbeddings: boolean;
  embeddingsDtype: EmbeddingDtype;
  /** tokens per packed batch; undefined: the engine suggests one per model */
  tokenBudget?: number;
  /** > 0: frames whose fp8 call could differ from fp16's are redone in fp16 (classify/recheck.ts) */
  recheckMargin?: number;
}

/** One worker subprocess: a GPU (CUDA_VISIBLE_DEVICES) or a CPU worker. */
export interface WorkerSlot {
  label: string;
  env: Record<string, string>;
}

export interface RunPlan extends PartPlan {
  command: "predict" | "embed";
  inputs: string[];
  windowReads: number;
  /** as computed: fp32 on the CPU backend */
  precision: Precision;
  shard?: { index: number; count: number };
  resume: boolean;
  force: boolean;
  progress: boolean;
  logJson?: string;
  /** predict writes DIR/report.html at the end */
  report: boolean;
  /** embeddings.arrow or embeddings.parquet */
  embeddingsFormat: EmbeddingsFormat;
  /** said once when embeddings are kept (float16 asked for Parquet is widened) */
  embeddingsWarning?: string;
  device: DeviceChoice;
  /** CPU threads per engine (per worker when there are workers); undefined: all cores */
  threads?: number;
  /** empty: compute in this process */
  slots: WorkerSlot[];
  models: { esm?: string; dnabert?: string; tokenizer?: string; classifier?: string };
}

export const LIMITS = {
  chunkSize: [1, 1_000_000],
  windowReads: [1, 10_000_000],
  tokenBudget: [64, 1 << 26],
  workers: [1, 1024],
  threads: [1, 1_000_000], // then capped to the cores
  shardCount: [1, 1_000_000],
} as const;

function usage(message: string): UserError {
  return new UsageError(message);
}

/** An integer option within [lo, hi]. */
export function intOption(v: unknown, flag: string, [lo, hi]: readonly [number, number]): number {
  const s = String(v).trim();
  const n = /^[+]?\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n < lo || n > hi) throw usage(`${flag} ${String(v)}: expected a whole number from ${lo} to ${hi}`);
  return n;
}

/**
 * --recheck-margin M: 0 (off) to 0.5, with --precision fp8 only (predict). Tests of the CPU
 * backend set VIRNUC_TEST_RECHECK_ESM (another ESM-2 for the recheck) to run it without fp8.
 */
export function parseRecheckMargin(v: string | number | undefined, command: "predict" | "embed", precision: string): number {
  if (v === undefined) return 0;
  const s = String(v).trim();
  const m = /^(\d+(\.\d*)?|\.\d+)$/.test(s) ? Number(s) : NaN;
  if (!(m >= 0 && m <= 0.5)) throw usage(`--recheck-margin ${String(v)}: expected a number from 0 to 0.5 (a score distance from 0.5)`);
  if (m > 0 && command !== "predict") throw usage("--recheck-margin is for predict (embed makes no calls)");
  if (m > 0 && precision !== "fp8" && !process.env.VIRNUC_TEST_RECHECK_ESM)
    throw usage("--recheck-margin redoes fp8's near-boundary frames in fp16: it needs --precision fp8");
  return m;
}

export function parseShard(s: string | undefined): { index: number; count: number } | undefined {
  if (s === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(String(s));
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2]) || Number(m[2]) > LIMITS.shardCount[1])
    throw usage(`--shard ${s}: expected i/N with 0 <= i < N <= ${LIMITS.shardCount[1]}, e.g. 0/4`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

export function parseGpus(v: string | number, visible: number): number[] {
  const gpus = String(v)
    .split(",")
    .map((g) => {
      const t = g.trim();
      if (!/^\d+$/.test(t)) throw usage(`--gpus: '${g}' is not a GPU index`);
      const n = Number(t);
      if (n >= visible) throw usage(`--gpus: GPU ${n} does not exist (${visible} visible)`);
      return n;
    });
  if (new Set(gpus).size !== gpus.length) throw usage(`--gpus ${v}: a GPU is listed twice`);
  return gpus;
}

export function planRun(
  inputs: string[],
  opts: PredictOptions,
  command: "predict" | "embed",
  warn: (msg: string) => void,
  cores = availableParallelism(),
): RunPlan {
  if (!opts.output) throw usage(`${command}: -o DIR is required`);
  if (!inputs?.length) throw usage(`${command}: give at least one FASTA file`);
  checkInputs(inputs); // before any model loads: exists, not a directory, not bzip2/xz; `-` once
  const chunkSize = intOption(opts.chunkSize ?? 500, "--chunk-size", LIMITS.chunkSize);
  const windowReads = intOption(opts.windowReads ?? 20000, "--window-reads", LIMITS.windowReads);
  const precision = String(opts.precision ?? "fp16");
  if (precision !== "fp16" && precision !== "fp32" && precision !== "fp8") throw usage(`--precision ${precision}: expected fp16, fp32 or fp8`);
  let embeddings;
  try {
    embeddings = embeddingsPlan(opts.embeddingsFormat ?? "arrow", opts.embeddingsDtype ?? "float32");
  } catch (err) {
    throw err instanceof UserError ? usage(err.message) : err;
  }
  const embeddingsDtype = embeddings.dtype;
  const tokenBudget = opts.tokenBudget !== undefined ? intOption(opts.tokenBudget, "--token-budget", LIMITS.tokenBudget) : undefined;
  const shard = parseShard(opts.shard);
  let threads = opts.threads !== undefined ? intOption(opts.threads, "--threads", LIMITS.threads) : undefined;
  const workers = opts.workers !== undefined ? intOption(opts.workers, "--workers", LIMITS.workers) : 1;

  const recheckMargin = parseRecheckMargin(opts.recheckMargin, command, precision);
  const device = chooseDevice(String(opts.device ?? "auto"));
  if (device.backend === "cpu" && precision === "fp8") throw usage("--precision fp8 needs the CUDA backend");
  if (opts.gpus !== undefined && device.backend !== "cuda") throw usage("--gpus needs the CUDA backend (--device auto|cuda)");
  if (opts.workers !== undefined && device.backend === "cuda") throw usage("--workers is for the CPU backend; on GPUs use --gpus");
  let slots: WorkerSlot[] = [];
  if (device.backend === "cuda") {
    const visible = cudaDeviceCount();
    const gpus =
      opts.gpus !== undefined
        ? parseGpus(opts.gpus, visible)
        : String(opts.device ?? "auto").includes(":")
          ? [device.device]
          : [...Array(visible).keys()];
    if (gpus.length > 1) slots = gpus.map((g) => ({ label: `cuda:${g}`, env: { CUDA_VISIBLE_DEVICES: String(g), VIRNUC_WORKER: `cuda:${g}` } }));
    else device.device = gpus[0] ?? 0;
  } else {
    if (workers > cores) warn(`--workers ${workers} is more than the ${cores} cores of this machine: each worker gets one thread, they share the cores`);
    const perProcess = Math.max(1, Math.floor(cores / workers));
    if (threads !== undefined && threads > perProcess) {
      warn(
        `--threads ${threads} is more than the ${cores} cores of this machine allow${workers > 1 ? ` for ${workers} workers` : ""}: using ${perProcess}`,
      );
      threads = perProcess;
    }
    if (workers > 1) {
      threads ??= perProcess;
      slots = [...Array(workers).keys()].map((i) => ({ label: `cpu-worker-${i}`, env: { VIRNUC_WORKER: `cpu-worker-${i}` } }));
    }
  }
  const classify = command === "predict";
  return {
    command,
    dir: resolve(opts.output),
    inputs,
    chunkSize,
    windowReads,
    precision: device.backend === "cpu" ? "fp32" : precision,
    embeddingsDtype,
    embeddingsFormat: embeddings.format,
    embeddingsWarning: embeddings.warning,
    tokenBudget,
    recheckMargin,
    shard,
    classify,
    keepEmbeddings: command === "embed" || !!opts.saveEmbeddings,
    resume: !!opts.resume,
    force: !!opts.force,
    progress: opts.progress !== false,
    report: opts.report !== false,
    logJson: opts.logJson,
    device,
    threads,
    slots,
    models: { esm: opts.esm, dnabert: opts.dnabert, tokenizer: opts.tokenizer, classifier: classify ? opts.classifier : undefined },
  };
}
