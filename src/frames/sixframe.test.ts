import { describe, expect, test } from "bun:test";
import { framesOf, FRAME_NAMES } from "./sixframe.ts";
import { windowsOf, type Window } from "./windows.ts";

// NCBI table 1 written out by amino acid, independent of the implementation's lookup.
const TABLE: Record<string, string> = {};
for (const [aa, codons] of Object.entries({
  A: "GCT GCC GCA GCG", R: "CGT CGC CGA CGG AGA AGG", N: "AAT AAC", D: "GAT GAC", C: "TGT TGC",
  Q: "CAA CAG", E: "GAA GAG", G: "GGT GGC GGA GGG", H: "CAT CAC", I: "ATT ATC ATA",
  L: "TTA TTG CTT CTC CTA CTG", K: "AAA AAG", M: "ATG", F: "TTT TTC", P: "CCT CCC CCA CCG",
  S: "TCT TCC TCA TCG AGT AGC", T: "ACT ACC ACA ACG", W: "TGG", Y: "TAT TAC", V: "GTT GTC GTA GTG",
  "*": "TAA TAG TGA",
}))
  for (const c of codons.split(" ")) TABLE[c] = aa;

/** The original's translate: codons at 0, 3, ... while i <= len-3; unknown codons dropped. */
function translate(s: string): string {
  let p = "";
  for (let i = 0; i + 3 <= s.length; i += 3) p += TABLE[s.slice(i, i + 3)] ?? "";
  return p;
}
function revcomp(s: string): string {
  const m: Record<string, string> = { A: "T", T: "A", C: "G", G: "C" };
  return [...s].reverse().map((b) => m[b] ?? b).join("");
}
/** Reference six-frame identification on strings. */
function reference(windowId: string, window: string) {
  const up = window.toUpperCase();
  const rc = revcomp(up);
  const out: { id: string; nucleotide: string; protein: string }[] = [];
  for (let f = 0; f < 6; f++) {
    const s = f < 3 ? up : rc;
    const off = f % 3;
    const protein = translate(s.slice(off));
    if (protein.length === 0 || protein.includes("*")) continue;
    out.push({ id: windowId + FRAME_NAMES[f], nucleotide: s.slice(off, off + 3 * protein.length + 1), protein });
  }
  return out;
}

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

const enc = (s: string) => new TextEncoder().encode(s);
const win = (s: string, id = "w"): Window => ({ id, recordId: "r", recordIndex: 0, k: 1, start: 0, end: s.length, seq: enc(s) });

describe("framesOf", () => {
  test("the genetic code: every codon translates as NCBI table 1", () => {
    for (const [codon, aa] of Object.entries(TABLE)) {
      const fs = framesOf(win(codon));
      const f1 = fs.find((f) => f.frame === "F1");
      if (aa === "*") expect(f1).toBeUndefined();
      else expect(f1?.protein).toBe(aa);
    }
    expect(Object.keys(TABLE).length).toBe(64);
  });

  test("hand-worked window: kept frames, clipping, reverse complement", () => {
    // ATG GCC AAA T: F1 = MAK (10 bases), F2 TGG CCA AAT = WPN (9: clipped), F3 GGC CAA = GQ (7).
    // revcomp ATTTGGCCAT: R1 ATT TGG CCA = IWP, R2 TTT GGC CAT = FGH, R3 TTG GCC = LA.
    const fs = framesOf(win("atgGCCAAAT", "read_chunk_1"));
    expect(fs.map((f) => [f.id, f.windowId, f.frame, f.nucleotide, f.protein])).toEqual([
      ["read_chunk_1F1", "read_chunk_1", "F1", "ATGGCCAAAT", "MAK"],
      ["read_chunk_1F2", "read_chunk_1", "F2", "TGGCCAAAT", "WPN"],
      ["read_chunk_1F3", "read_chunk_1", "F3", "GGCCAAA", "GQ"],
      ["read_chunk_1R1", "read_chunk_1", "R1", "ATTTGGCCAT", "IWP"],
      ["read_chunk_1R2", "read_chunk_1", "R2", "TTTGGCCAT", "FGH"],
      ["read_chunk_1R3", "read_chunk_1", "R3", "TTGGCCA", "LA"],
    ]);
  });

  test("a stop anywhere (also terminal) discards the frame; empty proteins are not kept", () => {
    expect(framesOf(win("ATGTAA")).map((f) => f.frame)).not.toContain("F1");
    expect(framesOf(win("AT"))).toEqual([]);
    expect(framesOf(win("NNNNNN"))).toEqual([]);
  });

  test("codons with N or IUPAC codes are dropped and the frame goes on; the nucleotide is 3p+1 bases", () => {
    // F1 codons: ATG NNN GCC -> MA; nucleotide = first 3*2+1 bases, not the codons used.
    const f1 = framesOf(win("ATGNNNGCCA")).find((f) => f.frame === "F1")!;
    expect(f1.protein).toBe("MA");
    expect(f1.nucleotide).toBe("ATGNNNG");
    // R: IUPAC R stays in place under complement: revcomp(RCCATGTT) = AACATGGR -> AAC ATG (GR) = NM.
    const r1 = framesOf(win("RCCATGTT")).find((f) => f.frame === "R1")!;
    expect(r1.protein).toBe("NM");
    expect(r1.nucleotide).toBe("AACATGG");
    const r3 = framesOf(win("RCCATGTT")).find((f) => f.frame === "R3")!;
    expect([r3.protein, r3.nucleotide]).toEqual(["H", "CATG"]); // CAT (GGR dropped)
  });

  test("the record is not modified (upper-casing works on a copy)", () => {
    const w = win("acgtacgtaa");
    const before = w.seq.slice();
    framesOf(w);
    expect(w.seq).toEqual(before);
  });

  test("matches the string reference on seeded random windows (ACGT, lowercase, N, IUPAC, lengths 1-1200)", () => {
    const rnd = rng(99);
    const alphabets = ["ACGT", "ACGTacgt", "ACGTACGTACGTACGTN", "ACGTACGTACGTRYKMSWN"];
    let kept = 0;
    for (let i = 0; i < 4000; i++) {
      const alpha = alphabets[i % alphabets.length];
      const len = 1 + Math.floor(rnd() * (i % 10 === 0 ? 1200 : 160));
      let s = "";
      // Half stop-free coding stretches so that plenty of frames survive.
      if (i % 2 === 0) {
        const codons = Object.keys(TABLE).filter((c) => TABLE[c] !== "*");
        while (s.length < len) s += codons[Math.floor(rnd() * codons.length)];
        s = s.slice(0, len);
        if (rnd() < 0.5) s = revcomp(s);
        if (alpha !== "ACGT") s = [...s].map((b) => (rnd() < 0.03 ? alpha[Math.floor(rnd() * alpha.length)] : b)).join("");
      } else for (let j = 0; j < len; j++) s += alpha[Math.floor(rnd() * alpha.length)];
      const got = framesOf(win(s, `r${i}_chunk_1`)).map(({ id, nucleotide, protein }) => ({ id, nucleotide, protein }));
      const want = reference(`r${i}_chunk_1`, s);
      if (JSON.stringify(got) !== JSON.stringify(want)) expect({ s, got }).toEqual({ s, got: want });
      kept += got.length;
    }
    expect(kept).toBeGreaterThan(2000);
  });

  test("properties over seeded records: ids, coordinates, protein = translation of nucleotide minus the extra base", () => {
    const rnd = rng(2024);
    const codons = Object.keys(TABLE).filter((c) => TABLE[c] !== "*");
    let kept = 0;
    for (let i = 0; i < 300; i++) {
      const L = 50 + Math.floor(rnd() * 1500);
      let s = "";
      // Stop-free genes on either strand, now and then broken by a random base (a frame shift).
      while (s.length < L) s += rnd() < 0.995 ? codons[Math.floor(rnd() * codons.length)] : "ACGT"[Math.floor(rnd() * 4)];
      s = s.slice(0, L);
      if (rnd() < 0.5) s = revcomp(s);
      const rec = { id: `seq${i}`, seq: enc(s), index: i };
      const c = [300, 500][i & 1];
      for (const w of windowsOf(rec, c)) {
        expect(w.start).toBeGreaterThanOrEqual(0);
        expect(w.end).toBeLessThanOrEqual(L);
        const ws = s.slice(w.start, w.end);
        for (const f of framesOf(w)) {
          kept++;
          expect(f.id).toMatch(new RegExp(`^seq${i}_chunk_${w.k}[FR][123]$`));
          expect(f.id).toBe(w.id + f.frame);
          expect(f.protein).not.toContain("*");
          expect(f.protein.length).toBeGreaterThan(0);
          const off = Number(f.frame[1]) - 1;
          const strand = f.frame[0] === "F" ? ws : revcomp(ws);
          expect(f.nucleotide).toBe(strand.slice(off, off + 3 * f.protein.length + 1));
          const codingLen = Math.min(f.nucleotide.length, 3 * f.protein.length);
          expect(translate(f.nucleotide.slice(0, codingLen))).toBe(f.protein);
        }
      }
    }
    expect(kept).toBeGreaterThan(300);
  });
});
