/**
 * The compute loop shared by a single-process run and by each worker subprocess:
 * parts in, part results out, with the host preparing part k+1 while the device runs part k.
 *
 *   prepare(k) -> submit(k) -> prepare(k+1) -> collect(k) -> classify(k) -> submit(k+1) -> write(k) ...
 */
import type { FastaRecord } from "../fasta/reader.ts";
import { preparePart, type PreparedPart } from "./part.ts";
import { PartComputer, type PartResult, type InFlight } from "./compute.ts";
import type { LoadedModels } from "./models.ts";

export interface PartInput {
  index: number;
  records: FastaRecord[];
}

export interface LoopOptions {
  chunkSize: number;
  classify: boolean;
  keepEmbeddings: boolean;
  budgets: { esm: number; dnabert: number };
}

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
}

export async function computeLoop(
  parts: AsyncIterable<PartInput>,
  models: LoadedModels,
  opts: LoopOptions,
  onResult: (r: PartResult, t: PartTelemetry) => Promise<void> | void,
): Promise<void> {
  const computer = new PartComputer(models, opts.budgets);
  const tok = models.tokenizers;
  const it = parts[Symbol.asyncIterator]();
  const nextPrepared = async (): Promise<PreparedPart | null> => {
    const n = await it.next();
    if (n.done) return null;
    return preparePart(n.value.index, n.value.records, opts.chunkSize, tok);
  };
  try {
    let cur = await nextPrepared();
    let inflight: InFlight | null = cur ? computer.submit(cur) : null;
    let lastIdleStart = 0;
    let idleBefore = 0;
    while (inflight) {
      const following = await nextPrepared();
      const collected = computer.collect(inflight);
      const pending = computer.classify(collected, opts);
      const idleStart = performance.now();
      const nextInflight = following ? computer.submit(following) : null;
      const idleAfter = (performance.now() - idleStart) / 1000;
      const result = pending.result();
      const p = result.prepared;
      const s = result.stats;
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
      };
      // The device waited for the host if collect found it already idle: then the whole gap
      // since the previous submit counts; otherwise only the concat + submit time does.
      idleBefore = s.hostWaitSeconds < 1e-4 && lastIdleStart > 0 ? (idleStart - lastIdleStart) / 1000 : idleAfter;
      lastIdleStart = idleStart;
      await onResult(result, t);
      cur = following;
      inflight = nextInflight;
    }
  } finally {
    computer.close();
  }
}
