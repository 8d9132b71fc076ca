// Options validated once into a run plan: ranges, usage errors (exit 2), capped threads.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { intOption, parseGpus, parseShard, planRun, LIMITS } from "./plan.ts";
import { UserError } from "../util/errors.ts";
import { REFERENCE } from "../../test/helpers.ts";

const input = join(REFERENCE, "virnucpro/test_with_orfs.fa");
const plan = (opts: Record<string, unknown>, cores = 8) => {
  const warnings: string[] = [];
  const p = planRun([input], { output: "/tmp/x", device: "cpu", ...opts }, "predict", (m) => warnings.push(m), cores);
  return { p, warnings };
};
const usage = (fn: () => unknown): UserError => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error("expected a usage error");
};

describe("planRun", () => {
  test("defaults", () => {
    const { p, warnings } = plan({});
    expect(p).toMatchObject({ command: "predict", dir: "/tmp/x", chunkSize: 500, windowReads: 20000, precision: "fp32", classify: true, keepEmbeddings: false, slots: [] });
    expect(p.threads).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  test("every number has a range; out of range is a usage error (exit 2) naming the option", () => {
    for (const [flag, key, bad] of [
      ["--chunk-size", "chunkSize", "0"],
      ["--chunk-size", "chunkSize", "2000000"],
      ["--window-reads", "windowReads", "-5"],
      ["--token-budget", "tokenBudget", "12"],
      ["--threads", "threads", "0"],
      ["--workers", "workers", "1.5"],
      ["--workers", "workers", "100000"],
      ["--chunk-size", "chunkSize", "abc"],
    ] as const) {
      const e = usage(() => plan({ [key]: bad }));
      expect(e.exitCode).toBe(2);
      expect(e.message).toStartWith(`${flag} ${bad}: expected a whole number from`);
    }
  });

  test("--threads beyond the cores is capped with a warning", () => {
    const { p, warnings } = plan({ threads: "100000" }, 4);
    expect(p.threads).toBe(4);
    expect(warnings).toEqual(["--threads 100000 is more than the 4 cores of this machine allow: using 4"]);
    const w = plan({ threads: "4", workers: "2" }, 4);
    expect(w.p.threads).toBe(2);
    expect(w.p.slots.map((s) => s.label)).toEqual(["cpu-worker-0", "cpu-worker-1"]);
    expect(w.p.slots[1].env).toEqual({ VIRNUC_WORKER: "cpu-worker-1" });
    expect(w.warnings[0]).toMatch(/for 2 workers: using 2/);
  });

  test("workers: one thread each by default; more workers than cores only warns", () => {
    const { p, warnings } = plan({ workers: "3" }, 2);
    expect(p.slots.length).toBe(3);
    expect(p.threads).toBe(1);
    expect(warnings[0]).toMatch(/--workers 3 is more than the 2 cores/);
  });

  test("choices and combinations", () => {
    expect(usage(() => plan({ precision: "fp64" })).message).toMatch(/--precision fp64/);
    expect(usage(() => plan({ precision: "fp8" })).message).toMatch(/fp8 needs the CUDA backend/);
    expect(usage(() => plan({ embeddingsDtype: "int8" })).message).toMatch(/--embeddings-dtype int8/);
    expect(usage(() => plan({ gpus: "0" })).message).toMatch(/--gpus needs the CUDA backend/);
    expect(usage(() => plan({ output: undefined })).message).toMatch(/-o DIR is required/);
    expect(plan({ saveEmbeddings: true }).p.keepEmbeddings).toBe(true);
  });
});

describe("option parsers", () => {
  test("intOption", () => {
    expect(intOption("42", "--x", [1, 100])).toBe(42);
    expect(intOption(7, "--x", [1, 100])).toBe(7);
    expect(() => intOption("1e3", "--x", [1, 10000])).toThrow(/--x 1e3/);
    expect(() => intOption("", "--x", LIMITS.threads)).toThrow(/--x /);
  });

  test("parseShard", () => {
    expect(parseShard(undefined)).toBeUndefined();
    expect(parseShard("1/4")).toEqual({ index: 1, count: 4 });
    expect(() => parseShard("4/4")).toThrow(/--shard 4\/4/);
    expect(() => parseShard("0/0")).toThrow(/--shard/);
  });

  test("parseGpus", () => {
    expect(parseGpus("0,2", 4)).toEqual([0, 2]);
    expect(() => parseGpus("0,0", 4)).toThrow(/listed twice/);
    expect(() => parseGpus("5", 4)).toThrow(/GPU 5 does not exist \(4 visible\)/);
    expect(() => parseGpus("a", 4)).toThrow(/'a' is not a GPU index/);
  });
});
