/**
 * The calling rule, as VirNucPro makes it (spec §1.5), in one place: every output file takes its
 * calls from here (output/ only formats them).
 * - frame: virus when P(virus) > P(others) (argmax; on a tie the first index, "others", wins);
 * - window: Is_Virus = max(score_virus) >= max(score_others) over the window's frames;
 * - input record (a summary VirNucPro never had): virus when any window is viral, others when
 *   windows kept frames but none is viral, none (null) when no window kept a frame.
 */
import type { FrameCalls, SequenceCalls, WindowCalls } from "../run/chain.ts";

export type { FrameCalls, SequenceCalls, WindowCalls } from "../run/chain.ts";

export function frameIsVirus(scoreOthers: number, scoreVirus: number): boolean {
  return scoreVirus > scoreOthers;
}

/** From the maxima over a window's frames (also over frames pooled by window id). */
export function windowIsVirus(maxOthers: number, maxVirus: number): boolean {
  return maxVirus >= maxOthers;
}

/** probs: n x 2 row-major (P(others), P(virus)). */
export function frameCalls(probs: Float32Array): FrameCalls {
  const n = probs.length >> 1;
  const scoreOthers = new Float32Array(n);
  const scoreVirus = new Float32Array(n);
  const isVirus = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    scoreOthers[i] = probs[2 * i];
    scoreVirus[i] = probs[2 * i + 1];
    isVirus[i] = frameIsVirus(scoreOthers[i], scoreVirus[i]) ? 1 : 0;
  }
  return { scoreOthers, scoreVirus, isVirus };
}

export function windowCalls(nWindows: number, frameWindow: Int32Array, f: FrameCalls): WindowCalls {
  const nFrames = new Int32Array(nWindows);
  const maxOthers = new Float32Array(nWindows).fill(Number.NaN);
  const maxVirus = new Float32Array(nWindows).fill(Number.NaN);
  for (let i = 0; i < frameWindow.length; i++) {
    const w = frameWindow[i];
    const o = f.scoreOthers[i];
    const v = f.scoreVirus[i];
    if (nFrames[w] === 0 || o > maxOthers[w]) maxOthers[w] = o;
    if (nFrames[w] === 0 || v > maxVirus[w]) maxVirus[w] = v;
    nFrames[w]++;
  }
  const isVirus = new Int8Array(nWindows);
  for (let w = 0; w < nWindows; w++) isVirus[w] = nFrames[w] === 0 ? -1 : windowIsVirus(maxOthers[w], maxVirus[w]) ? 1 : 0;
  return { nFrames, maxOthers, maxVirus, isVirus };
}

export function sequenceCalls(nRecords: number, windowRecord: Int32Array, w: WindowCalls): SequenceCalls {
  const nWindows = new Int32Array(nRecords);
  const nViralWindows = new Int32Array(nRecords);
  const maxVirus = new Float32Array(nRecords).fill(Number.NaN);
  const call = new Int8Array(nRecords).fill(-1);
  for (let i = 0; i < windowRecord.length; i++) {
    const r = windowRecord[i];
    nWindows[r]++;
    if (w.isVirus[i] < 0) continue;
    if (w.isVirus[i] === 1) nViralWindows[r]++;
    if (Number.isNaN(maxVirus[r]) || w.maxVirus[i] > maxVirus[r]) maxVirus[r] = w.maxVirus[i];
    call[r] = Math.max(call[r], w.isVirus[i]);
  }
  return { nWindows, nViralWindows, maxVirus, call };
}
