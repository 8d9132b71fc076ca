// Chain step PartInput -> PreparedPart: windows, frames and tokens of a part.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { preparePart, hashRecords } from "./prepare.ts";
import { windowsOf } from "./windows.ts";
import { framesOf } from "./sixframe.ts";
import { EsmTokenizer } from "../tokenize/esm.ts";
import { BpeTokenizer } from "../tokenize/bpe.ts";
import { REFERENCE } from "../../test/helpers.ts";

const enc = new TextEncoder();
const rec = (id: string, seq: string, index: number) => ({ id, seq: enc.encode(seq), file: "x.fa", line: 1, offset: 0, index });
const orf = "ATG" + "GCT".repeat(60) + "TAA"; // one open frame, 186 bp
const records = [rec("a", orf + orf + orf, 7), rec("b", "NNNNNNNNNN", 8), rec("c", orf.slice(0, 100), 9)];

describe("preparePart", () => {
  test("windows and frames in pipeline order, as windowsOf and framesOf give them", () => {
    const p = preparePart({ index: 3, records }, 300, null);
    expect(p.records).toMatchObject({ index: 3, firstRecord: 7, ids: ["a", "b", "c"], lengths: [558, 10, 100] });
    const wantWindows = records.flatMap((r) => windowsOf(r, 300));
    expect(p.windowIds).toEqual(wantWindows.map((w) => w.id));
    expect(Array.from(p.windowStart)).toEqual(wantWindows.map((w) => w.start));
    const wantFrames = wantWindows.flatMap((w) => framesOf(w));
    expect(p.frameIds).toEqual(wantFrames.map((f) => f.id));
    expect(Array.from(p.proteinLength)).toEqual(wantFrames.map((f) => f.protein.length));
    for (let i = 0; i < p.frameIds.length; i++) expect(p.frameIds[i].startsWith(p.windowIds[p.frameWindow[i]])).toBe(true);
    expect(p.esmTokens).toEqual([]);
  });

  test("with tokenizers: one token array per frame for each encoder", () => {
    const tok = { esm: EsmTokenizer.default(), dnabert: BpeTokenizer.fromFile(join(REFERENCE, "dnabert-s/tokenizer.json")) };
    const p = preparePart({ index: 0, records }, 300, tok);
    expect(p.esmTokens.length).toBe(p.frameIds.length);
    expect(p.dnabertTokens.length).toBe(p.frameIds.length);
    expect(p.esmTokens[0].length).toBe(p.proteinLength[0] + 2); // <cls> residues <eos>
  });

  test("counts proteins longer than ESM-2's 1022 trained residues", () => {
    const long = "ATG" + "GCT".repeat(1100) + "TAA";
    const r = rec("l", long, 0);
    const p = preparePart({ index: 0, records: [r] }, 5000, null);
    const want = windowsOf(r, 5000).flatMap((w) => framesOf(w)).filter((f) => f.protein.length > 1022).length;
    expect(want).toBeGreaterThan(0);
    expect(p.longProteins).toBe(want);
    expect(preparePart({ index: 0, records }, 300, null).longProteins).toBe(0);
  });

  test("the input hash changes with any id or base", () => {
    const h = hashRecords(records);
    expect(hashRecords(records)).toBe(h);
    expect(hashRecords([rec("a", orf + orf + orf, 7), rec("b", "NNNNNNNNNA", 8), records[2]])).not.toBe(h);
    expect(hashRecords([rec("z", orf + orf + orf, 7), records[1], records[2]])).not.toBe(h);
  });
});
