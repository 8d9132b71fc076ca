/**
 * Packing sequences into token-budget batches: first-fit decreasing.
 *
 * Sequences are taken longest first (ties by index, so the result is deterministic) and each
 * goes into the first batch, in creation order, that still has room. A max segment tree over
 * the batches' remaining capacities finds that batch in O(log n), so packing is O(n log n)
 * (O(n) sorting when lengths are small integers, as token counts are).
 */

export interface PackedBatch {
  /** sequence indices, in placement order */
  indices: Int32Array;
  /** real tokens */
  tokens: number;
}

export interface Packing {
  batches: PackedBatch[];
  /** real tokens / (batches.length * budget); 0 when there are no batches */
  efficiency: number;
  budget: number;
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
  if (!Number.isInteger(budget) || budget <= 0) throw new RangeError(`packFFD: token budget must be a positive integer, got ${budget}`);
  if (!(maxSeqs >= 1)) throw new RangeError(`packFFD: maxSeqs must be at least 1, got ${maxSeqs}`);

  let maxLen = 0;
  for (let i = 0; i < n; i++) {
    const len = lengths[i];
    if (!Number.isInteger(len) || len < 0) throw new RangeError(`packFFD: length ${i} is ${len}, not a non-negative integer`);
    if (len > maxLen) maxLen = len;
  }
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
  let total = 0;
  for (const t of tokens) total += t;
  const efficiency = batches.length > 0 ? total / (batches.length * budget) : 0;
  return { batches, efficiency, budget };
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
