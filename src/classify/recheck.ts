/**
 * --recheck-margin M (with --precision fp8): the frames whose call fp8's rounding could have
 * changed are embedded again with ESM-2 in fp16 and classified again, so that every call (frame,
 * window, record) is the one an fp16 run makes wherever fp8 moved no score by M or more.
 *
 * A frame's call compares P(virus) with P(others) = 1 - P(virus); an error below M in each score
 * moves their difference by less than 2M, so frames with |P(virus) - P(others)| < 2M are redone.
 * A window's call compares its frames' largest P(virus) with their largest P(others); each maximum
 * moves by less than M, so every frame of a window whose two maxima are less than 2M apart is redone
 * too (a window's call can turn on frames that are far from 0.5). Records' calls follow from their
 * windows'. The redone frames get the fp16 scores (and, with --save-embeddings, the fp16 ESM-2
 * embeddings); the others keep fp8's.
 */
import type { EncoderHandle, Engine } from "../engine/engine.ts";
import { EncoderRunner } from "../engine/encode.ts";
import type { ClassifiedPart } from "../run/chain.ts";
import { frameCalls, sequenceCalls, windowCalls } from "./calls.ts";
import type { PartClassifier } from "./classify.ts";

export interface RecheckSpec {
  /** ESM-2 at the precision whose calls are wanted (fp16) */
  handle: EncoderHandle;
  budget: number;
  /** the model file, named in errors */
  source: string;
  margin: number;
}

/** Frames to redo (ascending) for the part's calls, by the rule above. */
export function framesNearTheBoundary(calls: NonNullable<ClassifiedPart["calls"]>, frameWindow: Int32Array, margin: number): number[] {
  const f = calls.frames;
  const w = calls.windows;
  const out: number[] = [];
  for (let i = 0; i < f.scoreVirus.length; i++) {
    const win = frameWindow[i];
    if (Math.abs(f.scoreVirus[i] - f.scoreOthers[i]) < 2 * margin || Math.abs(w.maxVirus[win] - w.maxOthers[win]) < 2 * margin) out.push(i);
  }
  return out;
}

export class BoundaryRecheck {
  private readonly runner: EncoderRunner;

  constructor(
    engine: Engine,
    private readonly spec: RecheckSpec,
    private readonly classifier: PartClassifier,
    warn?: (msg: string) => void,
  ) {
    this.runner = new EncoderRunner(engine, spec.handle, spec.budget, "ESM-2 (recheck)", { source: spec.source, warn });
  }

  /** The part with its near-boundary frames redone; `frames`: how many were. */
  apply(c: ClassifiedPart): { part: ClassifiedPart; frames: number; seconds: number } {
    if (!c.calls || this.spec.margin <= 0) return { part: c, frames: 0, seconds: 0 };
    const t0 = performance.now();
    const e = c.encoded;
    const p = e.prepared;
    const redo = framesNearTheBoundary(c.calls, p.frameWindow, this.spec.margin);
    if (redo.length === 0) return { part: c, frames: 0, seconds: 0 };
    const dD = e.dnabertDim;
    const dE = e.esmDim;
    if (this.runner.dim !== dE) throw new Error(`recheck ESM-2 gives ${this.runner.dim} values per frame, the run's ${dE}`);
    const esm = this.runner.submit(redo.map((i) => p.esmTokens[i]), (j) => p.frameIds[redo[j]]).finish();
    const dna = new Float32Array(redo.length * dD);
    redo.forEach((i, j) => dna.set(e.dnabert.subarray(i * dD, (i + 1) * dD), j * dD));
    const probs = this.classifier.score(dna, esm, dD, dE, redo.length, (j) => p.frameIds[redo[j]]).wait();
    // The part's probabilities with the redone rows replaced, then every call from them.
    const f = c.calls.frames;
    const all = new Float32Array(2 * f.scoreVirus.length);
    for (let i = 0; i < f.scoreVirus.length; i++) {
      all[2 * i] = f.scoreOthers[i];
      all[2 * i + 1] = f.scoreVirus[i];
    }
    redo.forEach((i, j) => {
      all[2 * i] = probs[2 * j];
      all[2 * i + 1] = probs[2 * j + 1];
      e.esm.set(esm.subarray(j * dE, (j + 1) * dE), i * dE);
    });
    const frames = frameCalls(all);
    const windows = windowCalls(p.windowIds.length, p.frameWindow, frames);
    const sequences = sequenceCalls(p.records.ids.length, p.windowRecord, windows);
    return { part: { encoded: e, calls: { frames, windows, sequences } }, frames: redo.length, seconds: (performance.now() - t0) / 1000 };
  }

  close(): void {
    this.runner.close();
  }
}
