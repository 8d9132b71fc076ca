import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../util/errors.ts";
import { SCORE_BINS, binWindows, collectRun, scoreBin, type RunData } from "./data.ts";
import { type SampleTables, writeSampleDir } from "./testdata.ts";

// Parquet writing, page rendering and subprocesses are slow on a loaded 2-core machine.
setDefaultTimeout(60_000);

let root: string;
let tables: SampleTables;
let whole: RunData;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "virnuc-report-data-"));
  tables = await writeSampleDir(join(root, "a"), { records: 200, seed: 3, longEvery: 40, longWindows: 700 });
  // the same tables cut into row groups of 300 rows: group boundaries fall inside sequences
  await writeSampleDir(join(root, "b"), { records: 200, seed: 3, longEvery: 40, longWindows: 700, rowGroupSize: 300 });
  whole = await collectRun(join(root, "a"));
}, 60_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("scoreBin", () => {
  test("maps [0, 1] onto the bins, 1 in the last, out-of-range values clamped", () => {
    expect(scoreBin(0)).toBe(0);
    expect(scoreBin(0.5)).toBe(SCORE_BINS / 2);
    expect(scoreBin(0.0199, 50)).toBe(0);
    expect(scoreBin(0.02, 50)).toBe(1);
    expect(scoreBin(1)).toBe(SCORE_BINS - 1);
    expect(scoreBin(-0.1)).toBe(0);
    expect(scoreBin(1.5)).toBe(SCORE_BINS - 1);
  });
});

describe("binWindows", () => {
  test("keeps every window when there are few enough", () => {
    const p = binWindows([0, 300, 600], [300, 600, 900], [0.2, null, 0.9], ["others", "no frame", "virus"], 5);
    expect(p).toEqual([
      { start: 0, end: 300, score: 0.2, call: "others", windows: 1 },
      { start: 300, end: 600, score: null, call: "no frame", windows: 1 },
      { start: 600, end: 900, score: 0.9, call: "virus", windows: 1 },
    ]);
  });
  test("merges runs of windows: max score, viral if any window is, others over no frame", () => {
    const n = 10;
    const start = [...Array(n).keys()].map((i) => i * 100);
    const end = start.map((s) => s + 100);
    const score = [0.1, null, 0.3, 0.2, null, null, 0.7, 0.1, null, 0.4];
    const call = score.map((s) => (s === null ? "no frame" : s >= 0.5 ? "virus" : "others"));
    const p = binWindows(start, end, score, call, 3); // 4 windows a point
    expect(p.length).toBe(3);
    expect(p[0]).toEqual({ start: 0, end: 400, score: 0.3, call: "others", windows: 4 });
    expect(p[1]).toEqual({ start: 400, end: 800, score: 0.7, call: "virus", windows: 4 });
    expect(p[2]).toEqual({ start: 800, end: 1000, score: 0.4, call: "others", windows: 2 });
    expect(binWindows([0, 1], [1, 2], [null, null], ["no frame", "no frame"], 1)[0]).toEqual({ start: 0, end: 2, score: null, call: "no frame", windows: 2 });
  });
});

describe("collectRun", () => {
  test("counts sequences, windows and frames by call as the tables say", () => {
    const s = tables.seq;
    const seqVirus = s.nViral.filter((v) => v > 0).length;
    const seqNone = s.maxV.filter((v) => Number.isNaN(v)).length;
    expect(whole.sequences).toEqual({ total: s.id.length, virus: seqVirus, others: s.id.length - seqVirus - seqNone, none: seqNone });
    const w = tables.win;
    const winNone = w.nFrames.filter((n) => n === 0).length;
    const winVirus = w.nFrames.filter((n, i) => n > 0 && w.maxV[i] >= w.maxO[i]).length;
    expect(whole.windows).toEqual({ total: w.start.length, virus: winVirus, others: w.start.length - winVirus - winNone, none: winNone });
    const f = tables.frame;
    const frVirus = f.v.filter((v, i) => v > f.o[i]).length;
    expect(whole.frames).toEqual({ total: f.v.length, virus: frVirus, others: f.v.length - frVirus, none: 0 });
    expect(seqVirus).toBeGreaterThan(0);
    expect(winNone).toBeGreaterThan(0);
  });

  test("histograms hold every scored frame and window in its bin", () => {
    const f = tables.frame;
    const want = { virus: new Array(SCORE_BINS).fill(0), others: new Array(SCORE_BINS).fill(0) };
    f.v.forEach((v, i) => want[v > f.o[i] ? "virus" : "others"][Math.min(SCORE_BINS - 1, Math.floor(v * SCORE_BINS))]++);
    expect(whole.frameHist).toEqual(want);
    const w = tables.win;
    const wantW = { virus: new Array(SCORE_BINS).fill(0), others: new Array(SCORE_BINS).fill(0) };
    w.maxV.forEach((v, i) => {
      if (w.nFrames[i] > 0) wantW[v >= w.maxO[i] ? "virus" : "others"][Math.min(SCORE_BINS - 1, Math.floor(v * SCORE_BINS))]++;
    });
    expect(whole.windowHist).toEqual(wantW);
  });

  test("top sequences: most viral windows first, then max score; their windows in order, binned when long", () => {
    const s = tables.seq;
    const order = s.id
      .map((_, r) => r)
      .sort((a, b) => s.nViral[b] - s.nViral[a] || (Number.isNaN(s.maxV[b]) ? -1 : s.maxV[b]) - (Number.isNaN(s.maxV[a]) ? -1 : s.maxV[a]) || a - b)
      .slice(0, 10);
    expect(whole.top.map((t) => t.row)).toEqual(order);
    for (const t of whole.top) {
      expect(t.id).toBe(s.id[t.row]);
      expect(t.nViralWindows).toBe(s.nViral[t.row]);
      const rows = tables.win.seqRow.map((r, i) => (r === t.row ? i : -1)).filter((i) => i >= 0);
      expect(t.points.reduce((a, p) => a + p.windows, 0)).toBe(rows.length);
      expect(t.points.length).toBeLessThanOrEqual(200);
      expect(t.points[0].start).toBe(tables.win.start[rows[0]]);
      expect(t.points.at(-1)!.end).toBe(tables.win.end[rows.at(-1)!]);
      const best = Math.max(...rows.filter((i) => tables.win.nFrames[i] > 0).map((i) => tables.win.maxV[i]));
      expect(Math.max(...t.points.map((p) => p.score ?? -1))).toBeCloseTo(best, 6);
      expect(t.points.filter((p) => p.call === "virus").length).toBeGreaterThan(0);
    }
    // the long sequences (700 windows) are among the top and are binned
    expect(whole.top.some((t) => t.nWindows === 700 && t.points.length < 700)).toBe(true);
  });

  test("small row groups give the same result as one row group", async () => {
    const cut = await collectRun(join(root, "b"));
    expect({ ...cut, dir: "", name: "" }).toEqual({ ...whole, dir: "", name: "" });
  });

  test("bad directories are one clear error", async () => {
    const err = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (e) {
        expect(e).toBeInstanceOf(UserError);
        return (e as Error).message;
      }
      throw new Error("expected an error");
    };
    expect(await err(collectRun(join(root, "nope")))).toContain("is not a directory");
    const c = join(root, "c");
    await writeSampleDir(c, { records: 20, seed: 4 });
    unlinkSync(join(c, "run.json"));
    expect(await err(collectRun(c))).toContain("has no run.json");
    const d = join(root, "d");
    await writeSampleDir(d, { records: 20, seed: 4 });
    unlinkSync(join(d, "predictions.parquet"));
    expect(await err(collectRun(d))).toContain("has no predictions.parquet");
    const e = join(root, "e");
    await writeSampleDir(e, { records: 20, seed: 4 });
    writeFileSync(join(e, "windows.parquet"), "not parquet");
    expect(await err(collectRun(e))).toMatch(/windows\.parquet/);
    // windows of another run than the sequences
    const f = join(root, "f");
    await writeSampleDir(f, { records: 20, seed: 4 });
    await writeSampleDir(join(root, "g"), { records: 25, seed: 5 });
    writeFileSync(join(f, "windows.parquet"), await Bun.file(join(root, "g", "windows.parquet")).bytes());
    expect(await err(collectRun(f))).toContain("come from different runs");
    writeFileSync(join(f, "run.json"), "{not json");
    expect(await err(collectRun(f))).toContain("is not valid JSON");
  });
});
