/**
 * ESM-2 alphabet tokenizer: `<cls>` + residues + `<eos>`.
 *
 * Behaviour follows Hugging Face `EsmTokenizer` (a slow tokenizer): the text is first split on
 * every vocabulary token (leftmost, longest match, as its no-split trie does), and each
 * remaining piece is split on whitespace (`str.split()`), each whitespace-free piece becoming
 * one `<unk>`. Consequences, all tested:
 *  - a run of characters outside the vocabulary is one `<unk>`; whitespace ends the run;
 *  - whitespace itself yields no token (`"MK LV"` equals `"MKLV"`);
 *  - nothing is upper-cased: lowercase letters are outside the vocabulary (`"mk"` -> one `<unk>`);
 *  - a literal `<mask>` (or any vocabulary token) in the text is that token.
 */
import { readFileSync } from "node:fs";
import { UserError } from "../util/errors.ts";

/** The ESM-2 vocabulary, ids in order (models.md). */
export const ESM2_VOCAB: readonly string[] = [
  "<cls>", "<pad>", "<eos>", "<unk>",
  "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N", "F", "Y", "M", "H", "W", "C",
  "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>",
];

/** Python's `str.isspace()` set (what `str.split()` splits on). */
export function isPyWhitespace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
  if (c < 0x85) return false;
  return (
    c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000
  );
}

export class EsmTokenizer {
  readonly vocab: readonly string[];
  readonly clsId: number;
  readonly eosId: number;
  readonly unkId: number;
  readonly padId: number;
  readonly maskId: number;
  /** id of each single-UTF-16-unit token by char code (BMP), -1 when none. */
  private readonly single = new Int32Array(65536).fill(-1);
  /** multi-character tokens by their first char code, longest first; multiFirst flags those codes. */
  private readonly multi = new Map<number, { text: string; id: number }[]>();
  private readonly multiFirst = new Uint8Array(65536);
  private readonly ids = new Map<string, number>();

  constructor(vocab: readonly string[]) {
    this.vocab = vocab;
    vocab.forEach((t, i) => {
      if (t.length === 0 || this.ids.has(t)) return;
      this.ids.set(t, i);
      if (t.length === 1) this.single[t.charCodeAt(0)] = i;
      else {
        const c = t.charCodeAt(0);
        const list = this.multi.get(c) ?? [];
        list.push({ text: t, id: i });
        list.sort((a, b) => b.text.length - a.text.length);
        this.multi.set(c, list);
        this.multiFirst[c] = 1;
      }
    });
    const need = (t: string) => {
      const id = this.ids.get(t);
      if (id === undefined) throw new UserError(`ESM vocabulary lacks the token ${t}; use an ESM-2 vocab.txt`);
      return id;
    };
    this.clsId = need("<cls>");
    this.eosId = need("<eos>");
    this.unkId = need("<unk>");
    this.padId = need("<pad>");
    this.maskId = need("<mask>");
  }

  /** The built-in ESM-2 table (identical to every ESM-2 checkpoint's vocab.txt). */
  static default(): EsmTokenizer {
    return (defaultTokenizer ??= new EsmTokenizer(ESM2_VOCAB));
  }

  /** A Hugging Face `vocab.txt`: one token a line, id = line number (lines are trimmed, as HF does). */
  static fromVocabFile(path: string): EsmTokenizer {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new UserError(`cannot read ESM vocabulary ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const lines = text.split(/\r?\n/);
    if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    return new EsmTokenizer(lines.map((l) => l.trim()));
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  tokenToId(token: string): number | undefined {
    return this.ids.get(token);
  }

  /** Number of ids `encode(protein)` returns. */
  countTokens(protein: string): number {
    return this.scan(protein, null, 0) + 2;
  }

  encode(protein: string): Int32Array {
    const out = new Int32Array(this.countTokens(protein));
    this.encodeInto(protein, out, 0);
    return out;
  }

  /** Writes the ids at `out[offset..]` (e.g. a pinned native buffer); returns how many. */
  encodeInto(protein: string, out: Int32Array, offset: number): number {
    const n = this.countTokens(protein);
    if (offset < 0 || offset + n > out.length) {
      throw new RangeError(`encodeInto: ${n} tokens do not fit at offset ${offset} of a buffer of ${out.length}`);
    }
    out[offset] = this.clsId;
    this.scan(protein, out, offset + 1);
    out[offset + n - 1] = this.eosId;
    return n;
  }

  /** Tokenizes the residues (no specials); writes them when `out` is given; returns the count. */
  private scan(s: string, out: Int32Array | null, at: number): number {
    const single = this.single;
    const multi = this.multi;
    const multiFirst = this.multiFirst;
    const unk = this.unkId;
    let n = 0;
    let inUnk = false;
    const len = s.length;
    for (let i = 0; i < len; ) {
      const c = s.charCodeAt(i);
      let id = -1;
      let step = 1;
      if (multiFirst[c] === 1) {
        for (const t of multi.get(c)!) {
          if (s.startsWith(t.text, i)) {
            id = t.id;
            step = t.text.length;
            break;
          }
        }
      }
      if (id < 0) id = single[c];
      if (id >= 0) {
        if (out !== null) out[at + n] = id;
        n++;
        inUnk = false;
      } else if (isPyWhitespace(c)) {
        inUnk = false;
      } else if (!inUnk) {
        if (out !== null) out[at + n] = unk;
        n++;
        inUnk = true;
      }
      i += step;
    }
    return n;
  }
}

let defaultTokenizer: EsmTokenizer | undefined;
