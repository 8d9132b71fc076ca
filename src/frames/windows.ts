/**
 * VirNucPro's chunking (spec §1.2): n = ceil(L / c) windows of c bases, the shortfall
 * r = n*c - L spread backwards over the windows with the original's arithmetic slip.
 */
export interface Window {
  /** `${recordId}_chunk_${k}` */
  id: string;
  recordId: string;
  recordIndex: number;
  /** 1-based window number */
  k: number;
  /** 0-based half-open coordinates in the record */
  start: number;
  end: number;
  /** view into the record's sequence */
  seq: Uint8Array;
}

/** Window coordinates [start, end) for a sequence of length L and chunk size c. */
export function windowBounds(L: number, c: number): [number, number][] {
  if (!(c > 0)) throw new RangeError(`chunk size must be positive (got ${c})`);
  if (L <= 0) return [];
  const n = Math.ceil(L / c);
  const r = n * c - L;
  const lower = Math.floor(r / n);
  const need = r - lower * (n - 1);
  // steps = [lower+1]*need + [lower]*max(0, n-1-need) + [0]; windows stop at the shorter list.
  const nSteps = need + Math.max(0, n - 1 - need) + 1;
  const out: [number, number][] = [];
  let move = 0;
  for (let k = 0, a = 0; a < L && k < nSteps; k++, a += c) {
    const s = a - move;
    out.push([s, Math.min(s + c, L)]);
    move += k < need ? lower + 1 : k < need + Math.max(0, n - 1 - need) ? lower : 0;
  }
  return out;
}

export function windowsOf(rec: { id: string; seq: Uint8Array; index: number }, chunkSize: number): Window[] {
  return windowBounds(rec.seq.length, chunkSize).map(([start, end], i) => ({
    id: `${rec.id}_chunk_${i + 1}`,
    recordId: rec.id,
    recordIndex: rec.index,
    k: i + 1,
    start,
    end,
    seq: rec.seq.subarray(start, end),
  }));
}
