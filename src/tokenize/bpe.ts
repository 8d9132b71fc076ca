/**
 * Hugging Face `tokenizer.json` BPE tokenizer (the DNABERT-S tokenizer and its kin).
 *
 * Pipeline, as the `tokenizers` library runs it for a single sequence:
 *  1. added tokens (`added_tokens`) are matched in the raw text first, leftmost-longest, and
 *     become their ids directly (honouring `single_word`, `lstrip`, `rstrip`);
 *  2. the rest is pre-tokenized (`Whitespace` = regex `\w+|[^\w\s]+`, or `WhitespaceSplit`);
 *  3. each word is split into characters; a character outside the vocabulary is one unk
 *     (runs fused only when `fuse_unk`), then merges are applied lowest rank first, leftmost
 *     on ties (`bpe-merge.ts`: O(n log n) per word, no rescans of the merge list; merges never
 *     cross an unk since no merge names the unk id);
 *  4. the post-processor's `single` template wraps the ids (`[CLS] $A [SEP]`).
 * Stored `padding` and `truncation` are ignored: batching is the packer's job.
 */
import { readFileSync } from "node:fs";
import { UserError } from "../util/errors.ts";
import { BpeMerger, MAX_MERGES, type MergeQueue } from "./bpe-merge.ts";

/** Rust regex `\w` (Unicode word) and `\s` (White_Space), which the Whitespace pre-tokenizer uses. */
const WORD_CLASS = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}";
const WHITESPACE_RE = new RegExp(`[${WORD_CLASS}]+|[^${WORD_CLASS}\\p{White_Space}]+`, "gu");
const WHITESPACE_SPLIT_RE = /[^\p{White_Space}]+/gu;
const IS_WORD_CHAR = new RegExp(`^[${WORD_CLASS}]$`, "u");
const IS_SPACE_CHAR = /^\p{White_Space}$/u;

type PreTokenizer = "whitespace" | "whitespace-split" | "none";

interface AddedToken {
  content: string;
  id: number;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
}

interface BpeOptions {
  unkId: number; // -1: unknown characters are dropped (no unk token)
  fuseUnk: boolean;
  byteFallback: boolean;
  prefix: string; // continuing_subword_prefix
  suffix: string; // end_of_word_suffix
  ignoreMerges: boolean;
}

export class BpeTokenizer {
  readonly vocabSize: number;
  private readonly vocab: Map<string, number>;
  private readonly idToTokenTable: string[];
  private readonly opts: BpeOptions;
  private readonly preTokenizer: PreTokenizer;
  private readonly prefixIds: Int32Array;
  private readonly suffixIds: Int32Array;

  /** id of each single-UTF-16-unit token by char code, -1 when not in the vocabulary. */
  private readonly charId = new Int32Array(65536).fill(-1);
  /** true where the simple per-unit table applies (no prefix/suffix decoration). */
  private readonly plainChars: boolean;
  /** ASCII codes that keep a string on the fast path (word chars that start no added token). */
  private readonly fastAscii = new Uint8Array(128);

  private readonly added: AddedToken[];
  private readonly addedByFirst = new Map<number, AddedToken[]>();

  private readonly merger: BpeMerger;

  // Per-call output scratch, reused (tokenizing is single-threaded per instance).
  private body = new Int32Array(1024);
  private bodyLen = 0;

  private constructor(cfg: {
    vocab: Map<string, number>;
    merges: [string, string][];
    opts: BpeOptions;
    preTokenizer: PreTokenizer;
    added: AddedToken[];
    prefixIds: number[];
    suffixIds: number[];
    mergeQueue: MergeQueue;
  }) {
    this.vocab = cfg.vocab;
    this.opts = cfg.opts;
    this.preTokenizer = cfg.preTokenizer;
    this.prefixIds = Int32Array.from(cfg.prefixIds);
    this.suffixIds = Int32Array.from(cfg.suffixIds);
    this.added = cfg.added;

    let maxId = -1;
    for (const id of cfg.vocab.values()) maxId = Math.max(maxId, id);
    for (const t of cfg.added) maxId = Math.max(maxId, t.id);
    this.vocabSize = maxId + 1;
    this.idToTokenTable = new Array<string>(this.vocabSize);
    for (const [t, id] of cfg.vocab) this.idToTokenTable[id] = t;
    for (const t of cfg.added) this.idToTokenTable[t.id] ??= t.content;

    this.plainChars = cfg.opts.prefix === "" && cfg.opts.suffix === "";
    for (const [t, id] of cfg.vocab) if (t.length === 1) this.charId[t.charCodeAt(0)] = id;

    for (const t of cfg.added) {
      const c = t.content.charCodeAt(0);
      const list = this.addedByFirst.get(c) ?? [];
      list.push(t);
      list.sort((x, y) => y.content.length - x.content.length);
      this.addedByFirst.set(c, list);
    }
    for (let c = 0; c < 128; c++) {
      const word = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
      this.fastAscii[c] = word && !this.addedByFirst.has(c) ? 1 : 0;
    }

    const nMerges = cfg.merges.length;
    if (nMerges >= MAX_MERGES) throw new UserError(`tokenizer.json: ${nMerges} merges exceed the supported ${MAX_MERGES}`);
    const prefix = cfg.opts.prefix;
    const triples = cfg.merges.map(([a, b]): [number, number, number] => {
      const ia = cfg.vocab.get(a);
      const ib = cfg.vocab.get(b);
      if (ia === undefined || ib === undefined) {
        throw new UserError(`tokenizer.json: merge "${a} ${b}" names a token missing from the vocabulary`);
      }
      const merged = a + (prefix !== "" && b.startsWith(prefix) ? b.slice(prefix.length) : b);
      const inew = cfg.vocab.get(merged);
      if (inew === undefined) throw new UserError(`tokenizer.json: merge "${a} ${b}" makes "${merged}", missing from the vocabulary`);
      return [ia, ib, inew];
    });
    this.merger = new BpeMerger(triples, this.vocabSize, cfg.mergeQueue);
  }

  /** Reads a Hugging Face `tokenizer.json`. */
  static fromFile(path: string, options: { mergeQueue?: MergeQueue } = {}): BpeTokenizer {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new UserError(`cannot read tokenizer ${path}: ${code === "ENOENT" ? "no such file" : (code ?? (err as Error).message)}`);
    }
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (err) {
      throw new UserError(`tokenizer ${path} is not valid JSON: ${(err as Error).message}`);
    }
    try {
      return BpeTokenizer.fromJSON(obj, options);
    } catch (err) {
      if (err instanceof UserError) throw new UserError(err.message.replace(/^tokenizer\.json/, `tokenizer ${path}`));
      throw err;
    }
  }

  /**
   * Builds from a parsed `tokenizer.json` object. `mergeQueue` picks the merge engine's queue
   * ("auto": rank buckets where valid, else the heap); both give identical ids.
   */
  static fromJSON(obj: unknown, options: { mergeQueue?: MergeQueue } = {}): BpeTokenizer {
    const bad = (what: string): never => {
      throw new UserError(`tokenizer.json: ${what}`);
    };
    if (typeof obj !== "object" || obj === null) bad("not a JSON object");
    const root = obj as Record<string, any>;
    const model = root.model;
    if (typeof model !== "object" || model === null) bad("no model");
    if (model.type !== undefined && model.type !== "BPE") bad(`model type ${model.type} is not supported (only BPE)`);
    if (typeof model.vocab !== "object" || model.vocab === null) bad("model.vocab is missing");
    if (model.dropout !== undefined && model.dropout !== null && model.dropout !== 0 && model.dropout !== 1) {
      bad("BPE dropout is not supported (inference only)");
    }
    if (root.normalizer !== undefined && root.normalizer !== null) bad(`normalizer ${root.normalizer.type} is not supported`);

    const vocab = new Map<string, number>();
    for (const [t, id] of Object.entries(model.vocab as Record<string, unknown>)) {
      if (typeof id !== "number" || !Number.isInteger(id) || id < 0) bad(`vocab entry "${t}" has no valid id`);
      vocab.set(t, id as number);
    }

    const merges: [string, string][] = [];
    for (const m of (model.merges ?? []) as unknown[]) {
      if (typeof m === "string") {
        const sp = m.indexOf(" ");
        if (sp <= 0 || sp !== m.lastIndexOf(" ")) bad(`merge "${m}" is not two tokens separated by one space`);
        merges.push([m.slice(0, sp), m.slice(sp + 1)]);
      } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
        merges.push([m[0], m[1]]);
      } else bad(`merge ${JSON.stringify(m)} is neither "A B" nor ["A", "B"]`);
    }

    const added: AddedToken[] = [];
    for (const t of (root.added_tokens ?? []) as any[]) {
      if (typeof t?.content !== "string" || t.content === "" || typeof t.id !== "number") bad(`bad added token ${JSON.stringify(t)}`);
      added.push({ content: t.content, id: t.id, singleWord: !!t.single_word, lstrip: !!t.lstrip, rstrip: !!t.rstrip });
    }
    const idOf = (tok: string): number => {
      const a = added.find((t) => t.content === tok);
      const id = a?.id ?? vocab.get(tok);
      if (id === undefined) bad(`token ${tok} is not in the vocabulary`);
      return id as number;
    };

    let unkId = -1;
    if (typeof model.unk_token === "string") unkId = idOf(model.unk_token);

    let preTokenizer: PreTokenizer;
    const pt = root.pre_tokenizer;
    if (pt === undefined || pt === null) preTokenizer = "none";
    else if (pt.type === "Whitespace") preTokenizer = "whitespace";
    else if (pt.type === "WhitespaceSplit") preTokenizer = "whitespace-split";
    else preTokenizer = bad(`pre-tokenizer ${pt.type} is not supported (Whitespace, WhitespaceSplit)`);

    const prefixIds: number[] = [];
    const suffixIds: number[] = [];
    const pp = root.post_processor;
    if (pp === undefined || pp === null) {
      // no special tokens around the sequence
    } else if (pp.type === "TemplateProcessing") {
      const single = pp.single as any[];
      if (!Array.isArray(single)) bad("TemplateProcessing has no single template");
      let seen = false;
      for (const piece of single) {
        if (piece.Sequence) {
          if (seen) bad("the single template names the sequence twice");
          seen = true;
        } else if (piece.SpecialToken) {
          const name = piece.SpecialToken.id as string;
          const spec = pp.special_tokens?.[name];
          const ids: number[] = spec?.ids ?? [idOf(name)];
          (seen ? suffixIds : prefixIds).push(...ids);
        } else bad(`unknown template piece ${JSON.stringify(piece)}`);
      }
      if (!seen) bad("the single template has no $A");
    } else if (pp.type === "BertProcessing" || pp.type === "RobertaProcessing") {
      prefixIds.push(pp.cls[1]);
      suffixIds.push(pp.sep[1]);
    } else bad(`post-processor ${pp.type} is not supported (TemplateProcessing, BertProcessing)`);

    return new BpeTokenizer({
      vocab,
      merges,
      opts: {
        unkId,
        fuseUnk: !!model.fuse_unk,
        byteFallback: !!model.byte_fallback,
        prefix: model.continuing_subword_prefix ?? "",
        suffix: model.end_of_word_suffix ?? "",
        ignoreMerges: !!model.ignore_merges,
      },
      preTokenizer,
      added,
      prefixIds,
      suffixIds,
      mergeQueue: options.mergeQueue ?? "auto",
    });
  }

  /** Which merge queue runs ("buckets" where valid for the merge list, else "heap"). */
  get mergeQueue(): "heap" | "buckets" {
    return this.merger.queue;
  }

  tokenToId(token: string): number | undefined {
    return this.added.find((t) => t.content === token)?.id ?? this.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.idToTokenTable[id];
  }

  /** Number of ids `encode(text)` returns. */
  countTokens(text: string): number {
    this.tokenizeBody(text);
    return this.prefixIds.length + this.bodyLen + this.suffixIds.length;
  }

  /** Ids of `text` with the template's special tokens. */
  encode(text: string): Int32Array {
    this.tokenizeBody(text);
    const out = new Int32Array(this.prefixIds.length + this.bodyLen + this.suffixIds.length);
    this.writeOut(out, 0);
    return out;
  }

  /** Writes the ids of `text` at `out[offset..]`; returns how many. */
  encodeInto(text: string, out: Int32Array, offset: number): number {
    this.tokenizeBody(text);
    const n = this.prefixIds.length + this.bodyLen + this.suffixIds.length;
    if (offset < 0 || offset + n > out.length) {
      throw new RangeError(`encodeInto: ${n} tokens do not fit at offset ${offset} of a buffer of ${out.length}`);
    }
    return this.writeOut(out, offset);
  }

  private writeOut(out: Int32Array, offset: number): number {
    let k = offset;
    out.set(this.prefixIds, k);
    k += this.prefixIds.length;
    out.set(this.body.subarray(0, this.bodyLen), k);
    k += this.bodyLen;
    out.set(this.suffixIds, k);
    return k + this.suffixIds.length - offset;
  }

  /** Tokenizes `text` without specials into this.body / this.bodyLen. */
  private tokenizeBody(text: string): void {
    this.bodyLen = 0;
    const n = text.length;
    if (n === 0) return;
    // Fast path: one word of ASCII word characters (a DNA read) needs no matching or regex.
    let fast = true;
    const ok = this.fastAscii;
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c >= 128 || ok[c] === 0) {
        fast = false;
        break;
      }
    }
    if (fast) {
      this.word(text, 0, n);
      return;
    }
    if (this.added.length === 0) {
      this.preTokenize(text, 0, n);
      return;
    }
    // Added tokens split the text before pre-tokenization.
    let from = 0; // start of the pending plain segment
    let i = 0;
    while (i < n) {
      const cands = this.addedByFirst.get(text.charCodeAt(i));
      const hit = cands?.find((t) => text.startsWith(t.content, i)); // longest first
      if (hit === undefined) {
        i++;
        continue;
      }
      if (hit.singleWord && !this.isSingleWord(text, i, i + hit.content.length)) {
        // the library drops this match and searches on after it
        i += hit.content.length;
        continue;
      }
      let start = i;
      let stop = i + hit.content.length;
      if (hit.lstrip) while (start > from && isSpaceAt(text, start - 1)) start--;
      if (hit.rstrip) while (stop < n && isSpaceAt(text, stop)) stop++;
      if (start > from) this.preTokenize(text, from, start);
      this.push(hit.id);
      from = i = stop;
    }
    if (from < n) this.preTokenize(text, from, n);
  }

  private isSingleWord(text: string, start: number, stop: number): boolean {
    const before = start === 0 || !IS_WORD_CHAR.test(String.fromCodePoint(codePointBefore(text, start)));
    const after = stop === text.length || !IS_WORD_CHAR.test(String.fromCodePoint(text.codePointAt(stop)!));
    return before && after;
  }

  /** Splits text[from, to) into words and tokenizes each. */
  private preTokenize(text: string, from: number, to: number): void {
    if (this.preTokenizer === "none") {
      this.word(text, from, to);
      return;
    }
    const seg = from === 0 && to === text.length ? text : text.slice(from, to);
    const re = this.preTokenizer === "whitespace" ? WHITESPACE_RE : WHITESPACE_SPLIT_RE;
    re.lastIndex = 0;
    for (let m = re.exec(seg); m !== null; m = re.exec(seg)) this.word(seg, m.index, m.index + m[0].length);
  }

  private push(id: number): void {
    if (this.bodyLen === this.body.length) this.body = grow(this.body, this.bodyLen + 1);
    this.body[this.bodyLen++] = id;
  }

  /** BPE on the word s[from, to): appends its ids to the body. */
  private word(s: string, from: number, to: number): void {
    const o = this.opts;
    if (o.ignoreMerges) {
      const whole = this.vocab.get(s.slice(from, to));
      if (whole !== undefined) {
        this.push(whole);
        return;
      }
    }
    // UTF-16 units bound the initial symbols; byte fallback makes at most 3 per unit.
    const merger = this.merger;
    merger.ensure((to - from) * (o.byteFallback ? 3 : 1));
    const sym = merger.sym;
    const unk = o.unkId;
    let m = 0;
    let pendingUnk = false;
    if (this.plainChars) {
      const charId = this.charId;
      for (let i = from; i < to; i++) {
        const c = s.charCodeAt(i);
        let id = charId[c];
        if (id < 0 && c >= 0xd800 && c <= 0xdbff && i + 1 < to) {
          // a surrogate pair is one character
          const v = this.vocab.get(s.slice(i, i + 2));
          if (v !== undefined) id = v;
          else {
            m = this.unknownChar(s.slice(i, i + 2), m, pendingUnk);
            pendingUnk = this.pendingAfterUnknown;
            i++;
            continue;
          }
          i++;
        }
        if (id >= 0) {
          if (pendingUnk) {
            sym[m++] = unk;
            pendingUnk = false;
          }
          sym[m++] = id;
        } else if (!o.byteFallback && unk >= 0) {
          // inline the common unknown-character case (N, lowercase, IUPAC in DNA)
          if (pendingUnk && !o.fuseUnk) sym[m++] = unk;
          pendingUnk = true;
        } else {
          m = this.unknownChar(s[i], m, pendingUnk);
          pendingUnk = this.pendingAfterUnknown;
        }
      }
    } else {
      const chars = Array.from(s.slice(from, to));
      chars.forEach((ch, k) => {
        let key = ch;
        if (k > 0) key = o.prefix + key;
        if (k === chars.length - 1) key = key + o.suffix;
        const id = this.vocab.get(key);
        if (id !== undefined) {
          if (pendingUnk) {
            sym[m++] = unk;
            pendingUnk = false;
          }
          sym[m++] = id;
        } else {
          m = this.unknownChar(ch, m, pendingUnk);
          pendingUnk = this.pendingAfterUnknown;
        }
      });
    }
    if (pendingUnk) sym[m++] = unk;
    if (m === 0) return;
    m = merger.run(m);
    if (this.bodyLen + m > this.body.length) this.body = grow(this.body, this.bodyLen + m);
    const body = this.body;
    const next = merger.next;
    let k = this.bodyLen;
    for (let i = 0; i !== -1; i = next[i]) body[k++] = sym[i];
    this.bodyLen = k;
  }

  private pendingAfterUnknown = false;

  /** The library's handling of a character outside the vocabulary; returns the new symbol count. */
  private unknownChar(ch: string, m: number, pendingUnk: boolean): number {
    const o = this.opts;
    const sym = this.merger.sym;
    if (o.byteFallback) {
      const bytes = new TextEncoder().encode(ch);
      const ids: number[] = [];
      for (const b of bytes) {
        const id = this.vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
        if (id === undefined) break;
        ids.push(id);
      }
      if (ids.length === bytes.length) {
        if (pendingUnk) sym[m++] = o.unkId;
        for (const id of ids) sym[m++] = id;
        this.pendingAfterUnknown = false;
        return m;
      }
    }
    if (o.unkId < 0) {
      // no unk token: the character is dropped
      this.pendingAfterUnknown = pendingUnk;
      return m;
    }
    if (pendingUnk && !o.fuseUnk) sym[m++] = o.unkId;
    this.pendingAfterUnknown = true;
    return m;
  }
}

function grow(a: Int32Array, need: number): Int32Array<ArrayBuffer> {
  let cap = Math.max(16, a.length);
  while (cap < need) cap *= 2;
  const b = new Int32Array(cap);
  b.set(a);
  return b;
}

function isSpaceAt(s: string, i: number): boolean {
  return IS_SPACE_CHAR.test(s[i]);
}

function codePointBefore(s: string, i: number): number {
  const lo = s.charCodeAt(i - 1);
  if (lo >= 0xdc00 && lo <= 0xdfff && i >= 2) {
    const hi = s.charCodeAt(i - 2);
    if (hi >= 0xd800 && hi <= 0xdbff) return (hi - 0xd800) * 0x400 + (lo - 0xdc00) + 0x10000;
  }
  return lo;
}
