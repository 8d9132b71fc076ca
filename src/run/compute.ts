/**
 * The device half of a part: both encoders, the feature concat (DNABERT-S first), the
 * classifier, and the calls. Split into submit / collect / classify so that the host can prepare
 * the next part while the device works on this one, and the classifier of part k runs ahead of
 * the encoders of part k+1.
 */
import { EncoderRunner, type EncodeStats, type PendingEncode } from "./encode.ts";
import type { PreparedPart } from "./part.ts";
import type { LoadedModels } from "./models.ts";
import type { HostBuffer, Ticket } from "../engine/engine.ts";
import { windowCalls, sequenceCalls, type WindowCalls, type SequenceCalls } from "../classify/calls.ts";

export interface PartResult {
  prepared: PreparedPart;
  /** n x 2 probabilities (others, virus); empty when embedding only */
  probs: Float32Array;
  windows: WindowCalls;
  sequences: SequenceCalls;
  /** n x dD and n x dE, only when embeddings are kept */
  dnabert?: Float32Array;
  esm?: Float32Array;
  dnabertDim: number;
  esmDim: number;
  stats: { esm: EncodeStats; dnabert: EncodeStats; deviceSeconds: number; hostWaitSeconds: number };
}

export interface InFlight {
  prepared: PreparedPart;
  esm: PendingEncode;
  dnabert: PendingEncode;
  submittedAt: number;
}

export interface Collected {
  f: InFlight;
  dnabert: Float32Array;
  esm: Float32Array;
  waited: number;
  doneAt: number;
}

export class PartComputer {
  readonly esm: EncoderRunner;
  readonly dnabert: EncoderRunner;

  constructor(
    private readonly models: LoadedModels,
    budgets: { esm: number; dnabert: number },
  ) {
    this.esm = new EncoderRunner(models.engine, models.esm, budgets.esm, "ESM-2");
    this.dnabert = new EncoderRunner(models.engine, models.dnabert, budgets.dnabert, "DNABERT-S");
  }

  submit(p: PreparedPart): InFlight {
    const name = (i: number) => `frame ${p.frameIds[i]}`;
    // DNABERT-S first: it is short, so the classifier of this part can start sooner.
    const dnabert = this.dnabert.submit(p.dnabertTokens, name);
    const esm = this.esm.submit(p.esmTokens, name);
    return { prepared: p, esm, dnabert, submittedAt: performance.now() };
  }

  /** Waits for both encoders of a part; embeddings in frame order. */
  collect(f: InFlight): Collected {
    const t0 = performance.now();
    const dnabert = f.dnabert.finish();
    const esm = f.esm.finish();
    return { f, dnabert, esm, waited: (performance.now() - t0) / 1000, doneAt: performance.now() };
  }

  /**
   * Submits the classifier for a collected part (call before submitting the next part, so that
   * it runs ahead of the next part's encoders), then `.result()` completes the part.
   */
  classify(c: Collected, opts: { classify: boolean; keepEmbeddings: boolean }): { result(): PartResult } {
    const p = c.f.prepared;
    const n = p.frameIds.length;
    const dD = this.dnabert.dim;
    const dE = this.esm.dim;
    let pending: { feat: HostBuffer; out: HostBuffer; ticket: Ticket; k: number } | undefined;
    if (opts.classify && n > 0) {
      const cls = this.models.classifier!;
      const F = dD + dE;
      const feat = this.models.engine.alloc(n * F * 4);
      const out = this.models.engine.alloc(n * cls.nClasses * 4);
      const fv = feat.f32();
      for (let i = 0; i < n; i++) {
        fv.set(c.dnabert.subarray(i * dD, (i + 1) * dD), i * F);
        fv.set(c.esm.subarray(i * dE, (i + 1) * dE), i * F + dD);
      }
      pending = { feat, out, ticket: cls.submitClassify(feat, n, out), k: cls.nClasses };
    }
    return {
      result: (): PartResult => {
        let probs = new Float32Array(0);
        if (pending) {
          try {
            pending.ticket.wait();
            probs = new Float32Array(pending.out.f32().subarray(0, n * pending.k));
          } finally {
            pending.feat.free();
            pending.out.free();
          }
        }
        const windows = windowCalls(p.windowIds.length, p.frameWindow, probs.length ? probs : new Float32Array(2 * n));
        const sequences = sequenceCalls(p.records.ids.length, p.windowRecord, windows);
        return {
          prepared: p,
          probs,
          windows,
          sequences,
          dnabert: opts.keepEmbeddings ? c.dnabert : undefined,
          esm: opts.keepEmbeddings ? c.esm : undefined,
          dnabertDim: dD,
          esmDim: dE,
          stats: {
            esm: c.f.esm.stats,
            dnabert: c.f.dnabert.stats,
            deviceSeconds: (c.doneAt - c.f.submittedAt) / 1000,
            hostWaitSeconds: c.waited,
          },
        };
      },
    };
  }

  close() {
    this.esm.close();
    this.dnabert.close();
  }
}
