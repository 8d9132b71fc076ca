import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { ESM2_VOCAB, EsmTokenizer } from "./esm.ts";
import { UserError } from "../util/errors.ts";

const VOCAB_FILE = "test/fixtures/reference/esm2/vocab.txt";
const tok = EsmTokenizer.default();
const ids = (s: string) => Array.from(tok.encode(s));

describe("EsmTokenizer vocabulary", () => {
  test("built-in table equals the ESM-2 vocab.txt fixture", () => {
    const lines = readFileSync(VOCAB_FILE, "utf8").split(/\r?\n/).filter((l, i, a) => i < a.length - 1 || l !== "");
    expect(lines.map((l) => l.trim())).toEqual([...ESM2_VOCAB]);
    expect(ESM2_VOCAB.length).toBe(33);
    const fromFile = EsmTokenizer.fromVocabFile(VOCAB_FILE);
    expect([...fromFile.vocab]).toEqual([...ESM2_VOCAB]);
    for (const s of ["MKTAYIAKQR", "", "mk LV<mask>", "BXZUO.-J"]) expect(Array.from(fromFile.encode(s))).toEqual(ids(s));
  });

  test("special ids", () => {
    expect([tok.clsId, tok.padId, tok.eosId, tok.unkId, tok.maskId]).toEqual([0, 1, 2, 3, 32]);
    expect(tok.vocabSize).toBe(33);
    expect(tok.tokenToId("W")).toBe(22);
    expect(tok.tokenToId("w")).toBeUndefined();
  });

  test("missing vocab file is a UserError naming the file", () => {
    expect(() => EsmTokenizer.fromVocabFile("/nonexistent/vocab.txt")).toThrow(UserError);
    expect(() => EsmTokenizer.fromVocabFile("/nonexistent/vocab.txt")).toThrow(/nonexistent\/vocab\.txt/);
  });
});

describe("EsmTokenizer.encode", () => {
  test("<cls> + residues + <eos>", () => {
    expect(ids("MKLV")).toEqual([0, 20, 15, 4, 7, 2]);
    expect(ids("")).toEqual([0, 2]);
    expect(ids("LAGVSERTIDPKQNFYMHWC")).toEqual([0, ...Array.from({ length: 20 }, (_, i) => 4 + i), 2]);
    expect(ids("XBUZO.-")).toEqual([0, 24, 25, 26, 27, 28, 29, 30, 2]);
  });

  test("lowercase is not upper-cased: a lowercase run is one <unk>", () => {
    expect(ids("mk")).toEqual([0, 3, 2]);
    expect(ids("MkkL")).toEqual([0, 20, 3, 4, 2]);
    expect(ids("aAa")).toEqual([0, 3, 5, 3, 2]);
  });

  test("a run of out-of-vocabulary characters is one <unk>", () => {
    expect(ids("J")).toEqual([0, 3, 2]);
    expect(ids("MJJ*#K")).toEqual([0, 20, 3, 15, 2]);
    expect(ids("M\u{1F600}K")).toEqual([0, 20, 3, 15, 2]);
  });

  test("whitespace gives no token and ends an <unk> run", () => {
    expect(ids("MK LV")).toEqual(ids("MKLV"));
    expect(ids(" M\tK\r\n")).toEqual([0, 20, 15, 2]);
    expect(ids("M xy z K")).toEqual([0, 20, 3, 3, 15, 2]);
    expect(ids("   ")).toEqual([0, 2]);
  });

  test("vocabulary tokens written in the text are those tokens", () => {
    expect(ids("<mask>A")).toEqual([0, 32, 5, 2]);
    expect(ids("A<cls><eos><null_1>")).toEqual([0, 5, 0, 2, 31, 2]);
    expect(ids("<mas")).toEqual([0, 3, 2]); // '<' 'm' 'a' 's' are all outside the vocabulary
    expect(ids("<masK")).toEqual([0, 3, 15, 2]);
  });

  test("encodeInto writes at an offset and leaves the rest alone", () => {
    const out = new Int32Array(12).fill(-7);
    expect(tok.encodeInto("MKV", out, 3)).toBe(5);
    expect(Array.from(out)).toEqual([-7, -7, -7, 0, 20, 15, 7, 2, -7, -7, -7, -7]);
    expect(() => tok.encodeInto("MKVLLLLL", out, 6)).toThrow(RangeError);
  });

  test("countTokens equals the encoded length", () => {
    for (const s of ["", "MKV", "mk LV", "<mask><mask>", "JJ J", "ACDEFGHIKLMNPQRSTVWY".repeat(60)]) {
      expect(tok.countTokens(s)).toBe(tok.encode(s).length);
    }
  });
});
