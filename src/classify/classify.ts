/**
 * Chain step EncodedPart -> ClassifiedPart: the feature of each frame (DNABERT-S 768 then ESM-2
 * 2560), the MLP classifier, and every call (calls.ts). Submitted before the next part's
 * encoders so that it runs ahead of them; `.result()` completes it.
 * NaN or Inf in a feature or a score is an error naming the frame and the model file, whatever
 * the backend reported.
 */
import type { ClassifierHandle, Engine, HostBuffer, Ticket } from "../engine/engine.ts";
import { NonFiniteError } from "../engine/engine.ts";
import { UserError } from "../util/errors.ts";
import type { ClassifiedPart, EncodedPart } from "../run/chain.ts";
import { frameCalls, sequenceCalls, windowCalls } from "./calls.ts";

export interface ClassifierSpec {
  handle: ClassifierHandle;
  /** the classifier file, named in errors */
  source: string;
  /** the encoders' model files, named when a feature is not finite */
  encoderSources: { dnabert: string; esm: string };
}

/** Index of the first non-finite value in x, or -1. */
export function firstNonFinite(x: Float32Array): number {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return i;
  return -1;
}

export class PartClassifier {
  /** spec null: embedding only, no calls */
  constructor(
    private readonly engine: Engine,
    private readonly spec: ClassifierSpec | null,
  ) {}

  submit(e: EncodedPart): { result(): ClassifiedPart } {
    const p = e.prepared;
    if (!this.spec) return { result: () => ({ encoded: e, calls: null }) };
    const pending = this.score(e.dnabert, e.esm, e.dnabertDim, e.esmDim, p.frameIds.length, (i) => p.frameIds[i]);
    return {
      result: (): ClassifiedPart => {
        const frames = frameCalls(pending.wait());
        const windows = windowCalls(p.windowIds.length, p.frameWindow, frames);
        const sequences = sequenceCalls(p.records.ids.length, p.windowRecord, windows);
        return { encoded: e, calls: { frames, windows, sequences } };
      },
    };
  }

  /**
   * The classifier's probabilities (n x 2: P(others), P(virus)) of n frames' features, row i being
   * DNABERT-S row i then ESM-2 row i; submitted now, `wait()` returns them. Errors name the frame
   * (`frameName`) and the model file.
   */
  score(dnabert: Float32Array, esm: Float32Array, dD: number, dE: number, n: number, frameName: (i: number) => string): { wait(): Float32Array } {
    if (!this.spec) throw new Error("PartClassifier.score without a classifier");
    for (const [name, x, d] of [["DNABERT-S", dnabert, dD], ["ESM-2", esm, dE]] as const) {
      const bad = firstNonFinite(x.subarray(0, n * d));
      if (bad >= 0) {
        const src = name === "DNABERT-S" ? this.spec.encoderSources.dnabert : this.spec.encoderSources.esm;
        throw new UserError(`${name} (${src}) produced NaN/Inf for frame ${frameName(Math.floor(bad / d))}: check the model weights`);
      }
    }
    const cls = this.spec.handle;
    let pending: { feat: HostBuffer; out: HostBuffer; ticket: Ticket; k: number } | undefined;
    if (n > 0) {
      const F = dD + dE;
      if (cls.nClasses !== 2) throw new UserError(`classifier ${this.spec.source} has ${cls.nClasses} outputs, VirNucPro's has 2 (others, virus)`);
      if (F !== cls.config.inFeatures)
        throw new UserError(`classifier ${this.spec.source} takes ${cls.config.inFeatures} features, the encoders give ${F}`);
      const feat = this.engine.alloc(n * F * 4);
      const out = this.engine.alloc(n * cls.nClasses * 4);
      const fv = feat.f32();
      for (let i = 0; i < n; i++) {
        fv.set(dnabert.subarray(i * dD, (i + 1) * dD), i * F);
        fv.set(esm.subarray(i * dE, (i + 1) * dE), i * F + dD);
      }
      try {
        pending = { feat, out, ticket: cls.submitClassify(feat, n, out), k: cls.nClasses };
      } catch (err) {
        feat.free();
        out.free();
        throw err;
      }
    }
    const source = this.spec.source;
    return {
      wait: (): Float32Array => {
        if (!pending) return new Float32Array(0);
        let probs: Float32Array;
        try {
          pending.ticket.wait();
          probs = new Float32Array(pending.out.f32().subarray(0, n * pending.k));
        } catch (err) {
          if (err instanceof NonFiniteError)
            throw new UserError(`classifier (${source}) produced NaN/Inf scores for frame ${frameName(Math.max(0, err.row))}: check the classifier weights`);
          throw err;
        } finally {
          pending.feat.free();
          pending.out.free();
        }
        const bad = firstNonFinite(probs);
        if (bad >= 0)
          throw new UserError(`classifier (${source}) produced NaN/Inf scores for frame ${frameName(Math.floor(bad / pending.k))}: check the classifier weights`);
        return probs;
      },
    };
  }
}
