import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { writeParquet, readParquet } from "../output/parquet.ts";
import { sampleRun } from "../output/testdata.ts";
import { predictionsSchema, sequencesSchema } from "../output/schema.ts";
import type { Schema } from "apache-arrow";
import { cohortCommand, parseSamples } from "./command.ts";

const root = mkdtempSync(join(tmpdir(), "virnuc-cohort-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function fakeRun(name: string, records: number, seed: number, rowGroupSize?: number) {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const r = sampleRun(records, seed);
  await writeParquet(join(dir, "sequences.parquet"), r.sequences, sequencesSchema as Schema, { rowGroupSize });
  await writeParquet(join(dir, "predictions.parquet"), r.predictions, predictionsSchema as Schema, { rowGroupSize });
  return { dir, run: r };
}

describe("virnuc cohort", () => {
  test("gathers the samples in the given order with a sample column, a summary, and the same bytes every time", async () => {
    const a = await fakeRun("alpha", 37, 1, 10); // several row groups
    const b = await fakeRun("beta", 12, 2);
    const out1 = join(root, "c1");
    const out2 = join(root, "c2");
    await cohortCommand([], { output: out1, sample: [`s2=${b.dir}`, `s1=${a.dir}`] });
    await cohortCommand([], { output: out2, sample: [`s2=${b.dir}`, `s1=${a.dir}`] });

    for (const [table, want] of [
      ["sequences", [b.run.sequences, a.run.sequences]],
      ["predictions", [b.run.predictions, a.run.predictions]],
    ] as const) {
      const bytes = readFileSync(join(out1, `${table}.parquet`));
      expect(bytes.equals(readFileSync(join(out2, `${table}.parquet`)))).toBe(true);
      const t = readParquet(bytes);
      expect(t.schema.fields[0].name).toBe("sample");
      expect(t.schema.fields.slice(1).map((f) => f.name)).toEqual(want[0].schema.fields.map((f) => f.name));
      expect(t.numRows).toBe(want[0].numRows + want[1].numRows);
      const samples = t.getChild("sample")!.toArray() as string[];
      expect(samples.slice(0, want[0].numRows).every((s) => s === "s2")).toBe(true);
      expect(samples.slice(want[0].numRows).every((s) => s === "s1")).toBe(true);
      // Every other column is the runs' rows, in order.
      for (const f of want[0].schema.fields) {
        // Iteration (not toArray) gives nulls as null.
        const got = [...t.getChild(f.name)!];
        const exp = [...want[0].getChild(f.name)!, ...want[1].getChild(f.name)!];
        expect(got).toEqual(exp);
      }
    }

    const expectCounts = (s: typeof a.run.sequences) => {
      let viral = 0;
      let windows = 0;
      for (let i = 0; i < s.numRows; i++) {
        if (s.getChild("call")!.get(i) === "virus") viral++;
        windows += s.getChild("n_viral_windows")!.get(i) as number;
      }
      return [s.numRows, viral, windows];
    };
    const summary = readFileSync(join(out1, "cohort_summary.tsv"), "utf8");
    const ca = expectCounts(a.run.sequences);
    const cb = expectCounts(b.run.sequences);
    expect(ca[1]).toBeGreaterThan(0);
    expect(summary).toBe(`sample\treads\tviral_sequences\tviral_windows\ns2\t${cb.join("\t")}\ns1\t${ca.join("\t")}\n`);
  }, 30_000);

  test("plain directories are named by their last component", () => {
    expect(parseSamples(["/x/y/S1", "rel/S2/"], undefined)).toEqual([
      { name: "S1", dir: "/x/y/S1" },
      { name: "S2", dir: "rel/S2/" },
    ]);
  });

  test("bad samples are one clear error", async () => {
    expect(() => parseSamples([], "noequals")).toThrow(/expected NAME=DIR/);
    expect(() => parseSamples([], ["a=/x", "a=/y"])).toThrow(/'a' is given twice/);
    expect(() => parseSamples([], ["../x=/y"])).toThrow(/sample name/);
    expect(() => parseSamples([], undefined)).toThrow(/give the samples/);
    const empty = join(root, "empty");
    mkdirSync(empty, { recursive: true });
    await expect(cohortCommand([], { output: join(root, "c3"), sample: `e=${empty}` })).rejects.toThrow(/sequences\.parquet is missing/);
    writeFileSync(join(empty, "sequences.parquet"), "not parquet");
    writeFileSync(join(empty, "predictions.parquet"), "not parquet");
    await expect(cohortCommand([], { output: join(root, "c3"), sample: `e=${empty}` })).rejects.toThrow(/not a readable Parquet file/);
    await expect(cohortCommand([], { sample: `e=${empty}` })).rejects.toThrow(/-o DIR is required/);
  }, 30_000);
});
