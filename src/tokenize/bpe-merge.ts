/**
 * BPE merge engine over token ids: applies merges to one word's symbols, lowest rank first,
 * leftmost on ties (the order Hugging Face `tokenizers` uses), never rescanning the merge list.
 *
 * Two queues give the same result:
 *  - a binary heap of (rank, position), the library's algorithm, correct for any merge list;
 *  - rank buckets (a bitmap over ranks, positions sorted per bucket), used when every merge
 *    that consumes a token ranks after the merge that made it and no token is made twice,
 *    which holds for trained files such as DNABERT-S's. Then ranks pop in increasing order
 *    and a bucket never grows while it is drained, so it matches the heap order; it avoids
 *    the heap's unpredictable branches (about 2x faster on DNA).
 */

/** Heap key: rank * 2^32 + position, exact in a float64 for rank < 2^21. */
const POS_SPAN = 4294967296;
export const MAX_MERGES = 1 << 21;
/** Largest dense pair table (entries) before falling back to hashing. */
const DENSE_LIMIT = 1 << 21;

export type MergeQueue = "auto" | "heap" | "buckets";

export class BpeMerger {
  readonly nMerges: number;
  /** per rank: left id, right id, merged id. */
  readonly rankLeft: Int32Array;
  readonly rankRight: Int32Array;
  readonly rankNew: Int32Array;
  /** true when rank buckets give the library's order (see the file comment). */
  readonly bucketsValid: boolean;
  readonly queue: "heap" | "buckets";

  // Pair -> effective rank. Dense: ids that start/end some merge are renumbered compactly.
  private readonly leftIdx: Int32Array;
  private readonly rightIdx: Int32Array;
  private readonly nRight: number;
  private readonly dense: Int32Array | null;
  // Hash fallback (open addressing, linear probing) for large vocabularies.
  private readonly hashMask: number;
  private readonly hashA: Int32Array;
  private readonly hashB: Int32Array;
  private readonly hashRank: Int32Array;

  /** Symbols of the word being merged, as a linked list through prev/next (removed = -1). */
  sym = new Int32Array(1024);
  prev = new Int32Array(1024);
  next = new Int32Array(1024);
  private heap = new Float64Array(3 * 1024);
  private entPos = new Int32Array(3 * 1024);
  private entNext = new Int32Array(3 * 1024);
  private order = new Int32Array(3 * 1024);
  private readonly bucketHead: Int32Array;
  private readonly bucketBits: Int32Array;

  /** `merges[r]` = [left id, right id, merged id]; a later duplicate pair overrides an earlier one. */
  constructor(merges: ArrayLike<readonly [number, number, number]>, vocabSize: number, queue: MergeQueue = "auto") {
    const n = merges.length;
    if (n >= MAX_MERGES) throw new RangeError(`${n} merges exceed the supported ${MAX_MERGES}`);
    this.nMerges = n;
    this.rankLeft = new Int32Array(n);
    this.rankRight = new Int32Array(n);
    this.rankNew = new Int32Array(n);
    this.leftIdx = new Int32Array(vocabSize).fill(-1);
    this.rightIdx = new Int32Array(vocabSize).fill(-1);
    let nLeft = 0;
    let nRight = 0;
    for (let r = 0; r < n; r++) {
      const [a, b, c] = merges[r];
      this.rankLeft[r] = a;
      this.rankRight[r] = b;
      this.rankNew[r] = c;
      if (this.leftIdx[a] < 0) this.leftIdx[a] = nLeft++;
      if (this.rightIdx[b] < 0) this.rightIdx[b] = nRight++;
    }
    this.nRight = nRight;

    let size = 16;
    while (size < n * 4) size *= 2;
    if (nLeft * nRight <= DENSE_LIMIT) {
      this.dense = new Int32Array(nLeft * nRight).fill(-1);
      for (let r = 0; r < n; r++) this.dense[this.leftIdx[this.rankLeft[r]] * nRight + this.rightIdx[this.rankRight[r]]] = r;
      size = 1;
    } else this.dense = null;
    this.hashMask = size - 1;
    this.hashA = new Int32Array(size).fill(-1);
    this.hashB = new Int32Array(size);
    this.hashRank = new Int32Array(size);
    if (this.dense === null) {
      for (let r = 0; r < n; r++) {
        const a = this.rankLeft[r];
        const b = this.rankRight[r];
        let h = hashPair(a, b, this.hashMask);
        while (this.hashA[h] !== -1 && (this.hashA[h] !== a || this.hashB[h] !== b)) h = (h + 1) & this.hashMask;
        this.hashA[h] = a;
        this.hashB[h] = b;
        this.hashRank[h] = r;
      }
    }

    // Bucket order needs: each effective merge's product made only by it, and consumed only later.
    const madeAt = new Int32Array(vocabSize).fill(-1);
    let valid = true;
    for (let r = 0; r < n && valid; r++) {
      if (this.rank(this.rankLeft[r], this.rankRight[r]) !== r) valid = false; // overridden duplicate
      else if (madeAt[this.rankNew[r]] >= 0) valid = false;
      else madeAt[this.rankNew[r]] = r;
    }
    for (let r = 0; r < n && valid; r++) {
      if (madeAt[this.rankLeft[r]] >= r || madeAt[this.rankRight[r]] >= r) valid = false;
    }
    this.bucketsValid = valid;
    if (queue === "buckets" && !valid) throw new RangeError("rank buckets are not valid for this merge list");
    this.queue = queue === "heap" || !valid ? "heap" : "buckets";
    this.bucketHead = new Int32Array(this.queue === "buckets" ? n : 0).fill(-1);
    this.bucketBits = new Int32Array(this.queue === "buckets" ? (n + 31) >> 5 : 0);
  }

  /** Effective rank of the pair (a, b), or -1 when no merge applies. */
  rank(a: number, b: number): number {
    const dense = this.dense;
    if (dense !== null) {
      const la = this.leftIdx[a];
      if (la < 0) return -1;
      const rb = this.rightIdx[b];
      if (rb < 0) return -1;
      return dense[la * this.nRight + rb];
    }
    if (a < 0 || b < 0) return -1;
    const hashA = this.hashA;
    const mask = this.hashMask;
    let h = hashPair(a, b, mask);
    for (;;) {
      const x = hashA[h];
      if (x === -1) return -1;
      if (x === a && this.hashB[h] === b) return this.hashRank[h];
      h = (h + 1) & mask;
    }
  }

  /** Makes room for a word of `n` symbols (pairs: n - 1 initial + 2 per merge < 3n). */
  ensure(n: number): void {
    if (this.sym.length >= n) return;
    let cap = this.sym.length;
    while (cap < n) cap *= 2;
    this.sym = new Int32Array(cap);
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
    if (this.queue === "heap") this.heap = new Float64Array(3 * cap);
    else {
      this.entPos = new Int32Array(3 * cap);
      this.entNext = new Int32Array(3 * cap);
      this.order = new Int32Array(3 * cap);
    }
  }

  /** Merges sym[0, m) in place; the result is the list from index 0 through `next` (-1 ends). */
  run(m: number): number {
    const prev = this.prev;
    const next = this.next;
    for (let i = 0; i < m; i++) {
      prev[i] = i - 1;
      next[i] = i + 1;
    }
    next[m - 1] = -1;
    if (m < 2) return m;
    return this.queue === "buckets" ? this.runBuckets(m) : this.runHeap(m);
  }

  private runHeap(m: number): number {
    const sym = this.sym;
    const prev = this.prev;
    const next = this.next;
    const heap = this.heap;
    const rankNew = this.rankNew;
    let size = 0;
    for (let i = 0; i + 1 < m; i++) {
      const r = this.rank(sym[i], sym[i + 1]);
      if (r >= 0) heap[size++] = r * POS_SPAN + i;
    }
    for (let i = (size >> 1) - 1; i >= 0; i--) siftDown(heap, i, size);

    let count = m;
    while (size > 0) {
      const top = heap[0];
      size--;
      if (size > 0) {
        heap[0] = heap[size];
        siftDown(heap, 0, size);
      }
      const rank = Math.floor(top / POS_SPAN);
      const pos = top - rank * POS_SPAN;
      const left = sym[pos];
      if (left < 0) continue; // merged away into its left neighbour
      const right = next[pos];
      if (right === -1) continue;
      // Stale unless the pair here still makes this entry's token (the library's test).
      const now = this.rank(left, sym[right]);
      if (now < 0 || rankNew[now] !== rankNew[rank]) continue;
      const merged = rankNew[rank];
      sym[pos] = merged;
      sym[right] = -1;
      const after = next[right];
      next[pos] = after;
      if (after !== -1) prev[after] = pos;
      count--;
      const before = prev[pos];
      if (before !== -1) {
        const r = this.rank(sym[before], merged);
        if (r >= 0) size = heapPush(heap, size, r * POS_SPAN + before);
      }
      if (after !== -1) {
        const r = this.rank(merged, sym[after]);
        if (r >= 0) size = heapPush(heap, size, r * POS_SPAN + pos);
      }
    }
    return count;
  }

  private runBuckets(m: number): number {
    const sym = this.sym;
    const prev = this.prev;
    const next = this.next;
    const head = this.bucketHead;
    const bits = this.bucketBits;
    const entPos = this.entPos;
    const entNext = this.entNext;
    const order = this.order;
    const rankLeft = this.rankLeft;
    const rankRight = this.rankRight;
    const rankNew = this.rankNew;

    let ne = 0;
    let lo = this.nMerges;
    // Right to left, so that prepending leaves each bucket in ascending order for the sort.
    for (let i = m - 2; i >= 0; i--) {
      const r = this.rank(sym[i], sym[i + 1]);
      if (r < 0) continue;
      entPos[ne] = i;
      entNext[ne] = head[r];
      head[r] = ne++;
      bits[r >> 5] |= 1 << (r & 31);
      if (r < lo) lo = r;
    }

    let count = m;
    const nWords = bits.length;
    for (let w = lo >> 5; w < nWords; ) {
      const word = bits[w];
      if (word === 0) {
        w++;
        continue;
      }
      const r = (w << 5) | (31 - Math.clz32(word & -word));
      bits[w] = word & (word - 1);
      // Positions of this rank, ascending (insertion sort: buckets hold a few entries).
      let k = 0;
      for (let e = head[r]; e !== -1; e = entNext[e]) {
        const p = entPos[e];
        let j = k++;
        while (j > 0 && order[j - 1] > p) {
          order[j] = order[j - 1];
          j--;
        }
        order[j] = p;
      }
      head[r] = -1;
      const a = rankLeft[r];
      const b = rankRight[r];
      const merged = rankNew[r];
      for (let q = 0; q < k; q++) {
        const pos = order[q];
        if (sym[pos] !== a) continue; // stale: merged away or changed
        const right = next[pos];
        if (right === -1 || sym[right] !== b) continue;
        sym[pos] = merged;
        sym[right] = -1;
        const after = next[right];
        next[pos] = after;
        if (after !== -1) prev[after] = pos;
        count--;
        const before = prev[pos];
        if (before !== -1) {
          const r2 = this.rank(sym[before], merged);
          if (r2 >= 0) {
            entPos[ne] = before;
            entNext[ne] = head[r2];
            head[r2] = ne++;
            bits[r2 >> 5] |= 1 << (r2 & 31);
          }
        }
        if (after !== -1) {
          const r2 = this.rank(merged, sym[after]);
          if (r2 >= 0) {
            entPos[ne] = pos;
            entNext[ne] = head[r2];
            head[r2] = ne++;
            bits[r2 >> 5] |= 1 << (r2 & 31);
          }
        }
      }
    }
    return count;
  }
}

function hashPair(a: number, b: number, mask: number): number {
  return ((Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77)) >>> 7) & mask;
}

function siftDown(heap: Float64Array, i: number, size: number): void {
  const x = heap[i];
  for (;;) {
    let c = 2 * i + 1;
    if (c >= size) break;
    if (c + 1 < size && heap[c + 1] < heap[c]) c++;
    if (heap[c] >= x) break;
    heap[i] = heap[c];
    i = c;
  }
  heap[i] = x;
}

function heapPush(heap: Float64Array, size: number, x: number): number {
  let i = size;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (heap[p] <= x) break;
    heap[i] = heap[p];
    i = p;
  }
  heap[i] = x;
  return size + 1;
}
