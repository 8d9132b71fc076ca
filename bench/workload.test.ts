import { describe, expect, test, afterAll } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { syntheticReads, writeSyntheticFasta } from "./workload.ts";
import { readFasta } from "../src/fasta/reader.ts";
import { windowsOf } from "../src/frames/windows.ts";
import { framesOf } from "../src/frames/sixframe.ts";

const dir = mkdtempSync(join(tmpdir(), "virnuc-workload-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const enc = new TextEncoder();

function keptPerRead(n: number, length: number, seed: number): number {
  let kept = 0;
  let i = 0;
  for (const r of syntheticReads(n, length, seed))
    for (const w of windowsOf({ id: r.id, seq: enc.encode(r.seq), index: i++ }, length <= 300 ? 300 : 500)) kept += framesOf(w).length;
  return kept / n;
}

describe("synthetic workload", () => {
  test("seeded: the same seed gives the same reads, another seed others", () => {
    const a = [...syntheticReads(200, 150, 5)];
    const b = [...syntheticReads(200, 150, 5)];
    const c = [...syntheticReads(200, 150, 6)];
    expect(a).toEqual(b);
    expect(a.map((r) => r.seq)).not.toEqual(c.map((r) => r.seq));
  });

  test("reads have the asked length, unique ids, upper-case ACGT with rare N", () => {
    const reads = [...syntheticReads(2000, 150, 1)];
    expect(new Set(reads.map((r) => r.id)).size).toBe(2000);
    for (const r of reads) {
      expect(r.seq.length).toBe(150);
      expect(r.seq).toMatch(/^[ACGTN]+$/);
    }
    const n = reads.reduce((s, r) => s + (r.seq.match(/N/g)?.length ?? 0), 0);
    expect(n / (2000 * 150)).toBeLessThan(0.002);
  });

  test("about 0.8 kept frames per 150 bp read (0.8 +- 0.1), fewer per read at 300/500 bp", () => {
    const k150 = keptPerRead(20_000, 150, 3);
    expect(k150).toBeGreaterThan(0.7);
    expect(k150).toBeLessThan(0.9);
    const k300 = keptPerRead(5_000, 300, 3);
    const k500 = keptPerRead(5_000, 500, 3);
    // Coding reads keep their frame at any length; random reads almost never do past 300 bp.
    expect(k300).toBeLessThan(k150);
    expect(k500).toBeLessThanOrEqual(k300);
    expect(k500).toBeGreaterThan(0.15);
  });

  test("writeSyntheticFasta writes the same reads as syntheticReads; several lengths rotate", async () => {
    const p = join(dir, "w.fa");
    await writeSyntheticFasta(p, 300, 150, 9);
    const want = [...syntheticReads(300, 150, 9)];
    expect(readFileSync(p, "latin1")).toBe(want.map((r) => `>${r.id}\n${r.seq}\n`).join(""));
    const q = join(dir, "mixed.fa");
    await writeSyntheticFasta(q, 7, [150, 300, 500], 9);
    const lens: number[] = [];
    for await (const r of readFasta([q])) lens.push(r.seq.length);
    expect(lens).toEqual([150, 300, 500, 150, 300, 500, 150]);
  });
});
