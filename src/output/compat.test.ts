import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { frameIsVirus } from "../classify/calls.ts";
import { CompatWriter, HIGHESTSCORE_CSV, PREDICTIONS_TXT, compareCodePoints, type FrameScore } from "./compat.ts";

const REF = "test/fixtures/reference/virnucpro/reference_output";

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "virnuc-compat-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function read(dir: string, name: string): string {
  return readFileSync(join(dir, name), "utf8");
}

async function write(rows: FrameScore[][], spillWindows?: number): Promise<{ txt: string; csv: string; dir: string }> {
  const dir = tempDir();
  const w = new CompatWriter(dir, { spillWindows });
  for (const r of rows) w.addFrames(r);
  await w.close();
  return { txt: read(dir, PREDICTIONS_TXT), csv: read(dir, HIGHESTSCORE_CSV), dir };
}

function frame(frameId: string, scoreOthers: number, scoreVirus: number): FrameScore {
  return { frameId, scoreOthers, scoreVirus, isVirus: frameIsVirus(Math.fround(scoreOthers), Math.fround(scoreVirus)) };
}

describe("CompatWriter", () => {
  test("reproduces VirNucPro's reference files byte for byte", async () => {
    const refTxt = readFileSync(join(REF, "prediction_results.txt"), "utf8");
    const refCsv = readFileSync(join(REF, "prediction_results_highestscore.csv"), "utf8");
    const rows = refTxt
      .trimEnd()
      .split("\n")
      .slice(1)
      .map((l) => {
        const [id, , s1, s2] = l.split("\t");
        return frame(id, Math.fround(Number(s1)), Math.fround(Number(s2)));
      });
    expect(rows.length).toBe(4);
    const whole = await write([rows]);
    expect(whole.txt).toBe(refTxt);
    expect(whole.csv).toBe(refCsv);
    // The same rows one per call: windows still grouped across calls.
    const split = await write(rows.map((r) => [r]));
    expect(split.txt).toBe(refTxt);
    expect(split.csv).toBe(refCsv);
  });

  test("labels and the per-window call follow VirNucPro's comparisons", async () => {
    const { txt, csv } = await write([
      [
        frame("a_chunk_1F1", 0.5, 0.5), // tie: argmax takes the first index -> others
        frame("a_chunk_1R1", 0.4, 0.2), // max(score2)=0.5 >= max(score1)=0.5
        frame("b_chunk_1F2", 0.6, 0.4), // max(score2)=0.45 < max(score1)=0.6
        frame("b_chunk_1R3", 0.55, 0.45),
        frame("c_chunk_1F1", 0.9, 0.1), // max(score2)=0.9 >= max(score1)=0.9 -> True
        frame("c_chunk_1F2", 0.1, 0.9),
      ],
    ]);
    expect(txt).toBe(
      "Sequence_ID\tPrediction\tscore1\tscore2\n" +
        "a_chunk_1F1\tothers\t0.5\t0.5\n" +
        "a_chunk_1R1\tothers\t0.4\t0.2\n" +
        "b_chunk_1F2\tothers\t0.6\t0.4\n" +
        "b_chunk_1R3\tothers\t0.55\t0.45\n" +
        "c_chunk_1F1\tothers\t0.9\t0.1\n" +
        "c_chunk_1F2\tvirus\t0.1\t0.9\n",
    );
    expect(csv).toBe("Modified_ID\tIs_Virus\na_chunk_1\tTrue\nb_chunk_1\tFalse\nc_chunk_1\tTrue\n");
  });

  test("windows are listed in pandas groupby order and duplicate ids are pooled", async () => {
    const rows = [
      frame("s_chunk_2F1", 0.9, 0.1),
      frame("s_chunk_10F1", 0.2, 0.8),
      frame("s_chunk_1F1", 0.9, 0.1),
      frame("B_chunk_1F1", 0.9, 0.1),
      // a second record named "s": its window 2 is pooled with the first one's
      frame("s_chunk_2R2", 0.05, 0.95), // alone the first would be False
    ];
    const { txt, csv } = await write([rows]);
    expect(txt.split("\n").length).toBe(7); // header + 5 rows + final newline
    expect(csv).toBe(
      "Modified_ID\tIs_Virus\n" + "B_chunk_1\tFalse\n" + "s_chunk_1\tFalse\n" + "s_chunk_10\tTrue\n" + "s_chunk_2\tTrue\n",
    );
  });

  test("spilling sorted runs gives the same files as holding everything", async () => {
    let seed = 17;
    const rnd = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const frames = ["F1", "F2", "F3", "R1", "R2", "R3"];
    const batches: FrameScore[][] = [];
    for (let b = 0; b < 40; b++) {
      const batch: FrameScore[] = [];
      for (let i = 0; i < 25; i++) {
        const rec = Math.floor(rnd() * 60); // repeated record ids on purpose
        const win = 1 + Math.floor(rnd() * 12);
        const nf = 1 + Math.floor(rnd() * 3);
        for (let f = 0; f < nf; f++) {
          const p = rnd();
          batch.push(frame(`rec${rec}_chunk_${win}${frames[f]}`, 1 - p, p));
        }
      }
      batches.push(batch);
    }
    const inMemory = await write(batches);
    const spilled = await write(batches, 7);
    expect(spilled.txt).toBe(inMemory.txt);
    expect(spilled.csv).toBe(inMemory.csv);
    const lines = inMemory.csv.trimEnd().split("\n").slice(1);
    const ids = lines.map((l) => l.split("\t")[0]);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort(compareCodePoints)).toEqual(ids);
    // No run files or temporaries are left behind.
    expect(readdirSync(spilled.dir).sort()).toEqual([PREDICTIONS_TXT, HIGHESTSCORE_CSV].sort());
  });

  test("non-ASCII ids sort by code point, ids with quotes are quoted as pandas does", async () => {
    const { csv } = await write([
      [frame("\u{1F600}_chunk_1F1", 0.1, 0.9), frame("\uFF21_chunk_1F1", 0.1, 0.9), frame('q"x_chunk_1F1', 0.9, 0.1)],
    ]);
    expect(csv).toBe("Modified_ID\tIs_Virus\n" + '"q""x_chunk_1"\tFalse\n' + "\uFF21_chunk_1\tTrue\n" + "\u{1F600}_chunk_1\tTrue\n");
  });

  test("column input and an empty run", async () => {
    const dir = tempDir();
    const w = new CompatWriter(dir);
    w.addFrameColumns(["x_chunk_1F1", "x_chunk_1R1"], new Float32Array([0.25, 0.125]), new Float32Array([0.75, 0.875]), [1, 1]);
    await w.close();
    expect(read(dir, HIGHESTSCORE_CSV)).toBe("Modified_ID\tIs_Virus\nx_chunk_1\tTrue\n");
    expect(read(dir, PREDICTIONS_TXT)).toBe(
      "Sequence_ID\tPrediction\tscore1\tscore2\nx_chunk_1F1\tvirus\t0.25\t0.75\nx_chunk_1R1\tvirus\t0.125\t0.875\n",
    );
    const empty = await write([]);
    expect(empty.txt).toBe("Sequence_ID\tPrediction\tscore1\tscore2\n");
    expect(empty.csv).toBe("Modified_ID\tIs_Virus\n");
  });

  test("labels are the calls given, not recomputed here", async () => {
    const dir = tempDir();
    const w = new CompatWriter(dir);
    // a call that disagrees with the scores shows that the writer only formats what it is given
    w.addFrameColumns(["x_chunk_1F1"], new Float32Array([0.75]), new Float32Array([0.25]), [1]);
    await w.close();
    expect(read(dir, PREDICTIONS_TXT).split("\n")[1]).toBe("x_chunk_1F1\tvirus\t0.75\t0.25");
    expect(() => new CompatWriter(tempDir()).addFrameColumns(["a"], [0.5], [0.5], [])).toThrow(/1 ids but 1\/1 scores and 0 calls/);
  });

  test("abort leaves no files", () => {
    const dir = tempDir();
    const w = new CompatWriter(dir, { spillWindows: 1 });
    w.addFrames([frame("a_chunk_1F1", 0.1, 0.9), frame("b_chunk_1F1", 0.1, 0.9), frame("c_chunk_1F1", 0.1, 0.9)]);
    w.abort();
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("compareCodePoints", () => {
  test("orders like Python str comparison", () => {
    expect(compareCodePoints("a", "b")).toBeLessThan(0);
    expect(compareCodePoints("ab", "a")).toBeGreaterThan(0);
    expect(compareCodePoints("x", "x")).toBe(0);
    // U+1F600 (a surrogate pair in UTF-16) sorts after U+FF21, unlike JS's default order
    expect("\u{1F600}" < "\uFF21").toBe(true);
    expect(compareCodePoints("\u{1F600}", "\uFF21")).toBeGreaterThan(0);
  });
});
