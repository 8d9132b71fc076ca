/**
 * Calls from classifier probabilities, as VirNucPro makes them (spec §1.5):
 * frame label = argmax (tie -> "others"); window Is_Virus = max(score_virus) >= max(score_others)
 * over the window's frames; and per input record a summary VirNucPro never had.
 */

export interface WindowCalls {
  nFrames: Int32Array;
  maxOthers: Float32Array; // NaN where the window has no frame
  maxVirus: Float32Array;
  /** 1 virus, 0 others, -1 no frame (null in the outputs) */
  isVirus: Int8Array;
}

export interface SequenceCalls {
  nWindows: Int32Array;
  nViralWindows: Int32Array;
  maxVirus: Float32Array; // NaN where no window of the record kept a frame
  /** 1 virus, 0 others, -1 no frame */
  call: Int8Array;
}

/** probs: n x 2 row-major (P(others), P(virus)). */
export function frameIsVirus(probs: Float32Array, i: number): boolean {
  return probs[2 * i + 1] > probs[2 * i];
}

export function windowCalls(nWindows: number, frameWindow: Int32Array, probs: Float32Array): WindowCalls {
  const nFrames = new Int32Array(nWindows);
  const maxOthers = new Float32Array(nWindows).fill(Number.NaN);
  const maxVirus = new Float32Array(nWindows).fill(Number.NaN);
  for (let i = 0; i < frameWindow.length; i++) {
    const w = frameWindow[i];
    const o = probs[2 * i];
    const v = probs[2 * i + 1];
    if (nFrames[w] === 0 || o > maxOthers[w]) maxOthers[w] = o;
    if (nFrames[w] === 0 || v > maxVirus[w]) maxVirus[w] = v;
    nFrames[w]++;
  }
  const isVirus = new Int8Array(nWindows);
  for (let w = 0; w < nWindows; w++) isVirus[w] = nFrames[w] === 0 ? -1 : maxVirus[w] >= maxOthers[w] ? 1 : 0;
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
