/**
 * One part: a run of consecutive input records, taken from FASTA to calls.
 * prepare: records -> windows -> frames -> tokens (host work);
 * then the encoders (encode.ts), the classifier, and the part's result columns.
 */
import type { FastaRecord } from "../fasta/reader.ts";
import { windowsOf } from "../frames/windows.ts";
import { framesOf, type FrameName } from "../frames/sixframe.ts";
import type { EsmTokenizer } from "../tokenize/esm.ts";
import type { BpeTokenizer } from "../tokenize/bpe.ts";

/** What a part needs from its input records, kept small (sequences are not retained). */
export interface PartRecords {
  index: number;
  /** index of the part's first record in the whole input */
  firstRecord: number;
  /** record_index (0-based over all inputs) of each record */
  recordIndex: number[];
  ids: string[];
  lengths: number[];
  /** 64-bit content hash of ids and sequences: detects a changed input on --resume */
  inputHash: string;
}

export interface PreparedPart {
  records: PartRecords;
  // windows (VirNucPro chunks), in input order
  windowIds: string[];
  windowRecord: Int32Array; // index into records.ids
  windowK: Int32Array;
  windowStart: Float64Array;
  windowEnd: Float64Array;
  // kept frames, in pipeline order
  frameIds: string[];
  frameWindow: Int32Array; // index into windowIds
  frameNames: FrameName[];
  proteinLength: Int32Array;
  esmTokens: Int32Array[];
  dnabertTokens: Int32Array[];
  /** host seconds spent preparing */
  seconds: number;
  longProteins: number;
}

export interface Tokenizers {
  esm: EsmTokenizer;
  dnabert: BpeTokenizer;
}

export function hashRecords(records: readonly FastaRecord[]): string {
  let h = 0n;
  for (const r of records) {
    h = BigInt.asUintN(64, h * 1099511628211n + BigInt(Bun.hash(r.id)));
    h = BigInt.asUintN(64, h * 1099511628211n + BigInt(Bun.hash(r.seq)));
  }
  return h.toString(16).padStart(16, "0");
}

/** Host side of a part: windows, six frames, and token ids for both encoders. */
export function preparePart(
  index: number,
  records: readonly FastaRecord[],
  chunkSize: number,
  tok: Tokenizers | null,
): PreparedPart {
  const t0 = performance.now();
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
        if (f.protein.length > 1022) longProteins++;
        if (tok) {
          esmTokens.push(tok.esm.encode(f.protein));
          dnabertTokens.push(tok.dnabert.encode(f.nucleotide));
        }
      }
    }
  }
  return {
    records: {
      index,
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
