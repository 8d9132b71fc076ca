/**
 * A part's journey, one typed step per stage:
 *
 *   PartInput        consecutive input records                     run/source.ts
 *   -> PreparedPart  windows, six frames, token ids (host)          frames/prepare.ts   preparePart
 *   -> EncodedPart   DNABERT-S and ESM-2 embeddings, frame order    engine/encode.ts    PartEncoder
 *   -> ClassifiedPart scores and every call (frame, window, record) classify/classify.ts PartClassifier
 *   -> PartTables    the part's Arrow IPC files and manifest head   output/tables.ts    partTables
 *
 * run/process.ts drives the chain (the same code in a single-process run and in each worker);
 * the steps below are the only way a part moves from one stage to the next.
 */
import type { FastaRecord } from "../fasta/reader.ts";
import type { FrameName } from "../frames/sixframe.ts";

export { preparePart, hashRecords } from "../frames/prepare.ts";
export { PartEncoder } from "../engine/encode.ts";
export { PartClassifier } from "../classify/classify.ts";
export { partTables } from "../output/tables.ts";

/** Consecutive input records: the unit of resume, of work dealt to workers, and of --shard. */
export interface PartInput {
  index: number;
  records: FastaRecord[];
}

/** What a part keeps of its input records (sequences are not retained). */
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
  windowK: Int32Array; // k of `_chunk_k`, 1-based
  windowStart: Float64Array; // 0-based, half-open
  windowEnd: Float64Array;
  // kept frames, in pipeline order
  frameIds: string[];
  frameWindow: Int32Array; // index into windowIds
  frameNames: FrameName[];
  proteinLength: Int32Array;
  esmTokens: Int32Array[]; // per frame: <cls> residues <eos>
  dnabertTokens: Int32Array[]; // per frame: [CLS] ... [SEP]
  /** host seconds spent preparing */
  seconds: number;
  /** frames whose protein is longer than ESM-2's 1022 trained residues */
  longProteins: number;
}

export interface EncodeStats {
  sequences: number;
  tokens: number;
  batches: number;
  /** real tokens / sum over batches of max(capacity, batch tokens) (src/pack/ffd.ts) */
  efficiency: number;
  budget: number;
  /** the largest batch made (<= budget unless one sequence is longer) */
  capacity: number;
}

export interface EncodedPart {
  prepared: PreparedPart;
  dnabert: Float32Array; // (frames, dnabertDim)
  esm: Float32Array; // (frames, esmDim)
  dnabertDim: number;
  esmDim: number;
  stats: { esm: EncodeStats; dnabert: EncodeStats; deviceSeconds: number; hostWaitSeconds: number };
}

/** Per frame: the classifier's probabilities and the frame's call. */
export interface FrameCalls {
  scoreOthers: Float32Array; // score1 = P(others)
  scoreVirus: Float32Array; // score2 = P(virus)
  isVirus: Uint8Array; // 1 virus, 0 others
}

export interface WindowCalls {
  nFrames: Int32Array;
  maxOthers: Float32Array; // NaN where the window has no frame
  maxVirus: Float32Array;
  /** 1 virus, 0 others, -1 no frame (null in the outputs) */
  isVirus: Int8Array;
}

export interface SequenceCalls {
  nWindows: Int32Array;
  nViralWindows: Int32Array;
  maxVirus: Float32Array; // NaN where no window of the record kept a frame
  /** 1 virus, 0 others, -1 no frame */
  call: Int8Array;
}

export interface PartCalls {
  frames: FrameCalls;
  windows: WindowCalls;
  sequences: SequenceCalls;
}

export interface ClassifiedPart {
  encoded: EncodedPart;
  /** null when only embedding (`virnuc embed`) */
  calls: PartCalls | null;
}

/** A part's manifest entry without its file list (the store adds sizes and checksums). */
export interface PartHead {
  part: number;
  firstRecord: number;
  records: number;
  windows: number;
  frames: number;
  inputHash: string;
}

export interface PartFile {
  /** e.g. "predictions.arrow" */
  suffix: string;
  data: Uint8Array;
}

export interface PartTables {
  head: PartHead;
  files: PartFile[];
}
