/**
 * VirNucPro's own result files, byte for byte:
 *
 * - prediction_results.txt: `Sequence_ID\tPrediction\tscore1\tscore2`, one row per frame in
 *   pipeline order, scores as `str(np.float32)`.
 * - prediction_results_highestscore.csv (tab-separated): `Modified_ID\tIs_Virus`. The original
 *   builds it with pandas: read the txt back, `Modified_ID = Sequence_ID.str[:-2]`,
 *   `groupby("Modified_ID").apply(max(score2) >= max(score1))`, `to_csv(sep="\t", index=False)`.
 *   groupby sorts its keys, so rows come in code-point order of the window id (`x_chunk_10`
 *   before `x_chunk_2`), and frames of windows with the same id (duplicate record ids) are
 *   pooled into one row. Windows without any kept frame do not appear.
 *
 * The calls come from classify/calls.ts: each frame's Prediction arrives with its scores, and a
 * window's Is_Virus is that module's window rule applied to the pooled maxima. Comparing the
 * float32 scores gives the same call as pandas comparing the re-read decimals: the shortest
 * round-trip decimals of float32 values parse to doubles in the same order.
 *
 * The window table is bounded in memory: past `spillWindows` windows it is sorted and spilled to
 * a run file in the output directory, and close() merges the runs.
 */
import { closeSync, openSync, readSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { AtomicFile, tempPathFor, writeError } from "./atomic.ts";
import { formatFloat32 } from "./float32.ts";
import { windowIsVirus } from "../classify/calls.ts";

export { formatFloat32 } from "./float32.ts";

export const PREDICTIONS_TXT = "prediction_results.txt";
export const HIGHESTSCORE_CSV = "prediction_results_highestscore.csv";

export interface FrameScore {
  frameId: string;
  scoreOthers: number; // score1 = P(others)
  scoreVirus: number; // score2 = P(virus)
  isVirus: boolean; // the frame's call (classify/calls.ts)
}

export interface CompatWriterOptions {
  /** Windows held in memory before a sorted run is spilled to disk (default 1,000,000). */
  spillWindows?: number;
}

const FLUSH_CHARS = 1 << 20;

/** max() as pandas computes it: NaN is skipped, NaN when nothing was seen. */
function nanMax(m: number, v: number): number {
  return v === v && (m !== m || v > m) ? v : m;
}

/** Python str ordering (code points) for JS strings (UTF-16 code units). */
export function compareCodePoints(a: string, b: string): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      // Surrogates encode code points above U+FFFF: move them past U+E000..U+FFFF.
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const HIGH_UNITS = /[\ud800-\uffff]/;

/** A Modified_ID cell as pandas `to_csv(sep="\t")` writes it (QUOTE_MINIMAL). */
function csvCell(id: string): string {
  if (!/["\t\r\n]/.test(id)) return id;
  return '"' + id.replaceAll('"', '""') + '"';
}

/** Window maxima, sorted by id with equal ids pooled. */
interface WindowRun {
  ids: string[];
  maxOthers: Float64Array;
  maxVirus: Float64Array;
}

/** Streaming writer of the two VirNucPro text files into `dir`. */
export class CompatWriter {
  private readonly txt: AtomicFile;
  private pending = `Sequence_ID\tPrediction\tscore1\tscore2\n`;
  private readonly spillWindows: number;

  // The window being accumulated (its frames may span several addFrames calls).
  private curId: string | null = null;
  private curOthers = NaN;
  private curVirus = NaN;

  // Finished windows not yet spilled.
  private ids: string[] = [];
  private maxOthers: number[] = [];
  private maxVirus: number[] = [];
  private highUnits = false;

  private readonly runPaths: string[] = [];
  private closed = false;

  constructor(readonly dir: string, options: CompatWriterOptions = {}) {
    this.spillWindows = Math.max(1, options.spillWindows ?? 1_000_000);
    this.txt = new AtomicFile(join(dir, PREDICTIONS_TXT));
  }

  addFrames(rows: readonly FrameScore[]): void {
    for (const r of rows) this.addFrame(r.frameId, r.scoreOthers, r.scoreVirus, r.isVirus);
    this.flushIfLarge();
  }

  /** Column form of addFrames for the pipeline's typed arrays (isVirus: 1 virus, 0 others). */
  addFrameColumns(
    frameIds: readonly string[],
    scoreOthers: ArrayLike<number>,
    scoreVirus: ArrayLike<number>,
    isVirus: ArrayLike<number | boolean>,
  ): void {
    const n = frameIds.length;
    if (scoreOthers.length !== n || scoreVirus.length !== n || isVirus.length !== n) {
      throw new Error(`addFrameColumns: ${n} ids but ${scoreOthers.length}/${scoreVirus.length} scores and ${isVirus.length} calls`);
    }
    for (let i = 0; i < n; i++) this.addFrame(frameIds[i], scoreOthers[i], scoreVirus[i], !!isVirus[i]);
    this.flushIfLarge();
  }

  private addFrame(frameId: string, others: number, virus: number, isVirus: boolean): void {
    if (this.closed) throw new Error("CompatWriter: addFrames after close");
    const s1 = Math.fround(others);
    const s2 = Math.fround(virus);
    const label = isVirus ? "virus" : "others";
    this.pending += `${frameId}\t${label}\t${formatFloat32(s1)}\t${formatFloat32(s2)}\n`;
    const windowId = frameId.slice(0, -2);
    if (windowId !== this.curId) {
      this.finishWindow();
      this.curId = windowId;
      this.curOthers = NaN;
      this.curVirus = NaN;
    }
    this.curOthers = nanMax(this.curOthers, s1);
    this.curVirus = nanMax(this.curVirus, s2);
  }

  private flushIfLarge(): void {
    if (this.pending.length >= FLUSH_CHARS) {
      this.txt.write(this.pending);
      this.pending = "";
    }
  }

  private finishWindow(): void {
    if (this.curId === null) return;
    const id = this.curId;
    this.curId = null;
    this.ids.push(id);
    this.maxOthers.push(this.curOthers);
    this.maxVirus.push(this.curVirus);
    if (!this.highUnits && HIGH_UNITS.test(id)) this.highUnits = true;
    if (this.ids.length >= this.spillWindows) this.spill();
  }

  private compare(): (a: string, b: string) => number {
    return this.highUnits ? compareCodePoints : compareCodeUnits;
  }

  /** Sort the in-memory windows and pool equal ids. */
  private sortedRun(): WindowRun {
    const { ids, maxOthers, maxVirus } = this;
    const cmp = this.compare();
    const order = Array.from({ length: ids.length }, (_, i) => i);
    order.sort((a, b) => cmp(ids[a], ids[b]));
    const out: WindowRun = { ids: [], maxOthers: new Float64Array(ids.length), maxVirus: new Float64Array(ids.length) };
    let n = 0;
    for (const i of order) {
      if (n > 0 && out.ids[n - 1] === ids[i]) {
        out.maxOthers[n - 1] = nanMax(out.maxOthers[n - 1], maxOthers[i]);
        out.maxVirus[n - 1] = nanMax(out.maxVirus[n - 1], maxVirus[i]);
      } else {
        out.ids.push(ids[i]);
        out.maxOthers[n] = maxOthers[i];
        out.maxVirus[n] = maxVirus[i];
        n++;
      }
    }
    this.ids = [];
    this.maxOthers = [];
    this.maxVirus = [];
    return { ids: out.ids, maxOthers: out.maxOthers.subarray(0, n), maxVirus: out.maxVirus.subarray(0, n) };
  }

  /** Write a sorted run: per window u32 id length, UTF-8 id, f64 max score1, f64 max score2. */
  private spill(): void {
    const run = this.sortedRun();
    // A temporary name, so that removeStaleTemps() also clears runs left by a crash.
    const path = tempPathFor(join(this.dir, HIGHESTSCORE_CSV)) + ".run";
    let fd: number;
    try {
      fd = openSync(path, "wx", 0o644);
    } catch (err) {
      throw writeError(path, err);
    }
    this.runPaths.push(path);
    try {
      let chunk = Buffer.allocUnsafe(1 << 20);
      let p = 0;
      const flush = () => {
        let off = 0;
        while (off < p) off += writeSync(fd, chunk, off, p - off);
        p = 0;
      };
      for (let i = 0; i < run.ids.length; i++) {
        const n = Buffer.byteLength(run.ids[i], "utf8");
        if (p + 20 + n > chunk.length) {
          flush();
          if (20 + n > chunk.length) chunk = Buffer.allocUnsafe(20 + n);
        }
        chunk.writeUInt32LE(n, p);
        chunk.write(run.ids[i], p + 4, "utf8");
        chunk.writeDoubleLE(run.maxOthers[i], p + 4 + n);
        chunk.writeDoubleLE(run.maxVirus[i], p + 12 + n);
        p += 20 + n;
      }
      flush();
    } catch (err) {
      throw writeError(path, err);
    } finally {
      closeSync(fd);
    }
  }

  /** Write the remaining rows and the per-window file, then publish both. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.finishWindow();
    if (this.pending.length > 0) this.txt.write(this.pending);
    this.pending = "";
    const csv = new AtomicFile(join(this.dir, HIGHESTSCORE_CSV));
    try {
      csv.write("Modified_ID\tIs_Virus\n");
      const out = new LineBuffer(csv);
      const emit = (id: string, m1: number, m2: number) => out.add(`${csvCell(id)}\t${windowIsVirus(m1, m2) ? "True" : "False"}\n`);
      if (this.runPaths.length === 0) {
        const run = this.sortedRun();
        for (let i = 0; i < run.ids.length; i++) emit(run.ids[i], run.maxOthers[i], run.maxVirus[i]);
      } else {
        if (this.ids.length > 0) this.spill();
        mergeRuns(this.runPaths, this.compare(), emit);
      }
      out.flush();
      this.txt.commit();
      csv.commit();
    } catch (err) {
      csv.abort();
      this.txt.abort();
      throw err;
    } finally {
      this.removeRuns();
    }
  }

  /** Give up: remove temporary files, leave any existing outputs untouched. */
  abort(): void {
    this.closed = true;
    this.txt.abort();
    this.removeRuns();
  }

  private removeRuns(): void {
    for (const p of this.runPaths.splice(0)) {
      try {
        unlinkSync(p);
      } catch {
        // already gone
      }
    }
  }
}

/** Batches small string writes into ~1 MB writes. */
class LineBuffer {
  private s = "";
  constructor(private readonly file: AtomicFile) {}
  add(line: string): void {
    this.s += line;
    if (this.s.length >= FLUSH_CHARS) this.flush();
  }
  flush(): void {
    if (this.s.length > 0) this.file.write(this.s);
    this.s = "";
  }
}

/** Sequential reader of one spilled run. */
class RunReader {
  private readonly fd: number;
  private buf = Buffer.allocUnsafe(1 << 20);
  private pos = 0;
  private end = 0;
  private eof = false;
  id = "";
  maxOthers = NaN;
  maxVirus = NaN;
  done = false;

  constructor(path: string) {
    this.fd = openSync(path, "r");
    this.next();
  }

  private ensure(n: number): boolean {
    while (this.end - this.pos < n && !this.eof) {
      if (this.pos > 0) {
        this.buf.copy(this.buf, 0, this.pos, this.end);
        this.end -= this.pos;
        this.pos = 0;
      }
      if (this.buf.length < n) {
        const bigger = Buffer.allocUnsafe(Math.max(n, this.buf.length * 2));
        this.buf.copy(bigger, 0, 0, this.end);
        this.buf = bigger;
      }
      const got = readSync(this.fd, this.buf, this.end, this.buf.length - this.end, null);
      if (got === 0) this.eof = true;
      this.end += got;
    }
    return this.end - this.pos >= n;
  }

  next(): void {
    if (!this.ensure(4)) {
      this.done = true;
      closeSync(this.fd);
      return;
    }
    const len = this.buf.readUInt32LE(this.pos);
    if (!this.ensure(20 + len)) throw new Error("truncated window run file");
    this.id = this.buf.toString("utf8", this.pos + 4, this.pos + 4 + len);
    this.maxOthers = this.buf.readDoubleLE(this.pos + 4 + len);
    this.maxVirus = this.buf.readDoubleLE(this.pos + 12 + len);
    this.pos += 20 + len;
  }
}

/** k-way merge of sorted runs, pooling equal ids across runs. */
function mergeRuns(paths: string[], cmp: (a: string, b: string) => number, emit: (id: string, m1: number, m2: number) => void): void {
  const readers = paths.map((p) => new RunReader(p));
  for (;;) {
    let min: RunReader | null = null;
    for (const r of readers) if (!r.done && (min === null || cmp(r.id, min.id) < 0)) min = r;
    if (min === null) return;
    const id = min.id;
    let m1 = NaN;
    let m2 = NaN;
    for (const r of readers) {
      if (!r.done && r.id === id) {
        m1 = nanMax(m1, r.maxOthers);
        m2 = nanMax(m2, r.maxVirus);
        r.next();
      }
    }
    emit(id, m1, m2);
  }
}
