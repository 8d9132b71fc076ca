// The part store: manifest entries with their own checksum, refusals, --force.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PartStore, type RunState } from "./store.ts";

const root = mkdtempSync(join(tmpdir(), "virnuc-store-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const state: RunState = { version: 1, command: "predict", inputs: [{ path: "/in.fa", bytes: 10 }], chunkSize: 300, windowReads: 40, precision: "fp32", saveEmbeddings: false, embeddingsDtype: "float32", models: {} };
const head = (part: number) => ({ part, firstRecord: part * 40, records: 40, windows: 40, frames: 100, inputHash: "ab" });
const files = [{ suffix: "predictions.arrow", data: new Uint8Array([1, 2, 3]) }];
const fresh = () => {
  const s = new PartStore(join(root, String(n++)));
  s.open(state, { resume: false, force: false });
  return s;
};

describe("PartStore", () => {
  test("a written part validates; a changed entry or file does not", () => {
    const s = fresh();
    const e = s.writePart(head(0), files);
    expect(e.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(s.validPart(0)).toEqual(e);
    const path = join(s.partsDir, "part-000000.json");
    const entry = JSON.parse(readFileSync(path, "utf8"));
    writeFileSync(path, JSON.stringify({ ...entry, frames: 99 }));
    expect(s.validPart(0)).toBeNull();
    writeFileSync(path, JSON.stringify(entry));
    expect(s.validPart(0)).not.toBeNull();
    writeFileSync(join(s.partsDir, "part-000000.predictions.arrow"), new Uint8Array([1, 2, 4]));
    expect(s.validPart(0)).toBeNull();
    writeFileSync(path, "{ not json");
    expect(s.validPart(0)).toBeNull();
  });

  test("an earlier run needs --resume or --force; --force removes its final outputs first", () => {
    const s = fresh();
    s.writePart(head(0), files);
    writeFileSync(join(s.dir, "prediction_results.txt"), "old\n");
    writeFileSync(join(s.dir, "run.json"), "{}\n");
    expect(() => s.open(state, { resume: false, force: false })).toThrow(/holds an earlier run: add --resume to continue it, or --force/);
    s.open(state, { resume: false, force: true });
    expect(existsSync(join(s.dir, "prediction_results.txt"))).toBe(false);
    expect(existsSync(join(s.dir, "run.json"))).toBe(false);
    expect(s.listEntries()).toEqual([]);
  });

  test("final outputs alone (no parts) also need --force", () => {
    const s = fresh();
    writeFileSync(join(s.dir, "predictions.parquet"), "x");
    expect(() => s.open(state, { resume: false, force: false })).toThrow(/holds an earlier run/);
  });

  test("--resume keeps parts and refuses a changed run", () => {
    const s = fresh();
    s.writePart(head(0), files);
    s.open(state, { resume: true, force: false });
    expect(s.listEntries()).toEqual([0]);
    expect(() => s.open({ ...state, chunkSize: 500 }, { resume: true, force: false })).toThrow(/--resume refused: --chunk-size changed \(300 -> 500\)/);
  });

  test("the test-only fault seam fails a write as the file system would, in one line naming the file", () => {
    const s = fresh();
    process.env.VIRNUC_TEST_FAIL_WRITE = "ENOSPC:part-000001";
    try {
      s.writePart(head(0), files);
      expect(() => s.writePart(head(1), files)).toThrow(/^cannot write .*part-000001\.predictions\.arrow: no space left on the device \(ENOSPC.*--resume/);
    } finally {
      delete process.env.VIRNUC_TEST_FAIL_WRITE;
    }
    expect(s.listEntries()).toEqual([0]);
  });
});
