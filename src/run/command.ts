/**
 * `virnuc predict` and `virnuc embed`: options -> run plan -> lock the directory -> models ->
 * parts (processParts in this process, or dealt to one subprocess per GPU / CPU worker) ->
 * assembled outputs. SIGINT/SIGTERM/SIGHUP stop the run (stop.ts): no final output, parts kept.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeError } from "../output/atomic.ts";
import { loadModels, resolveModels, fingerprintModels, type LoadedModels } from "./models.ts";
import { PartStore, FINAL_OUTPUTS, type RunState, type PartEntry } from "./store.ts";
import { readParts, readWork, inShard, describeInputs, type SourceSummary } from "./source.ts";
import { processParts, type PartTelemetry } from "./process.ts";
import { assembleOutputs } from "./assemble.ts";
import { prewarmParquetThread } from "./parquet-thread.ts";
import { runWorkers, type WorkerInit } from "./workers.ts";
import { Progress } from "./progress.ts";
import { planRun, type PredictOptions, type RunPlan } from "./plan.ts";
import { DirLock } from "./lock.ts";
import { RunStopped, StopControl, trapSignals } from "./stop.ts";
import { collectProvenance, libvirnucInUse } from "../output/provenance.ts";
import { sniffInputs, type StreamHead } from "../fasta/reader.ts";

export type { PredictOptions } from "./plan.ts";
export { parseShard } from "./plan.ts";

export async function predictCommand(inputs: string[], opts: PredictOptions, command: "predict" | "embed"): Promise<void> {
  const t0 = performance.now();
  const early = (m: string) => console.error(`virnuc: warning: ${m}`);
  const plan = planRun(inputs, opts, command, early);
  // Every input's format (compression, first record) before anything is made or loaded; the
  // bytes read from streams for it are kept for the reader.
  const heads = await sniffInputs(plan.inputs);
  const dir = plan.dir;
  const control = new StopControl();
  let untrap = () => {};
  let lock: DirLock | null = null;
  try {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw writeError(dir, err);
    }
    lock = DirLock.acquire(dir, command, early);
    await run(plan, heads, control, t0, () => (untrap = trapSignals(control)));
  } catch (err) {
    // A stop wins over the errors it causes on its way out (cancelled work, killed workers).
    if (control.signal && !(err instanceof RunStopped)) throw new RunStopped(control.signal, dir);
    throw err;
  } finally {
    untrap();
    lock?.release();
    for (const h of heads.values()) h.close(); // streams the run did not get to read
  }
}

async function run(plan: RunPlan, heads: Map<string, StreamHead>, control: StopControl, t0: number, trap: () => void): Promise<void> {
  const { dir, command } = plan;
  const resolved = await resolveModels({ ...plan.models, chunkSize: plan.chunkSize, needClassifier: plan.classify });
  const progress = new Progress({ enabled: plan.progress, logJson: plan.logJson });
  const warn = (m: string) => progress.warn(m);
  if (plan.keepEmbeddings && plan.embeddingsWarning) warn(plan.embeddingsWarning);

  // Load in this process (also when workers are used: it fingerprints the files and checks
  // that the models load, before any subprocess starts).
  let models: LoadedModels | null = null;
  let description = "";
  let loadTimings: Record<string, number> = {};
  const tLoad = performance.now();
  if (plan.slots.length === 0) {
    progress.stage(`loading the models (${plan.device.backend})...`);
    models = loadModels(resolved, plan.device, plan.precision, { threads: plan.threads, recheck: (plan.recheckMargin ?? 0) > 0 });
    description = models.description;
    loadTimings = models.timings;
  } else {
    fingerprintModels(resolved);
  }
  const loadSeconds = (performance.now() - tLoad) / 1000;

  try {
    // Until here (resolving, hashing, loading: native calls that block this thread for seconds)
    // a signal ends the process at once: nothing has been written yet. From here on it stops the
    // run and keeps the finished parts.
    trap();
    control.onStop(() => progress.interrupted());
    const state: RunState = {
      version: 1,
      command,
      inputs: describeInputs(plan.inputs),
      chunkSize: plan.chunkSize,
      windowReads: plan.windowReads,
      precision: plan.precision,
      ...(plan.recheckMargin ? { recheckMargin: plan.recheckMargin } : {}),
      saveEmbeddings: plan.keepEmbeddings,
      embeddingsDtype: plan.embeddingsDtype,
      embeddingsFormat: plan.embeddingsFormat,
      models: {
        esm: resolved.files.esm.map((f) => ({ path: f.path, sha256: f.sha256 })),
        dnabert: resolved.files.dnabert.map((f) => ({ path: f.path, sha256: f.sha256 })),
        classifier: resolved.files.classifier.map((f) => ({ path: f.path, sha256: f.sha256 })),
      },
      shard: plan.shard,
    };
    const store = new PartStore(dir);
    store.open(state, { resume: plan.resume, force: plan.force });

    // Resume: finished parts that validate are skipped; the rest are redone.
    const done = new Map<number, PartEntry>();
    if (plan.resume) {
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
    const source = { inputs: plan.inputs, windowReads: plan.windowReads, shard: plan.shard, done, onWarning: warn, indexDir: join(store.stateDir, "index"), heads };
    progress.trackInput(() => summary.read, state.inputs);
    const telemetry: PartTelemetry[] = [];
    for (const e of done.values()) if (e.telemetry) telemetry.push(e.telemetry);
    progress.start(done.size);
    const onPart = (_entry: PartEntry, t: PartTelemetry, worker?: string) => {
      telemetry.push(t);
      if (summary.expectedReads !== undefined) progress.setExpectedReads(summary.expectedReads);
      progress.part(t, worker);
    };

    const t1 = performance.now();
    // predict writes its Parquet files on a second thread: load it while the parts are computed
    if (plan.classify && !plan.shard) prewarmParquetThread();
    if (models) {
      await processParts(plan, models, readParts(source, summary), { done: onPart, warn }, control);
    } else {
      const init: WorkerInit = {
        plan: {
          dir,
          chunkSize: plan.chunkSize,
          classify: plan.classify,
          keepEmbeddings: plan.keepEmbeddings,
          embeddingsDtype: plan.embeddingsDtype,
          tokenBudget: plan.tokenBudget,
          recheckMargin: plan.recheckMargin,
        },
        resolved: { esm: resolved.esm, dnabert: resolved.dnabert, tokenizer: resolved.tokenizer, classifier: resolved.classifier },
        device: plan.device.backend,
        precision: plan.precision,
        threads: plan.device.backend === "cpu" ? plan.threads : undefined,
        parentPid: process.pid,
      };
      const warned = new Set<string>();
      // Workers read their parts themselves when the inputs can be seeked (readWork).
      const descs = await runWorkers(plan.slots, init, readWork(source, summary), {
        done: onPart,
        warn: (m) => {
          if (!warned.has(m)) warned.add(m), warn(m);
        },
      }, control);
      description = descs.join("; ");
    }
    const t2 = performance.now();
    const computeSeconds = (t2 - t1) / 1000;
    progress.finish();
    control.check(dir);

    // Assemble the final files (a shard stops at its parts: `virnuc merge` assembles shards).
    const expected = [...Array(summary.totalParts).keys()].filter((k) => inShard(k, plan.shard));
    const runInfo = {
      command,
      device: description || plan.device.backend,
      precision: state.precision,
      ...(plan.recheckMargin ? { recheckMargin: plan.recheckMargin } : {}),
      chunkSize: plan.chunkSize,
      windowReads: plan.windowReads,
      models: resolved,
      totalRecords: summary.totalRecords,
      totalParts: summary.totalParts,
      resumedParts: summary.skipped,
      computeSeconds,
      // Where the wall time goes: before the parts (inputs, models, state), the parts, the final files.
      setupSeconds: (t1 - t0) / 1000,
      modelLoadSeconds: loadSeconds,
      modelLoad: loadTimings,
      wallSeconds: 0,
      summary: summarize(telemetry, computeSeconds),
      telemetry,
      shard: plan.shard,
      embeddingsFormat: plan.keepEmbeddings ? plan.embeddingsFormat : undefined,
      warnings: progress.warnings,
      // version, commit, argv, inputs (with the sha256 the reader computed while streaming), libvirnuc, machine
      ...collectProvenance({ inputs: state.inputs, inputSha256: inputHashes(summary), libvirnuc: libvirnucInUse() }),
    };
    try {
      await assembleOutputs(dir, [{ store, parts: expected }], {
        classify: plan.classify,
        keepEmbeddings: plan.keepEmbeddings,
        embeddingsFormat: plan.embeddingsFormat,
        shard: plan.shard,
        totalParts: summary.totalParts,
        runInfo: () => {
          const now = performance.now();
          return { ...runInfo, assembleSeconds: (now - t2) / 1000, wallSeconds: (now - t0) / 1000 };
        },
        stop: control,
      });
    } catch (err) {
      // Stopped while assembling: no final output may stay (the parts are complete).
      if (control.stopped) for (const f of [...FINAL_OUTPUTS, ".virnuc/complete.json"]) rmSync(join(dir, f), { force: true });
      throw err;
    }
    if (command === "predict" && !plan.shard && plan.report) await (await import("../report/report.ts")).writeReport(dir, { onError: warn });
  } finally {
    models?.close();
  }
}

/** sha256 of each input read to its end, by the path the run state records (describeInputs). */
function inputHashes(summary: SourceSummary): Map<string, string> {
  const m = new Map<string, string>();
  for (const i of summary.read?.inputs ?? []) if (i.sha256) m.set(i.path === "-" ? "-" : resolve(i.path), i.sha256);
  for (const [path, sha256] of summary.inputSha256 ?? []) m.set(path, sha256);
  return m;
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
    // --recheck-margin: frames redone in fp16, and the seconds that took
    recheckFrames: sum((x) => x.recheck_frames ?? 0),
    recheckSeconds: sum((x) => x.recheck_s ?? 0),
  };
}
