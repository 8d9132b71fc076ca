import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync } from "node:fs";
import { BpeTokenizer } from "./bpe.ts";
import { UserError } from "../util/errors.ts";

// subprocesses and heavy checks on a busy machine take longer than the 5 s default (bunfig has no such key)
setDefaultTimeout(120_000);

const FILE = "test/fixtures/reference/dnabert-s/tokenizer.json";
const json = JSON.parse(readFileSync(FILE, "utf8"));
const tok = BpeTokenizer.fromFile(FILE);
const heapTok = BpeTokenizer.fromJSON(json, { mergeQueue: "heap" });
const ids = (s: string, t = tok) => Array.from(t.encode(s));

/**
 * Independent reference: plain BPE over token strings, rescanning every adjacent pair for the
 * lowest-rank merge (leftmost on ties) until none applies. Slow, obviously correct.
 */
function bruteForce(spec: any, text: string): number[] {
  const vocab: Record<string, number> = spec.model.vocab;
  const rank = new Map<string, number>();
  spec.model.merges.forEach((m: string | [string, string], r: number) => {
    const [a, b] = typeof m === "string" ? m.split(" ") : m;
    rank.set(`${a}\u0000${b}`, r);
  });
  const unk: string | null = spec.model.unk_token ?? null;
  const out: number[] = [];
  for (const word of text.match(/[A-Za-z0-9_]+|[^A-Za-z0-9_\s]+/g) ?? []) {
    const syms: (string | null)[] = []; // null = unknown character
    for (const ch of word) {
      if (ch in vocab) syms.push(ch);
      else if (!(spec.model.fuse_unk && syms.length > 0 && syms[syms.length - 1] === null)) syms.push(null);
    }
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < syms.length; i++) {
        if (syms[i] === null || syms[i + 1] === null) continue;
        const r = rank.get(`${syms[i]}\u0000${syms[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      syms.splice(best, 2, syms[best]! + syms[best + 1]!);
    }
    for (const s of syms) out.push(s === null ? vocab[unk!] : vocab[s]);
  }
  return [vocab["[CLS]"], ...out, vocab["[SEP]"]];
}

/** Deterministic pseudo-random generator for test data. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const decode = (t: BpeTokenizer, a: number[]) => a.map((i) => t.idToToken(i)).join("");

describe("DNABERT-S tokenizer.json", () => {
  test("models.md vectors (from the Hugging Face tokenizers library)", () => {
    expect(ids("ACGTAGCATCGGATCTATCTATCGACACTTGGTTATCGATCTACGAGCATCTCGTTAGC")).toEqual([
      1, 5, 194, 32, 757, 1239, 2092, 294, 24, 359, 88, 93, 32, 75, 77, 19, 2,
    ]);
    expect(ids("ACGTNNACGT")).toEqual([1, 5, 6, 1049, 0, 0, 5, 6, 1049, 2]);
    expect(ids("acgt")).toEqual([1, 0, 0, 0, 0, 2]);
    expect(ids("ACG TAC")).toEqual([1, 5, 3206, 14, 6, 2]);
  });

  test("vocabulary and specials", () => {
    expect(tok.vocabSize).toBe(4096);
    expect(["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]", "A", "C", "G", "T"].map((t) => tok.tokenToId(t))).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8,
    ]);
    expect(tok.tokenToId("N")).toBeUndefined();
    expect(tok.idToToken(3206)).toBe("CG");
  });

  test("empty string is [CLS] [SEP]", () => {
    expect(ids("")).toEqual([1, 2]);
    expect(ids("  \t ")).toEqual([1, 2]);
  });

  test("one to three bases", () => {
    expect(ids("A")).toEqual([1, 5, 2]);
    expect(ids("T")).toEqual([1, 8, 2]);
    for (const s of ["AA", "AC", "GT", "TTT", "ACG", "CGA", "GGC"]) {
      const got = ids(s);
      expect(got).toEqual(bruteForce(json, s));
      expect(decode(tok, got.slice(1, -1))).toBe(s);
    }
    expect(ids("AA")).toEqual([1, tok.tokenToId("AA")!, 2]);
  });

  test("600 bases", () => {
    const r = rng(7);
    const s = Array.from({ length: 600 }, () => "ACGT"[Math.floor(r() * 4)]).join("");
    const got = ids(s);
    expect(got).toEqual(bruteForce(json, s));
    expect(decode(tok, got.slice(1, -1))).toBe(s);
    expect(got.length).toBeLessThan(250);
  });

  test("N runs are one [UNK] per N and merges never cross them", () => {
    expect(ids("NNNN")).toEqual([1, 0, 0, 0, 0, 2]);
    const s = "ACGTACNACGTAC";
    const got = ids(s);
    expect(got).toEqual([1, ...ids("ACGTAC").slice(1, -1), 0, ...ids("ACGTAC").slice(1, -1), 2]);
    expect(got).toEqual(bruteForce(json, s));
  });

  test("lowercase and IUPAC letters are unknown, one [UNK] each", () => {
    expect(ids("ACgT")).toEqual([1, ...ids("AC").slice(1, -1), 0, 8, 2]);
    expect(ids("RYKMSWBDHVN")).toEqual([1, ...Array(11).fill(0), 2]);
    expect(ids("AARAA")).toEqual([1, tok.tokenToId("AA")!, 0, tok.tokenToId("AA")!, 2]);
  });

  test("whitespace splits words; punctuation is its own word", () => {
    expect(ids("ACG  TAC")).toEqual(ids("ACG TAC"));
    expect(ids("ACG\tTAC\n")).toEqual(ids("ACG TAC"));
    expect(ids("AC-GT")).toEqual([1, ...ids("AC").slice(1, -1), 0, ...ids("GT").slice(1, -1), 2]);
    expect(ids("AC--GT")).toEqual([1, ...ids("AC").slice(1, -1), 0, 0, ...ids("GT").slice(1, -1), 2]);
  });

  test("added tokens in the text are matched before pre-tokenization", () => {
    expect(ids("ACG[SEP]TAC")).toEqual([1, 5, 3206, 2, 14, 6, 2]);
    expect(ids("[MASK]")).toEqual([1, 4, 2]);
    expect(ids("[MASK")).toEqual([1, 0, 0, 5, 0, 0, 2]); // no match: '[' is a punctuation word, then M A S K
  });

  test("heap and rank-bucket queues and a brute-force BPE agree on random sequences", () => {
    expect(tok.mergeQueue).toBe("buckets");
    expect(heapTok.mergeQueue).toBe("heap");
    const r = rng(42);
    for (let k = 0; k < 300; k++) {
      const len = 1 + Math.floor(r() * 520);
      const alphabet = k % 5 === 0 ? "ACGTACGTACGTN" : k % 7 === 0 ? "ACGTacgt " : "ACGT";
      const s = Array.from({ length: len }, () => alphabet[Math.floor(r() * alphabet.length)]).join("");
      const want = bruteForce(json, s);
      expect(ids(s)).toEqual(want);
      expect(ids(s, heapTok)).toEqual(want);
    }
  });

  test("repetitive sequences (many equal-rank pairs) agree with brute force", () => {
    for (const s of ["A".repeat(301), "AT".repeat(150), "ACG".repeat(101), "AAAAC".repeat(40), "TTTTTTTTTG"]) {
      expect(ids(s)).toEqual(bruteForce(json, s));
      expect(ids(s, heapTok)).toEqual(bruteForce(json, s));
    }
  });

  test("encodeInto writes at an offset; countTokens matches", () => {
    const s = "ACGTAGCATCGGATCTATCTATCGACACTTGGTTATCGATCTACGAGCATCTCGTTAGC";
    const want = ids(s);
    const out = new Int32Array(want.length + 10).fill(-1);
    expect(tok.encodeInto(s, out, 4)).toBe(want.length);
    expect(Array.from(out.subarray(4, 4 + want.length))).toEqual(want);
    expect(Array.from(out.subarray(0, 4))).toEqual([-1, -1, -1, -1]);
    expect(out[4 + want.length]).toBe(-1);
    expect(tok.countTokens(s)).toBe(want.length);
    expect(tok.countTokens("")).toBe(2);
    expect(() => tok.encodeInto(s, out, 11)).toThrow(RangeError);
  });
});

/** A small tokenizer.json, built here. */
function tiny(overrides: Record<string, unknown> = {}, model: Record<string, unknown> = {}) {
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [
      { id: 0, content: "[UNK]", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 1, content: "[CLS]", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 2, content: "[SEP]", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: null,
    pre_tokenizer: { type: "Whitespace" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }],
      pair: [],
      special_tokens: { "[CLS]": { id: "[CLS]", ids: [1], tokens: ["[CLS]"] }, "[SEP]": { id: "[SEP]", ids: [2], tokens: ["[SEP]"] } },
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
      vocab: { "[UNK]": 0, "[CLS]": 1, "[SEP]": 2, a: 3, b: 4, c: 5, ab: 6, abc: 7, bc: 8, cc: 9 },
      merges: [["a", "b"], ["ab", "c"], ["b", "c"], ["c", "c"]],
      ...model,
    },
    ...overrides,
  };
}

describe("tokenizer.json variants", () => {
  test("merges given as pairs equal merges given as strings", () => {
    const pairs = BpeTokenizer.fromJSON(tiny());
    const strings = BpeTokenizer.fromJSON(tiny({}, { merges: ["a b", "ab c", "b c", "c c"] }));
    expect(Array.from(pairs.encode("abc"))).toEqual([1, 7, 2]);
    expect(Array.from(pairs.encode("abcc"))).toEqual([1, 7, 5, 2]);
    expect(Array.from(pairs.encode("bcab"))).toEqual([1, 8, 6, 2]);
    expect(Array.from(pairs.encode("ccc"))).toEqual([1, 9, 5, 2]); // leftmost first on a tie
    for (const s of ["abc", "abcc", "bcab", "ccc", "aabbcc", "cabcab x abc"]) {
      expect(Array.from(strings.encode(s))).toEqual(Array.from(pairs.encode(s)));
      expect(Array.from(pairs.encode(s))).toEqual(bruteForce(tiny(), s));
    }
  });

  test("unknown characters: one [UNK] each, or one per run with fuse_unk", () => {
    const plain = BpeTokenizer.fromJSON(tiny());
    const fused = BpeTokenizer.fromJSON(tiny({}, { fuse_unk: true }));
    expect(Array.from(plain.encode("axxb"))).toEqual([1, 3, 0, 0, 4, 2]);
    expect(Array.from(fused.encode("axxb"))).toEqual([1, 3, 0, 4, 2]);
    expect(Array.from(fused.encode("xaxx"))).toEqual([1, 0, 3, 0, 2]);
    expect(Array.from(plain.encode("a\u{1F600}b"))).toEqual([1, 3, 0, 4, 2]); // a surrogate pair is one character
  });

  test("without an unk token unknown characters are dropped", () => {
    const t = BpeTokenizer.fromJSON(tiny({}, { unk_token: null }));
    // the dropped x leaves a and b adjacent, so they merge (as in the library)
    expect(Array.from(t.encode("axbc"))).toEqual([1, 7, 2]);
  });

  test("a merge list out of rank order falls back to the heap and still matches brute force", () => {
    // "ab c" ranks before "a b": buckets would be wrong, the heap is exact.
    const spec = tiny({}, { merges: ["ab c", "a b", "c c", "b c"] });
    const t = BpeTokenizer.fromJSON(spec);
    expect(t.mergeQueue).toBe("heap");
    expect(() => BpeTokenizer.fromJSON(spec, { mergeQueue: "buckets" })).toThrow(RangeError);
    const r = rng(3);
    for (let k = 0; k < 200; k++) {
      const s = Array.from({ length: 1 + Math.floor(r() * 30) }, () => "abcx"[Math.floor(r() * 4)]).join("");
      expect(Array.from(t.encode(s))).toEqual(bruteForce(spec, s));
    }
  });

  test("no post-processor: no special tokens; BertProcessing: [CLS] ... [SEP]", () => {
    expect(Array.from(BpeTokenizer.fromJSON(tiny({ post_processor: null })).encode("ab"))).toEqual([6]);
    const bert = BpeTokenizer.fromJSON(tiny({ post_processor: { type: "BertProcessing", sep: ["[SEP]", 2], cls: ["[CLS]", 1] } }));
    expect(Array.from(bert.encode("ab"))).toEqual([1, 6, 2]);
  });

  test("lstrip/rstrip added tokens swallow adjacent spaces; single_word needs word boundaries", () => {
    const added = [
      { id: 0, content: "[UNK]", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 10, content: "[M]", single_word: false, lstrip: true, rstrip: true, normalized: false, special: true },
      { id: 11, content: "bb", single_word: true, lstrip: false, rstrip: false, normalized: false, special: false },
    ];
    const t = BpeTokenizer.fromJSON(tiny({ added_tokens: added, pre_tokenizer: null, post_processor: null }));
    expect(Array.from(t.encode("a [M] b"))).toEqual([3, 10, 4]);
    expect(Array.from(t.encode("a bb"))).toEqual([3, 0, 11]); // the space before bb is an unknown character
    expect(Array.from(t.encode("abb"))).toEqual([6, 4]); // not a single word: plain BPE
  });

  test("stored padding and truncation are ignored", () => {
    const t = BpeTokenizer.fromJSON(
      tiny({ truncation: { max_length: 3, strategy: "LongestFirst", stride: 0, direction: "Right" }, padding: { strategy: { Fixed: 8 } } }),
    );
    expect(Array.from(t.encode("abcabcabc"))).toEqual([1, 7, 7, 7, 2]);
  });

  test("unsupported or broken files are UserErrors with one clear line", () => {
    expect(() => BpeTokenizer.fromJSON(tiny({}, { type: "WordPiece" }))).toThrow(UserError);
    expect(() => BpeTokenizer.fromJSON(tiny({ normalizer: { type: "Lowercase" } }))).toThrow(/normalizer Lowercase/);
    expect(() => BpeTokenizer.fromJSON(tiny({ pre_tokenizer: { type: "ByteLevel" } }))).toThrow(/pre-tokenizer ByteLevel/);
    expect(() => BpeTokenizer.fromJSON(tiny({}, { merges: ["a z"] }))).toThrow(/merge "a z"/);
    expect(() => BpeTokenizer.fromFile("/nonexistent/tokenizer.json")).toThrow(/cannot read tokenizer \/nonexistent\/tokenizer\.json/);
    expect(() => BpeTokenizer.fromFile("test/fixtures/reference/esm2/vocab.txt")).toThrow(/not valid JSON/);
  });
});
