/**
 * A small byte-pair-encoding trainer over seeded random DNA, producing a tokenizer.json shaped like
 * DNABERT-S's (specials 0-4, A C G T 5-8, then merges), for random-weight models and tests.
 */
import { Xoshiro128 } from "./prng.ts";

export const DNA_SPECIALS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"];
const ALPHABET = ["A", "C", "G", "T"];

export interface BpeModel {
  /** Token strings by id. */
  vocab: string[];
  /** Merges in rank order, as token-string pairs. */
  merges: [string, string][];
}

/**
 * Seeded DNA from an order-2 Markov chain with random transition weights, so pair counts differ
 * clearly (uniform DNA would make every merge a tie). Returned as words of 200-600 bases.
 */
export function randomDnaCorpus(seed: number, bases: number): Uint8Array[] {
  const rng = new Xoshiro128(seed, 0x62706531);
  const probs = new Float64Array(16 * 4);
  for (let ctx = 0; ctx < 16; ctx++) {
    let sum = 0;
    for (let j = 0; j < 4; j++) sum += probs[ctx * 4 + j] = 0.2 + rng.next() ** 2;
    for (let j = 0; j < 4; j++) probs[ctx * 4 + j] /= sum;
  }
  const words: Uint8Array[] = [];
  let total = 0;
  while (total < bases) {
    const w = new Uint8Array(200 + rng.int(401));
    let ctx = rng.int(16);
    for (let i = 0; i < w.length; i++) {
      let u = rng.next();
      let j = 0;
      while (j < 3 && u >= probs[ctx * 4 + j]) u -= probs[ctx * 4 + j++];
      w[i] = j;
      ctx = ((ctx << 2) | j) & 15;
    }
    words.push(w);
    total += w.length;
  }
  return words;
}

/** Max-heap of (count, pair key); ties go to the smaller key, i.e. the pair of older tokens. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size() {
    return this.keys.length;
  }
  private above(i: number, j: number) {
    return this.counts[i] > this.counts[j] || (this.counts[i] === this.counts[j] && this.keys[i] < this.keys[j]);
  }
  private swap(i: number, j: number) {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }
  push(count: number, key: number) {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const c = this.counts.pop()!;
    const k = this.keys.pop()!;
    if (this.keys.length > 0) {
      this.counts[0] = c;
      this.keys[0] = k;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.keys.length && this.above(l, m)) m = l;
        if (r < this.keys.length && this.above(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

const KEY = 1 << 16;

/** Train BPE merges over the words until the vocabulary (specials + alphabet + merges) has `vocabSize` entries. */
export function trainBpe(words: Uint8Array[], vocabSize: number): BpeModel {
  const vocab = [...DNA_SPECIALS, ...ALPHABET];
  const ids = new Map(vocab.map((t, i) => [t, i]));
  let n = 0;
  for (const w of words) n += w.length;
  // the corpus as a linked list of symbols; -1 links end a word, so merges never cross words
  const sym = new Int32Array(n);
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  let p = 0;
  for (const w of words) {
    for (let i = 0; i < w.length; i++, p++) {
      sym[p] = DNA_SPECIALS.length + w[i];
      prev[p] = i === 0 ? -1 : p - 1;
      next[p] = i === w.length - 1 ? -1 : p + 1;
    }
  }
  const counts = new Map<number, number>();
  const where = new Map<number, number[]>();
  const add = (pos: number, key: number) => {
    counts.set(key, (counts.get(key) ?? 0) + 1);
    let list = where.get(key);
    if (!list) where.set(key, (list = []));
    list.push(pos);
  };
  for (let i = 0; i < n; i++) if (next[i] >= 0) add(i, sym[i] * KEY + sym[next[i]]);
  const heap = new PairHeap();
  for (const [k, c] of counts) heap.push(c, k);
  const merges: [string, string][] = [];
  const changed = new Set<number>();

  while (vocab.length < vocabSize && heap.size > 0) {
    const [c, key] = heap.pop();
    const current = counts.get(key) ?? 0;
    if (current !== c) {
      // stale entry: the count dropped since it was pushed
      if (current > 0) heap.push(current, key);
      continue;
    }
    const a = Math.floor(key / KEY);
    const b = key % KEY;
    const text = vocab[a] + vocab[b];
    let id = ids.get(text);
    if (id === undefined) {
      id = vocab.length;
      vocab.push(text);
      ids.set(text, id);
    }
    merges.push([vocab[a], vocab[b]]);
    changed.clear();
    for (const pos of where.get(key)!) {
      const q = next[pos];
      if (sym[pos] !== a || q < 0 || sym[q] !== b) continue; // consumed by an earlier merge
      const before = prev[pos];
      const after = next[q];
      const dec = (k: number) => {
        counts.set(k, counts.get(k)! - 1);
        changed.add(k);
      };
      if (before >= 0) dec(sym[before] * KEY + a);
      if (after >= 0) dec(b * KEY + sym[after]);
      dec(key);
      sym[pos] = id;
      sym[q] = -1;
      next[pos] = after;
      if (after >= 0) prev[after] = pos;
      if (before >= 0) {
        add(before, sym[before] * KEY + id);
        changed.add(sym[before] * KEY + id);
      }
      if (after >= 0) {
        add(pos, id * KEY + sym[after]);
        changed.add(id * KEY + sym[after]);
      }
    }
    where.delete(key);
    counts.delete(key);
    // re-queue pairs whose count grew; shrunk ones are fixed up lazily when popped
    for (const k of changed) {
      const cnt = counts.get(k) ?? 0;
      if (cnt > 0 && k !== key) heap.push(cnt, k);
    }
  }
  return { vocab, merges };
}

/** tokenizer.json (Hugging Face tokenizers format) for a DNA BPE model, structured like DNABERT-S's. */
export function dnaTokenizerJson(model: BpeModel): Record<string, unknown> {
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const vocab: Record<string, number> = {};
  model.vocab.forEach((t, i) => (vocab[t] = i));
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: DNA_SPECIALS.map((t, i) => special(i, t)),
    normalizer: null,
    pre_tokenizer: { type: "Whitespace" },
    post_processor: {
      type: "TemplateProcessing",
      single: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
        { Sequence: { id: "B", type_id: 1 } },
        { SpecialToken: { id: "[SEP]", type_id: 1 } },
      ],
      special_tokens: {
        "[CLS]": { id: "[CLS]", ids: [1], tokens: ["[CLS]"] },
        "[SEP]": { id: "[SEP]", ids: [2], tokens: ["[SEP]"] },
      },
    },
    decoder: null,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "[UNK]",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: model.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}

/** A deterministic synthetic DNABERT-style tokenizer.json for a seed. */
export function syntheticDnaTokenizer(seed: number, vocabSize = 4096): Record<string, unknown> {
  const key = `${seed}/${vocabSize}`;
  let model = trained.get(key);
  if (!model) {
    // corpus large enough that the last merges still have repeated pairs
    model = trainBpe(randomDnaCorpus(seed, Math.max(20000, vocabSize * 100)), vocabSize);
    trained.set(key, model);
  }
  return dnaTokenizerJson(model);
}

/** Training takes a fraction of a second; models written in one process reuse it. */
const trained = new Map<string, BpeModel>();
