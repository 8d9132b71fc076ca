/**
 * `virnuc predict` and `virnuc embed`: options -> models -> parts (in this process, or dealt
 * to one subprocess per GPU / CPU worker) -> assembled outputs.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { availableParallelism } from "node:os";
import { UserError } from "../util/errors.ts";
import { chooseDevice, loadModels, resolveModels, fingerprintModels, type LoadedModels } from "./models.ts";
import { PartStore, type RunState, type PartEntry } from "./store.ts";
import { readParts, inShard, type SourceSummary } from "./source.ts";
import { computeLoop, type PartTelemetry } from "./loop.ts";
import { partEntryOf, partFiles } from "./tables.ts";
import { assembleOutputs } from "./assemble.ts";
import { runWorkers, type WorkerInit, type WorkerSlot } from "./workers.ts";
import { Progress } from "./progress.ts";
import { cudaDeviceCount } from "../engine/engine.ts";
import { embeddingsPlan } from "../output/embeddings.ts";
import { collectProvenance, libvirnucInUse } from "../output/provenance.ts";

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
  threads?: string | number;
}

function positiveInt(v: unknown, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UserError(`${flag} must be a positive integer (got ${String(v)})`);
  return n;
}

export function parseShard(s: string | undefined): { index: number; count: number } | undefined {
  if (s === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(String(s));
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2]))
    throw new UserError(`--shard ${s}: expected i/N with 0 <= i < N, e.g. 0/4`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

export async function predictCommand(inputs: string[], opts: PredictOptions, command: "predict" | "embed"): Promise<void> {
  const t0 = performance.now();
  if (!opts.output) throw new UserError(`${command}: -o DIR is required`);
  if (!inputs?.length) throw new UserError(`${command}: give at least one FASTA file`);
  for (const f of inputs) {
    if (!existsSync(f)) throw new UserError(`input ${f} does not exist`);
    if (statSync(f).isDirectory()) throw new UserError(`input ${f} is a directory, expected a FASTA file`);
  }
  const chunkSize = positiveInt(opts.chunkSize ?? 500, "--chunk-size");
  const windowReads = positiveInt(opts.windowReads ?? 20000, "--window-reads");
  const precision = String(opts.precision ?? "fp16");
  if (!["fp16", "fp32", "fp8"].includes(precision)) throw new UserError(`--precision ${precision}: expected fp16, fp32 or fp8`);
  const embeddings = embeddingsPlan(opts.embeddingsFormat ?? "arrow", opts.embeddingsDtype ?? "float32");
  const embeddingsDtype = embeddings.dtype;
  const tokenBudget = opts.tokenBudget !== undefined ? positiveInt(opts.tokenBudget, "--token-budget") : undefined;
  const shard = parseShard(opts.shard);
  const dir = resolve(opts.output);
  const classify = command === "predict";
  const keepEmbeddings = command === "embed" || !!opts.saveEmbeddings;
  const showProgress = opts.progress !== false;

  // Devices: one process, or one subprocess per GPU / CPU worker.
  const device = chooseDevice(String(opts.device ?? "auto"));
  let slots: WorkerSlot[] = [];
  if (device.backend === "cuda") {
    const gpus =
      opts.gpus !== undefined
        ? String(opts.gpus).split(",").map((g) => positiveIntOrZero(g, "--gpus"))
        : String(opts.device ?? "auto").includes(":")
          ? [device.device]
          : [...Array(cudaDeviceCount()).keys()];
    if (gpus.length > 1) slots = gpus.map((g) => ({ label: `cuda:${g}`, env: { CUDA_VISIBLE_DEVICES: String(g) } }));
    else device.device = gpus[0] ?? 0;
  } else if (opts.workers !== undefined && positiveInt(opts.workers, "--workers") > 1) {
    const n = positiveInt(opts.workers, "--workers");
    slots = [...Array(n).keys()].map((i) => ({ label: `cpu-worker-${i}`, env: {} }));
  }
  if (opts.gpus !== undefined && device.backend !== "cuda") throw new UserError("--gpus needs the CUDA backend (--device auto|cuda)");

  const resolved = await resolveModels({ esm: opts.esm, dnabert: opts.dnabert, tokenizer: opts.tokenizer, classifier: opts.classifier, chunkSize, needClassifier: classify });
  mkdirSync(dir, { recursive: true });
  const progress = new Progress({ enabled: showProgress, logJson: opts.logJson });
  const warn = (m: string) => progress.warn(m);
  if (keepEmbeddings && embeddings.warning) warn(embeddings.warning);

  // Load in this process (also when workers are used: it fingerprints the files and checks
  // that the models load, before any subprocess starts).
  let models: LoadedModels | null = null;
  let description = "";
  let loadTimings: Record<string, number> = {};
  const tLoad = performance.now();
  const threads = opts.threads !== undefined ? positiveInt(opts.threads, "--threads") : undefined;
  if (slots.length === 0) {
    models = loadModels(resolved, device, precision as "fp16", { threads });
    description = models.description;
    loadTimings = models.timings;
  } else {
    fingerprintModels(resolved);
  }
  const loadSeconds = (performance.now() - tLoad) / 1000;

  const state: RunState = {
    version: 1,
    command,
    inputs: inputs.map((p) => ({ path: resolve(p), bytes: statSync(p).size })),
    chunkSize,
    windowReads,
    precision: device.backend === "cpu" ? "fp32" : precision,
    saveEmbeddings: keepEmbeddings,
    embeddingsDtype,
    embeddingsFormat: embeddings.format,
    models: {
      esm: resolved.files.esm.map((f) => ({ path: f.path, sha256: f.sha256 })),
      dnabert: resolved.files.dnabert.map((f) => ({ path: f.path, sha256: f.sha256 })),
      classifier: resolved.files.classifier.map((f) => ({ path: f.path, sha256: f.sha256 })),
    },
    shard,
  };
  const store = new PartStore(dir);
  store.open(state, { resume: !!opts.resume, force: !!opts.force });
  // Ctrl-C: finished parts are already on disk; say how to continue.
  process.once("SIGINT", () => {
    console.error(`\nvirnuc: interrupted; finished parts are kept in ${dir}: rerun the same command with --resume to continue`);
    process.exit(130);
  });

  // Resume: finished parts that validate are skipped; the rest are redone.
  const done = new Map<number, PartEntry>();
  if (opts.resume) {
    for (const k of store.listEntries()) {
      const e = store.validPart(k);
      if (e) done.set(k, e);
      else {
        warn(`part ${k} is incomplete or corrupt: redoing it`);
        store.removePart(k);
      }
    }
  }
  const summary: SourceSummary = { totalParts: 0, totalRecords: 0, skipped: 0 };
  const parts = readParts({ inputs, windowReads, shard, done, onWarning: warn }, summary);
  const telemetry: PartTelemetry[] = [];
  for (const e of done.values()) if (e.telemetry) telemetry.push(e.telemetry);
  progress.start(done.size);
  const onPart = (entry: PartEntry, t: PartTelemetry, worker?: string) => {
    telemetry.push(t);
    progress.part(t, worker);
  };

  const t1 = performance.now();
  if (models) {
    const budgets = {
      esm: tokenBudget ?? models.esm.suggestTokenBudget(),
      dnabert: tokenBudget ?? models.dnabert.suggestTokenBudget(),
    };
    let warnedLong = false;
    try {
      await computeLoop(parts, models, { chunkSize, classify, keepEmbeddings, budgets }, (r, t) => {
        if (r.prepared.longProteins > 0 && !warnedLong) {
          warnedLong = true;
          warn("some proteins are longer than 1022 residues: ESM-2 was trained on at most 1022 (they are run whole and pooled over their first 1024 residues, as VirNucPro does)");
        }
        const entry = store.writePart({ ...partEntryOf(r), telemetry: t }, partFiles(r, { embeddingsDtype: embeddingsDtype as "float32", classify }));
        onPart(entry, t);
      });
    } finally {
      models.close();
    }
  } else {
    const init: WorkerInit = {
      dir,
      resolved: { esm: resolved.esm, dnabert: resolved.dnabert, tokenizer: resolved.tokenizer, classifier: resolved.classifier },
      device: device.backend,
      precision: precision as "fp16",
      threads: device.backend === "cpu" ? threads ?? Math.max(1, Math.floor(availableParallelism() / slots.length)) : undefined,
      chunkSize,
      classify,
      keepEmbeddings,
      embeddingsDtype: embeddingsDtype as "float32",
      tokenBudget,
    };
    const descs = await runWorkers(slots, init, parts, onPart, warn);
    description = descs.join("; ");
  }
  const computeSeconds = (performance.now() - t1) / 1000;
  progress.finish();

  // Assemble the final files (a shard stops at its parts: `virnuc merge` assembles shards).
  const expected = [...Array(summary.totalParts).keys()].filter((k) => inShard(k, shard));
  const runInfo = {
    command,
    device: description || device.backend,
    precision: state.precision,
    chunkSize,
    windowReads,
    models: resolved,
    totalRecords: summary.totalRecords,
    totalParts: summary.totalParts,
    resumedParts: summary.skipped,
    computeSeconds,
    modelLoadSeconds: loadSeconds,
    modelLoad: loadTimings,
    wallSeconds: 0,
    summary: summarize(telemetry, computeSeconds),
    telemetry,
    shard,
    embeddingsFormat: keepEmbeddings ? embeddings.format : undefined,
    // version, commit, argv, inputs (with sha256 when the reader provides it), libvirnuc, machine
    ...collectProvenance({ inputs: state.inputs, inputSha256: summary.inputSha256, libvirnuc: libvirnucInUse() }),
  };
  await assembleOutputs(dir, [{ store, parts: expected }], {
    classify,
    keepEmbeddings,
    embeddingsFormat: embeddings.format,
    shard,
    totalParts: summary.totalParts,
    runInfo: () => ({ ...runInfo, wallSeconds: (performance.now() - t0) / 1000 }),
  });
}

/** Per-stage totals for run.json: tokens, throughput, packing efficiency, host/device waits. */
export function summarize(t: PartTelemetry[], computeSeconds: number) {
  const sum = (f: (x: PartTelemetry) => number) => t.reduce((a, x) => a + f(x), 0);
  const enc = (name: "esm" | "dnabert") => {
    const tokens = sum((x) => x[`${name}_tokens`]);
    const slots = sum((x) => (x[`${name}_packing_efficiency`] > 0 ? x[`${name}_tokens`] / x[`${name}_packing_efficiency`] : 0));
    return {
      tokens,
      batches: sum((x) => x[`${name}_batches`]),
      packingEfficiency: slots > 0 ? tokens / slots : 0,
      tokensPerSecond: computeSeconds > 0 ? tokens / computeSeconds : 0,
    };
  };
  return {
    parts: t.length,
    reads: sum((x) => x.reads),
    windows: sum((x) => x.windows),
    frames: sum((x) => x.frames),
    readsPerSecond: computeSeconds > 0 ? sum((x) => x.reads) / computeSeconds : 0,
    esm: enc("esm"),
    dnabert: enc("dnabert"),
    hostPrepareSeconds: sum((x) => x.host_prepare_s),
    deviceWaitForHostSeconds: sum((x) => x.device_wait_for_host_s),
    hostWaitForDeviceSeconds: sum((x) => x.host_wait_for_device_s),
  };
}

function positiveIntOrZero(v: string, flag: string): number {
  const n = Number(v.trim());
  if (!Number.isInteger(n) || n < 0) throw new UserError(`${flag}: '${v}' is not a GPU index`);
  return n;
}


