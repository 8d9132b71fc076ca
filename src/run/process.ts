/**
 * processParts: parts in, finished parts on disk, the same code in a single-process run and in
 * each worker subprocess. Drives the chain (chain.ts) with the host preparing part k+1 while the
 * device encodes part k, and the classifier of part k running ahead of part k+1's encoders:
 *
 *   prepare(k) -> submit(k) -> prepare(k+1) -> collect(k) -> classify(k) -> submit(k+1) -> write(k) ...
 *
 * A stop request (signal) cancels the engine: the loop ends at the next batch with RunStopped,
 * finished parts stay, the part in flight is dropped.
 */
import type { ClassifiedPart, PartInput, PreparedPart } from "./chain.ts";
import { preparePart, PartEncoder, PartClassifier, partTables } from "./chain.ts";
import { BoundaryRecheck } from "../classify/recheck.ts";
import type { EncodingPart } from "../engine/encode.ts";
import { CancelledError } from "../engine/engine.ts";
import type { LoadedModels } from "./models.ts";
import type { PartPlan } from "./plan.ts";
import { PartStore, type PartEntry } from "./store.ts";
import { RunStopped, type StopControl } from "./stop.ts";

export interface PartTelemetry {
  part: number;
  reads: number;
  windows: number;
  frames: number;
  esm_tokens: number;
  dnabert_tokens: number;
  esm_batches: number;
  dnabert_batches: number;
  esm_packing_efficiency: number;
  dnabert_packing_efficiency: number;
  esm_token_budget: number;
  dnabert_token_budget: number;
  host_prepare_s: number;
  device_s: number;
  host_wait_for_device_s: number;
  /** lower bound of the time the device sat idle waiting for the host before this part */
  device_wait_for_host_s: number;
  tokens_per_s: number;
  device_free_bytes: number;
  /** --recheck-margin: frames embedded again in fp16, and the seconds that took */
  recheck_frames?: number;
  recheck_s?: number;
}

/** Where finished parts and warnings go: the progress display, or the parent of a worker. */
export interface PartSink {
  done(entry: PartEntry, t: PartTelemetry): void;
  warn(msg: string): void;
}

/** Test seam: VIRNUC_TEST_PART_DELAY_MS slows every part down, so that signals land mid-run. */
const TEST_PART_DELAY_MS = Number(process.env.VIRNUC_TEST_PART_DELAY_MS ?? 0) || 0;

const LONG_PROTEIN_WARNING =
  "some proteins are longer than 1022 residues: ESM-2 was trained on at most 1022 (they are run whole and pooled over their first 1024 residues, as VirNucPro does)";

export async function processParts(
  plan: PartPlan,
  models: LoadedModels,
  parts: AsyncIterable<PartInput>,
  sink: PartSink,
  stop?: StopControl,
): Promise<void> {
  const store = new PartStore(plan.dir);
  const r = models.resolved;
  const encoder = new PartEncoder(
    models.engine,
    {
      esm: { handle: models.esm, label: "ESM-2", source: r.esm, budget: plan.tokenBudget ?? models.esm.suggestTokenBudget() },
      dnabert: { handle: models.dnabert, label: "DNABERT-S", source: r.dnabert, budget: plan.tokenBudget ?? models.dnabert.suggestTokenBudget() },
    },
    sink.warn,
  );
  const classifier = new PartClassifier(
    models.engine,
    plan.classify && models.classifier
      ? { handle: models.classifier, source: r.classifier ?? "classifier", encoderSources: { esm: r.esm, dnabert: r.dnabert } }
      : null,
  );
  const recheck =
    (plan.recheckMargin ?? 0) > 0 && plan.classify && models.esmRecheck
      ? new BoundaryRecheck(
          models.engine,
          {
            handle: models.esmRecheck,
            budget: plan.tokenBudget ?? models.esmRecheck.suggestTokenBudget(),
            source: r.esm,
            margin: plan.recheckMargin ?? 0,
          },
          classifier,
          sink.warn,
        )
      : null;
  stop?.onStop(() => models.engine.cancel());
  const check = () => {
    if (stop?.signal) throw new RunStopped(stop.signal, plan.dir);
  };
  const it = parts[Symbol.asyncIterator]();
  const nextPrepared = async (): Promise<PreparedPart | null> => {
    // One turn of the event loop per part, whatever the backend: signal handlers run here.
    await new Promise<void>((r) => setImmediate(r));
    check();
    const n = await it.next();
    if (n.done) return null;
    return preparePart(n.value, plan.chunkSize, models.tokenizers);
  };
  let warnedLong = false;
  try {
    let inflight: EncodingPart | null = null;
    const first = await nextPrepared();
    if (first) inflight = await encoder.submit(first);
    let lastIdleStart = 0;
    let idleBefore = 0;
    while (inflight) {
      const following = await nextPrepared();
      const encoded = encoder.collect(inflight);
      const pending = classifier.submit(encoded);
      // --recheck-margin: the part's near-boundary frames are redone before the next part is queued
      // (behind it they would wait for the whole part, and the device would then idle).
      let rechecked: { part: ClassifiedPart | null; frames: number; seconds: number } = { part: null, frames: 0, seconds: 0 };
      if (recheck) {
        rechecked = recheck.apply(pending.result());
        check();
      }
      const idleStart = performance.now();
      const nextInflight = following ? await encoder.submit(following) : null;
      const idleAfter = (performance.now() - idleStart) / 1000;
      const classified = rechecked.part ?? pending.result();
      check();
      const p = encoded.prepared;
      const s = encoded.stats;
      if (p.longProteins > 0 && !warnedLong) {
        warnedLong = true;
        sink.warn(LONG_PROTEIN_WARNING);
      }
      let free = 0;
      try {
        free = models.engine.memory().free;
      } catch {
        free = 0;
      }
      const tokens = s.esm.tokens + s.dnabert.tokens;
      const t: PartTelemetry = {
        part: p.records.index,
        reads: p.records.ids.length,
        windows: p.windowIds.length,
        frames: p.frameIds.length,
        esm_tokens: s.esm.tokens,
        dnabert_tokens: s.dnabert.tokens,
        esm_batches: s.esm.batches,
        dnabert_batches: s.dnabert.batches,
        esm_packing_efficiency: s.esm.efficiency,
        dnabert_packing_efficiency: s.dnabert.efficiency,
        esm_token_budget: s.esm.budget,
        dnabert_token_budget: s.dnabert.budget,
        host_prepare_s: p.seconds,
        device_s: s.deviceSeconds,
        host_wait_for_device_s: s.hostWaitSeconds,
        device_wait_for_host_s: idleBefore,
        tokens_per_s: s.deviceSeconds > 0 ? tokens / s.deviceSeconds : 0,
        device_free_bytes: free,
        ...(recheck ? { recheck_frames: rechecked.frames, recheck_s: rechecked.seconds } : {}),
      };
      // The device waited for the host if collect found it already idle: then the whole gap
      // since the previous submit counts; otherwise only the concat + submit time does.
      idleBefore = s.hostWaitSeconds < 1e-4 && lastIdleStart > 0 ? (idleStart - lastIdleStart) / 1000 : idleAfter;
      lastIdleStart = idleStart;
      const tables = partTables(classified, plan);
      const entry = store.writePart(tables.head, tables.files, t);
      sink.done(entry, t);
      if (TEST_PART_DELAY_MS > 0) await Bun.sleep(TEST_PART_DELAY_MS);
      inflight = nextInflight;
    }
  } catch (err) {
    if (err instanceof CancelledError && stop?.signal) throw new RunStopped(stop.signal, plan.dir);
    throw err;
  } finally {
    recheck?.close();
    encoder.close();
  }
}
