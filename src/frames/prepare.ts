/**
 * Chain step PartInput -> PreparedPart (host work): windows (VirNucPro chunks), the six frames
 * of each window, and the token ids of every kept frame for both encoders.
 */
import type { FastaRecord } from "../fasta/reader.ts";
import type { PartInput, PreparedPart } from "../run/chain.ts";
import { windowsOf } from "./windows.ts";
import { framesOf, type FrameName } from "./sixframe.ts";
import type { EsmTokenizer } from "../tokenize/esm.ts";
import type { BpeTokenizer } from "../tokenize/bpe.ts";

export interface Tokenizers {
  esm: EsmTokenizer;
  dnabert: BpeTokenizer;
}

/** ESM-2 was trained on proteins of at most this many residues. */
export const ESM_TRAINED_RESIDUES = 1022;

/** 64-bit content hash of ids and sequences (a changed input is refused on --resume). */
export function hashRecords(records: readonly FastaRecord[]): string {
  let h = 0n;
  for (const r of records) {
    h = BigInt.asUintN(64, h * 1099511628211n + BigInt(Bun.hash(r.id)));
    h = BigInt.asUintN(64, h * 1099511628211n + BigInt(Bun.hash(r.seq)));
  }
  return h.toString(16).padStart(16, "0");
}

/** Windows, frames and tokens of a part; `tok` null gives frames without tokens. */
export function preparePart(input: PartInput, chunkSize: number, tok: Tokenizers | null): PreparedPart {
  const t0 = performance.now();
  const { records } = input;
  const windowIds: string[] = [];
  const windowRecord: number[] = [];
  const windowK: number[] = [];
  const windowStart: number[] = [];
  const windowEnd: number[] = [];
  const frameIds: string[] = [];
  const frameWindow: number[] = [];
  const frameNames: FrameName[] = [];
  const proteinLength: number[] = [];
  const esmTokens: Int32Array[] = [];
  const dnabertTokens: Int32Array[] = [];
  let longProteins = 0;
  for (let r = 0; r < records.length; r++) {
    for (const w of windowsOf(records[r], chunkSize)) {
      const wi = windowIds.length;
      windowIds.push(w.id);
      windowRecord.push(r);
      windowK.push(w.k);
      windowStart.push(w.start);
      windowEnd.push(w.end);
      for (const f of framesOf(w)) {
        frameIds.push(f.id);
        frameWindow.push(wi);
        frameNames.push(f.frame);
        proteinLength.push(f.protein.length);
        if (f.protein.length > ESM_TRAINED_RESIDUES) longProteins++;
        if (tok) {
          esmTokens.push(tok.esm.encode(f.protein));
          dnabertTokens.push(tok.dnabert.encode(f.nucleotide));
        }
      }
    }
  }
  return {
    records: {
      index: input.index,
      firstRecord: records.length ? records[0].index : 0,
      recordIndex: records.map((r) => r.index),
      ids: records.map((r) => r.id),
      lengths: records.map((r) => r.seq.length),
      inputHash: hashRecords(records),
    },
    windowIds,
    windowRecord: Int32Array.from(windowRecord),
    windowK: Int32Array.from(windowK),
    windowStart: Float64Array.from(windowStart),
    windowEnd: Float64Array.from(windowEnd),
    frameIds,
    frameWindow: Int32Array.from(frameWindow),
    frameNames,
    proteinLength: Int32Array.from(proteinLength),
    esmTokens,
    dnabertTokens,
    seconds: (performance.now() - t0) / 1000,
    longProteins,
  };
}
