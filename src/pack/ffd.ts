/**
 * Packing sequences into token-budget batches: first-fit decreasing, balanced.
 *
 * Sequences are taken longest first (ties by index, so the result is deterministic) and each
 * goes into the first batch, in creation order, that still has room. A max segment tree over
 * the batches' remaining capacities finds that batch in O(log n), so packing is O(n log n)
 * (O(n) sorting when lengths are small integers, as token counts are).
 *
 * packBatches (what the encoders use) treats the budget as the largest batch allowed: it uses
 * as few batches as it can (never more than first-fit decreasing) and spreads the tokens evenly
 * over them, so a part of 1.05 budgets becomes two batches of about half a budget rather than a
 * full one and a 5% straggler. Its capacity is then the largest batch it made.
 *
 * Packing efficiency (documented in run.json and the benchmarks):
 *
 *   efficiency = real tokens / sum over batches of max(capacity, batch tokens)
 *
 * capacity being the per-batch token capacity the packing used (the budget for packFFD). The
 * kernels compute no padding (sequences are packed back to back with cu_seqlens), so the
 * figure is not wasted arithmetic: it says how full the batches run, i.e. how close the batch
 * count is to the minimum for that batch size. A sequence longer than the capacity (a batch
 * of its own) counts its own length, so the figure never exceeds 1.
 */

export interface PackedBatch {
  /** sequence indices, in placement order */
  indices: Int32Array;
  /** real tokens */
  tokens: number;
}

export interface Packing {
  batches: PackedBatch[];
  /** real tokens / sum of max(capacity, batch tokens) (see above); 0 when there are no batches */
  efficiency: number;
  /** the largest batch asked for */
  budget: number;
  /** the per-batch token capacity packed against (<= budget; the budget for packFFD) */
  capacity: number;
}

/** Above this maximum length the sort falls back from counting sort to a comparison sort. */
const COUNTING_SORT_MAX = 1 << 20;

/**
 * First-fit decreasing. A sequence longer than `budget` gets a batch of its own; `maxSeqs`
 * caps the number of sequences in a batch.
 */
export function packFFD(lengths: ArrayLike<number>, budget: number, opts: { maxSeqs?: number } = {}): Packing {
  const n = lengths.length;
  const maxSeqs = opts.maxSeqs ?? Infinity;
  const maxLen = validate(lengths, budget, opts.maxSeqs);
  const order = sortDescending(lengths, maxLen);

  // Leaves are batches in creation order; an unopened batch has the full budget, a closed one -1.
  let leaves = 1;
  while (leaves < n) leaves *= 2;
  const tree = new Float64Array(2 * leaves).fill(budget);
  const setCapacity = (leaf: number, cap: number) => {
    let i = leaf + leaves;
    tree[i] = cap;
    for (i >>= 1; i >= 1; i >>= 1) tree[i] = Math.max(tree[2 * i], tree[2 * i + 1]);
  };
  /** leftmost leaf with capacity >= len (one always exists: n items never open more than n batches) */
  const firstFit = (len: number) => {
    let i = 1;
    while (i < leaves) i = tree[2 * i] >= len ? 2 * i : 2 * i + 1;
    return i - leaves;
  };

  const batchOf = new Int32Array(n);
  const counts: number[] = [];
  const tokens: number[] = [];
  for (let k = 0; k < n; k++) {
    const idx = order[k];
    const len = lengths[idx];
    let b: number;
    if (len > budget) {
      b = counts.length; // the next unopened batch, closed at once
      counts.push(1);
      tokens.push(len);
      setCapacity(b, -1);
    } else {
      b = firstFit(len);
      if (b === counts.length) {
        counts.push(0);
        tokens.push(0);
      }
      counts[b]++;
      tokens[b] += len;
      setCapacity(b, counts[b] >= maxSeqs ? -1 : budget - tokens[b]);
    }
    batchOf[k] = b;
  }

  const batches: PackedBatch[] = counts.map((c, b) => ({ indices: new Int32Array(c), tokens: tokens[b] }));
  const fill = new Int32Array(batches.length);
  for (let k = 0; k < n; k++) {
    const b = batchOf[k];
    batches[b].indices[fill[b]++] = order[k];
  }
  return { batches, efficiency: packingEfficiency(batches, budget), budget, capacity: budget };
}

/** real tokens / sum over batches of max(capacity, batch tokens); 0 for no batches. */
export function packingEfficiency(batches: readonly PackedBatch[], capacity: number): number {
  let real = 0;
  let slots = 0;
  for (const b of batches) {
    real += b.tokens;
    slots += Math.max(capacity, b.tokens);
  }
  return slots > 0 ? real / slots : 0;
}

/**
 * Balanced packing (see the top of the file): the fewest batches of at most `budget` tokens that
 * it finds (never more than packFFD makes), with the tokens spread evenly over them. Longest
 * sequence first, each into the batch holding the fewest tokens so far (ties: the lower batch),
 * so every batch ends within one sequence of the even split. Tries the lower bound on the batch
 * count and the two counts above it, else keeps packFFD's batches. Sequences longer than the
 * budget get a batch of their own, as in packFFD.
 */
export function packBatches(lengths: ArrayLike<number>, budget: number, opts: { maxSeqs?: number } = {}): Packing {
  validate(lengths, budget, opts.maxSeqs);
  const maxSeqs = opts.maxSeqs ?? Infinity;
  const n = lengths.length;
  let fitTokens = 0;
  let fitCount = 0;
  let maxLen = 0;
  for (let i = 0; i < n; i++) {
    const len = lengths[i];
    if (len > maxLen) maxLen = len;
    if (len <= budget) {
      fitTokens += len;
      fitCount++;
    }
  }
  if (fitCount === 0 || fitTokens === 0) return packFFD(lengths, budget, opts);
  const order = sortDescending(lengths, maxLen);
  // No packing of the sequences that fit uses fewer batches than this.
  const lower = Math.max(1, Math.ceil(fitTokens / budget), Math.ceil(fitCount / maxSeqs));
  const first = spread(lengths, order, budget, lower, maxSeqs);
  if (first) return first;
  // First-fit decreasing bounds the count: one or two more batches only while it needs them too.
  const full = packFFD(lengths, budget, opts);
  const fullFit = full.batches.length - (n - fitCount);
  for (let k = lower + 1; k <= Math.min(fullFit - 1, lower + 2); k++) {
    const p = spread(lengths, order, budget, k, maxSeqs);
    if (p) return p;
  }
  return fullFit > lower ? (spread(lengths, order, budget, fullFit, maxSeqs) ?? full) : full;
}

/** `bins` batches filled least-loaded first; null when one would exceed the budget or maxSeqs leaves a sequence out. */
function spread(lengths: ArrayLike<number>, order: Int32Array, budget: number, bins: number, maxSeqs: number): Packing | null {
  // A binary min-heap of open bins keyed by (tokens, bin index).
  const heap = new Int32Array(bins);
  const load = new Float64Array(bins);
  const count = new Int32Array(bins);
  let size = bins;
  for (let b = 0; b < bins; b++) heap[b] = b;
  const less = (a: number, b: number) => load[a] < load[b] || (load[a] === load[b] && a < b);
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) return;
      const c = l + 1 < size && less(heap[l + 1], heap[l]) ? l + 1 : l;
      if (!less(heap[c], heap[i])) return;
      const t = heap[c];
      heap[c] = heap[i];
      heap[i] = t;
      i = c;
    }
  };
  const binOf = new Int32Array(order.length);
  const solo: number[] = [];
  for (let k = 0; k < order.length; k++) {
    const len = lengths[order[k]];
    if (len > budget) {
      binOf[k] = -1;
      solo.push(order[k]);
      continue;
    }
    if (size === 0) return null;
    const b = heap[0];
    if (load[b] + len > budget) return null;
    load[b] += len;
    count[b]++;
    binOf[k] = b;
    if (count[b] >= maxSeqs) {
      heap[0] = heap[--size];
    }
    siftDown(0);
  }
  // Oversize sequences first (as packFFD places them, longest first), then the balanced bins.
  const batches: PackedBatch[] = solo.map((i) => ({ indices: Int32Array.of(i), tokens: lengths[i] }));
  const first = batches.length;
  for (let b = 0; b < bins; b++) batches.push({ indices: new Int32Array(count[b]), tokens: load[b] });
  const fill = new Int32Array(bins);
  for (let k = 0; k < order.length; k++) {
    const b = binOf[k];
    if (b >= 0) batches[first + b].indices[fill[b]++] = order[k];
  }
  const kept = batches.filter((x) => x.indices.length > 0);
  let capacity = 0;
  for (let b = 0; b < bins; b++) capacity = Math.max(capacity, load[b]);
  return { batches: kept, efficiency: packingEfficiency(kept, capacity), budget, capacity };
}

/** Checks the arguments of a packing; returns the longest length. */
function validate(lengths: ArrayLike<number>, budget: number, maxSeqs = Infinity): number {
  if (!Number.isInteger(budget) || budget <= 0) throw new RangeError(`packing: token budget must be a positive integer, got ${budget}`);
  if (!(maxSeqs >= 1)) throw new RangeError(`packing: maxSeqs must be at least 1, got ${maxSeqs}`);
  let maxLen = 0;
  for (let i = 0; i < lengths.length; i++) {
    const len = lengths[i];
    if (!Number.isInteger(len) || len < 0) throw new RangeError(`packing: length ${i} is ${len}, not a non-negative integer`);
    if (len > maxLen) maxLen = len;
  }
  return maxLen;
}

/** Indices ordered by length descending, ties by index ascending. */
function sortDescending(lengths: ArrayLike<number>, maxLen: number): Int32Array {
  const n = lengths.length;
  const order = new Int32Array(n);
  if (maxLen <= COUNTING_SORT_MAX) {
    // Stable counting sort: start[len] = how many sequences are longer.
    const start = new Int32Array(maxLen + 2);
    for (let i = 0; i < n; i++) start[maxLen - lengths[i] + 1]++;
    for (let v = 1; v <= maxLen + 1; v++) start[v] += start[v - 1];
    for (let i = 0; i < n; i++) order[start[maxLen - lengths[i]]++] = i;
    return order;
  }
  for (let i = 0; i < n; i++) order[i] = i;
  return order.sort((a, b) => lengths[b] - lengths[a] || a - b);
}

/**
 * Writes a batch's tokens back to back into `tokens` and its `cu_seqlens` (nSeqs + 1 entries,
 * starting at 0) into `cuSeqlens`: the caller's buffers, e.g. pinned native memory.
 */
export function fillBatch(
  batch: PackedBatch,
  seqs: ArrayLike<Int32Array>,
  tokens: Int32Array,
  cuSeqlens: Int32Array,
): { nTokens: number; nSeqs: number } {
  const idx = batch.indices;
  const nSeqs = idx.length;
  if (cuSeqlens.length < nSeqs + 1) {
    throw new RangeError(`fillBatch: cu_seqlens holds ${cuSeqlens.length} entries, the batch needs ${nSeqs + 1}`);
  }
  let off = 0;
  cuSeqlens[0] = 0;
  for (let k = 0; k < nSeqs; k++) {
    const s = seqs[idx[k]];
    if (off + s.length > tokens.length) {
      throw new RangeError(`fillBatch: the token buffer holds ${tokens.length} tokens, the batch needs more`);
    }
    tokens.set(s, off);
    off += s.length;
    cuSeqlens[k + 1] = off;
  }
  return { nTokens: off, nSeqs };
}
