/**
 * Six-frame identification (spec §1.3): translate the upper-cased window from offsets 0, 1, 2
 * (F1-F3) and its reverse complement (R1-R3) with NCBI table 1; a codon holding anything but
 * A/C/G/T is dropped; a frame is kept when its protein is non-empty and holds no stop. The
 * kept nucleotide is one base longer than the codons: seq[off : off + 3p + 1].
 */
import type { Window } from "./windows.ts";

export type FrameName = "F1" | "F2" | "F3" | "R1" | "R2" | "R3";
export const FRAME_NAMES: readonly FrameName[] = ["F1", "F2", "F3", "R1", "R2", "R3"];

export interface Frame {
  /** window id + frame name */
  id: string;
  windowId: string;
  frame: FrameName;
  nucleotide: string;
  protein: string;
}

// Base codes: A0 C1 G2 T3, anything else 4.
const BASE = new Uint8Array(256).fill(4);
BASE[65] = 0;
BASE[67] = 1;
BASE[71] = 2;
BASE[84] = 3;

// NCBI table 1 in TCAG order, re-indexed to ACGT order (16*b1 + 4*b2 + b3). '*' = stop.
const TCAG_AA = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG";
const TCAG = [3, 1, 0, 2]; // T C A G as ACGT codes
export const CODON = new Uint8Array(64);
for (let i = 0; i < 64; i++) {
  const a = TCAG[i >> 4], b = TCAG[(i >> 2) & 3], c = TCAG[i & 3];
  CODON[16 * a + 4 * b + c] = TCAG_AA.charCodeAt(i);
}
const STOP = 42; // '*'

// Upper-case and complement tables over bytes.
const UPPER = new Uint8Array(256);
const COMP = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  UPPER[b] = b >= 97 && b <= 122 ? b - 32 : b;
  COMP[b] = b;
}
COMP[65] = 84;
COMP[84] = 65;
COMP[67] = 71;
COMP[71] = 67;

const latin1 = new TextDecoder("latin1");
let fwd = new Uint8Array(1024);
let rev = new Uint8Array(1024);
let prot = new Uint8Array(512);

/** Protein of one frame into `prot`; returns its length, or -1 when a stop codon occurs. */
function translate(s: Uint8Array, len: number, off: number): number {
  let p = 0;
  for (let i = off; i <= len - 3; i += 3) {
    const a = BASE[s[i]], b = BASE[s[i + 1]], c = BASE[s[i + 2]];
    if ((a | b | c) & 4) continue; // a codon with N or another code contributes nothing
    const aa = CODON[16 * a + 4 * b + c];
    if (aa === STOP) return -1;
    prot[p++] = aa;
  }
  return p;
}

/** The kept frames of a window, in the order F1, F2, F3, R1, R2, R3. */
export function framesOf(win: Window): Frame[] {
  const len = win.seq.length;
  if (fwd.length < len) {
    fwd = new Uint8Array(len * 2);
    rev = new Uint8Array(len * 2);
  }
  if (prot.length < len / 3 + 1) prot = new Uint8Array(len);
  const src = win.seq;
  for (let i = 0; i < len; i++) {
    const u = UPPER[src[i]];
    fwd[i] = u;
    rev[len - 1 - i] = COMP[u];
  }
  const out: Frame[] = [];
  for (let f = 0; f < 6; f++) {
    const s = f < 3 ? fwd : rev;
    const off = f % 3;
    const p = translate(s, len, off);
    if (p <= 0) continue;
    const name = FRAME_NAMES[f];
    out.push({
      id: win.id + name,
      windowId: win.id,
      frame: name,
      protein: latin1.decode(prot.subarray(0, p)),
      nucleotide: latin1.decode(s.subarray(off, Math.min(len, off + 3 * p + 1))),
    });
  }
  return out;
}
