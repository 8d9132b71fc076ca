// The calling rule: one owner, exact VirNucPro semantics.
import { describe, expect, test } from "bun:test";
import { frameCalls, frameIsVirus, sequenceCalls, windowCalls, windowIsVirus } from "./calls.ts";

describe("calling rule", () => {
  test("frame: virus only when P(virus) > P(others); a tie is others (argmax, first index)", () => {
    expect(frameIsVirus(0.4, 0.6)).toBe(true);
    expect(frameIsVirus(0.5, 0.5)).toBe(false);
    expect(frameIsVirus(0.6, 0.4)).toBe(false);
  });

  test("window: max(score_virus) >= max(score_others), a tie is virus", () => {
    expect(windowIsVirus(0.5, 0.5)).toBe(true);
    expect(windowIsVirus(0.9, 0.2)).toBe(false);
  });

  test("frames, windows and records from a part's probabilities", () => {
    // frames: w0 {0.3/0.7, 0.9/0.1}, w1 {}, w2 {0.6/0.4}, w3 {0.5/0.5}
    const probs = new Float32Array([0.3, 0.7, 0.9, 0.1, 0.6, 0.4, 0.5, 0.5]);
    const f = frameCalls(probs);
    expect([...f.isVirus]).toEqual([1, 0, 0, 0]);
    expect([...f.scoreOthers]).toEqual([0.3, 0.9, 0.6, 0.5].map(Math.fround));
    const w = windowCalls(4, new Int32Array([0, 0, 2, 3]), f);
    expect([...w.nFrames]).toEqual([2, 0, 1, 1]);
    // w0: max others 0.9 > max virus 0.7 -> others, though one frame is viral
    expect([...w.isVirus]).toEqual([0, -1, 0, 1]);
    expect(Number.isNaN(w.maxVirus[1])).toBe(true);
    // records: r0 = w0, w1; r1 = w2, w3; r2 has a window without frames only
    const s = sequenceCalls(3, new Int32Array([0, 0, 1, 1]), w);
    expect([...s.nWindows]).toEqual([2, 2, 0]);
    expect([...s.nViralWindows]).toEqual([0, 1, 0]);
    expect([...s.call]).toEqual([0, 1, -1]);
    expect(s.maxVirus[1]).toBe(0.5);
    expect(Number.isNaN(s.maxVirus[2])).toBe(true);
  });
});
