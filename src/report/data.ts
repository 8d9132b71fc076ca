/**
 * What a report shows about one output directory, aggregated so that its size does not depend on
 * the run's size: run.json as written, counts, fixed-bin score histograms, the top sequences by
 * number of viral windows with their per-window scores (binned when a sequence has many windows).
 *
 * The Parquet files are read one row group at a time and only the columns needed, through
 * parquet-wasm (ParquetFile over a Bun.file Blob), so memory stays bounded by one row group.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { type Table, tableFromIPC } from "apache-arrow";
import * as pq from "parquet-wasm";
import { UserError, oneLine } from "../util/errors.ts";

/** Number of equal bins over [0, 1] of the score histograms. */
export const SCORE_BINS = 50;
/** How many sequences the along-sequence figure shows. */
export const TOP_SEQUENCES = 10;
/** At most this many points per sequence in that figure (windows are binned beyond it). */
export const MAX_POINTS_PER_SEQUENCE = 200;

/** Counts of a call column: viral, not viral, no call (null). */
export interface CallCounts {
  total: number;
  virus: number;
  others: number;
  none: number;
}

/** One point of the along-sequence figure: a window, or the max over a run of windows. */
export interface WindowPoint {
  start: number;
  end: number;
  /** per-window max score_virus (max over the bin); null when no window of the bin kept a frame */
  score: number | null;
  /** "virus" | "others" | "no frame" (a bin is viral when any of its windows is) */
  call: string;
  /** windows in this point (1 unless binned) */
  windows: number;
}

export interface TopSequence {
  /** 0-based row of the record in sequences.parquet */
  row: number;
  id: string;
  length: number;
  nWindows: number;
  nViralWindows: number;
  maxScore: number | null;
  call: string | null;
  points: WindowPoint[];
}

export interface RunData {
  dir: string;
  /** a short name: the directory's base name */
  name: string;
  run: Record<string, unknown>;
  sequences: CallCounts;
  windows: CallCounts;
  frames: CallCounts;
  /** counts per bin of [i/SCORE_BINS, (i+1)/SCORE_BINS), the last bin closed; split by call */
  frameHist: { virus: number[]; others: number[] };
  windowHist: { virus: number[]; others: number[] };
  top: TopSequence[];
}

/** The bin of a score in [0, 1] (values outside are clamped into the end bins). */
export function scoreBin(x: number, bins = SCORE_BINS): number {
  const b = Math.floor(x * bins);
  return b < 0 ? 0 : b >= bins ? bins - 1 : b;
}

const emptyCounts = (): CallCounts => ({ total: 0, virus: 0, others: 0, none: 0 });

/** Read `columns` of a Parquet file, one row group at a time. */
async function* rowGroups(path: string, columns: string[]): AsyncGenerator<Table> {
  let file: pq.ParquetFile;
  try {
    file = await pq.ParquetFile.fromFile(Bun.file(path));
  } catch (err) {
    throw new UserError(`cannot read ${path} as Parquet (${oneLine(err)}): rerun the run that wrote it`);
  }
  try {
    const schema = file.schema();
    try {
      for (const c of columns) {
        let at = -1;
        try {
          at = schema.indexOf(c);
        } catch {
          at = -1;
        }
        if (at < 0) throw new UserError(`${path} has no column ${c}: it was not written by virnuc predict`);
      }
    } finally {
      schema.free();
    }
    const n = file.metadata().numRowGroups();
    for (let g = 0; g < n; g++) {
      let t: Table;
      try {
        const w = await file.read({ rowGroups: [g], columns });
        t = tableFromIPC(w.intoIPCStream());
      } catch (err) {
        throw new UserError(`cannot read row group ${g} of ${path} (${oneLine(err)}): the file is damaged; rerun the run that wrote it`);
      }
      yield t;
    }
  } finally {
    file.free();
  }
}

/** A column as plain numbers (Int64 columns come back as BigInt64Array). */
function numbers(t: Table, name: string): ArrayLike<number> {
  const v = t.getChild(name)!;
  const a = v.toArray() as ArrayLike<number | bigint>;
  if (a instanceof BigInt64Array) {
    const out = new Float64Array(a.length);
    for (let i = 0; i < a.length; i++) out[i] = Number(a[i]);
    return out;
  }
  return a as ArrayLike<number>;
}

/**
 * A nullable Bool or any nullable column as codes per row: -1 null, else 0 / 1 (the Bool's value;
 * 1 for any valid non-Bool value). Reads the Arrow bitmaps directly (Vector.get per row is slow).
 */
function codes(t: Table, name: string, isBool: boolean): Int8Array {
  const v = t.getChild(name)!;
  const out = new Int8Array(v.length);
  let at = 0;
  for (const d of v.data) {
    const nb = d.nullCount > 0 ? d.nullBitmap : undefined;
    const vals = d.values as Uint8Array;
    for (let i = 0; i < d.length; i++) {
      const bit = d.offset + i;
      if (nb && !((nb[bit >> 3] >> (bit & 7)) & 1)) out[at + i] = -1;
      else out[at + i] = isBool ? (vals[bit >> 3] >> (bit & 7)) & 1 : 1;
    }
    at += d.length;
  }
  return out;
}

/** Check DIR and return its run.json. */
export function readRun(dir: string): Record<string, unknown> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`${dir} is not a directory: give a virnuc predict output directory`);
  const path = join(dir, "run.json");
  if (!existsSync(path)) {
    if (existsSync(join(dir, ".virnuc")))
      throw new UserError(`${dir} has no run.json: the run there has not finished, or is one --shard of a run (finish it with --resume, or gather the shards with virnuc merge, then report on that)`);
    throw new UserError(`${dir} has no run.json: it is not a virnuc predict output directory`);
  }
  let run: unknown;
  try {
    run = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new UserError(`${path} is not valid JSON (${oneLine(err)})`);
  }
  if (!run || typeof run !== "object" || Array.isArray(run)) throw new UserError(`${path} does not hold a JSON object`);
  return run as Record<string, unknown>;
}

/** Everything the report shows about DIR. */
export async function collectRun(dirArg: string, opts: { top?: number; maxPoints?: number } = {}): Promise<RunData> {
  const dir = resolve(dirArg);
  const run = readRun(dir);
  const file = (name: string) => {
    const p = join(dir, name);
    if (!existsSync(p))
      throw new UserError(`${dir} has no ${name}: the report needs the outputs of virnuc predict (not embed, nor an unmerged --shard run)`);
    return p;
  };
  const seqPath = file("sequences.parquet");
  const winPath = file("windows.parquet");
  const predPath = file("predictions.parquet");
  const topN = opts.top ?? TOP_SEQUENCES;
  const maxPoints = opts.maxPoints ?? MAX_POINTS_PER_SEQUENCE;

  // sequences: counts, and the top N by viral windows (then max score, then input order).
  const sequences = emptyCounts();
  type Cand = Omit<TopSequence, "points"> & { offset: number };
  const top: Cand[] = [];
  const better = (a: Cand, b: Cand) =>
    a.nViralWindows !== b.nViralWindows
      ? a.nViralWindows > b.nViralWindows
      : (a.maxScore ?? -1) !== (b.maxScore ?? -1)
        ? (a.maxScore ?? -1) > (b.maxScore ?? -1)
        : a.row < b.row;
  let row = 0;
  let windowOffset = 0;
  // The call column is not read: by the schema's rule it is null when max_score_virus is null,
  // else "virus" when a window is viral, else "others".
  for await (const t of rowGroups(seqPath, ["sequence_id", "length", "n_windows", "n_viral_windows", "max_score_virus"])) {
    const ids = t.getChild("sequence_id")!;
    const len = numbers(t, "length");
    const nw = numbers(t, "n_windows");
    const nv = numbers(t, "n_viral_windows");
    const ms = t.getChild("max_score_virus")!.toArray() as Float32Array;
    const msValid = codes(t, "max_score_virus", false);
    for (let i = 0, n = t.numRows; i < n; i++, row++) {
      const c = msValid[i] < 0 ? null : nv[i] > 0 ? "virus" : "others";
      sequences.total++;
      if (c === "virus") sequences.virus++;
      else if (c === null) sequences.none++;
      else sequences.others++;
      const cand: Cand = {
        row,
        id: "",
        length: len[i],
        nWindows: nw[i],
        nViralWindows: nv[i],
        maxScore: msValid[i] < 0 ? null : ms[i],
        call: c,
        offset: windowOffset,
      };
      windowOffset += nw[i];
      if (topN > 0 && nw[i] > 0 && (top.length < topN || better(cand, top[top.length - 1]))) {
        cand.id = String(ids.get(i));
        let k = top.length;
        top.push(cand);
        while (k > 0 && better(cand, top[k - 1])) {
          top[k] = top[k - 1];
          k--;
        }
        top[k] = cand;
        if (top.length > topN) top.pop();
      }
    }
  }

  // windows: counts, histogram of the per-window max, and the top sequences' windows.
  const windows = emptyCounts();
  const windowHist = { virus: new Array(SCORE_BINS).fill(0), others: new Array(SCORE_BINS).fill(0) };
  const byOffset = [...top].sort((a, b) => a.offset - b.offset);
  const raw = new Map<number, { start: number[]; end: number[]; score: (number | null)[]; call: string[] }>();
  for (const c of byOffset) raw.set(c.row, { start: [], end: [], score: [], call: [] });
  let w0 = 0;
  for await (const t of rowGroups(winPath, ["window_start", "window_end", "max_score_virus", "is_virus"])) {
    const n = t.numRows;
    const score = t.getChild("max_score_virus")!.toArray() as Float32Array;
    const isV = codes(t, "is_virus", true);
    for (let i = 0; i < n; i++) {
      windows.total++;
      const v = isV[i];
      if (v < 0) windows.none++;
      else if (v) {
        windows.virus++;
        windowHist.virus[scoreBin(score[i])]++;
      } else {
        windows.others++;
        windowHist.others[scoreBin(score[i])]++;
      }
    }
    const start = numbers(t, "window_start");
    const end = numbers(t, "window_end");
    for (const c of byOffset) {
      const lo = Math.max(c.offset, w0);
      const hi = Math.min(c.offset + c.nWindows, w0 + n);
      const r = raw.get(c.row)!;
      for (let j = lo; j < hi; j++) {
        const i = j - w0;
        const v = isV[i];
        r.start.push(start[i]);
        r.end.push(end[i]);
        r.score.push(v < 0 ? null : score[i]);
        r.call.push(v < 0 ? "no frame" : v ? "virus" : "others");
      }
    }
    w0 += n;
  }
  if (w0 !== windowOffset)
    throw new UserError(`${winPath} has ${w0} windows but ${seqPath} counts ${windowOffset}: the files come from different runs; rerun`);

  // predictions: counts and the score_virus histogram, split by the frame's prediction.
  const frames = emptyCounts();
  const frameHist = { virus: new Array(SCORE_BINS).fill(0), others: new Array(SCORE_BINS).fill(0) };
  for await (const t of rowGroups(predPath, ["score_others", "score_virus"])) {
    const so = t.getChild("score_others")!.toArray() as Float32Array;
    const sv = t.getChild("score_virus")!.toArray() as Float32Array;
    for (let i = 0, n = t.numRows; i < n; i++) {
      frames.total++;
      // schema rule: "virus" when score_virus > score_others
      if (sv[i] > so[i]) {
        frames.virus++;
        frameHist.virus[scoreBin(sv[i])]++;
      } else {
        frames.others++;
        frameHist.others[scoreBin(sv[i])]++;
      }
    }
  }

  return {
    dir,
    name: basename(dir),
    run,
    sequences,
    windows,
    frames,
    frameHist,
    windowHist,
    top: top.map(({ offset: _o, ...c }) => {
      const r = raw.get(c.row)!;
      return { ...c, points: binWindows(r.start, r.end, r.score, r.call, maxPoints) };
    }),
  };
}

/**
 * A sequence's windows as at most `maxPoints` points: unchanged when few enough, else runs of
 * consecutive windows merged (max score; viral when any window is, else others when any has a frame).
 */
export function binWindows(start: number[], end: number[], score: (number | null)[], call: string[], maxPoints: number): WindowPoint[] {
  const n = start.length;
  const per = Math.max(1, Math.ceil(n / Math.max(1, maxPoints)));
  const out: WindowPoint[] = [];
  for (let i = 0; i < n; i += per) {
    const j = Math.min(n, i + per);
    let s: number | null = null;
    let c = "no frame";
    for (let k = i; k < j; k++) {
      if (score[k] !== null && (s === null || score[k]! > s)) s = score[k];
      if (call[k] === "virus") c = "virus";
      else if (call[k] === "others" && c === "no frame") c = "others";
    }
    out.push({ start: start[i], end: end[j - 1], score: s, call: c, windows: j - i });
  }
  return out;
}
