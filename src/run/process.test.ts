// processParts in this process on the CPU backend with tiny random models.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { processParts, type PartTelemetry } from "./process.ts";
import { loadModels, resolveModels, type LoadedModels } from "./models.ts";
import { PartStore, type PartEntry, type RunState } from "./store.ts";
import { StopControl, RunStopped } from "./stop.ts";
import type { PartInput } from "./chain.ts";
import type { PartPlan } from "./plan.ts";
import { syntheticReads } from "../../bench/workload.ts";
import { tinyModels } from "../../test/helpers.ts";

let models: LoadedModels;
const root = mkdtempSync(join(tmpdir(), "virnuc-process-"));
beforeAll(async () => {
  const m = tinyModels();
  const resolved = await resolveModels({ ...m, chunkSize: 300, needClassifier: true });
  models = loadModels(resolved, { backend: "cpu", device: 0 }, "fp32", { threads: 1 });
}, 60_000);
afterAll(() => {
  models?.close();
  rmSync(root, { recursive: true, force: true });
});

const enc = new TextEncoder();
function parts(n: number, perPart: number): PartInput[] {
  const reads = [...syntheticReads(n * perPart, 150, 3)];
  return Array.from({ length: n }, (_, k) => ({
    index: k,
    records: reads.slice(k * perPart, (k + 1) * perPart).map((r, i) => ({ id: r.id, seq: enc.encode(r.seq), file: "x.fa", line: 1, offset: 0, index: k * perPart + i })),
  }));
}

async function* feed(ps: PartInput[], after?: (k: number) => void) {
  for (const p of ps) {
    yield p;
    after?.(p.index);
  }
}

function storeIn(name: string): { plan: PartPlan; store: PartStore } {
  const dir = join(root, name);
  const store = new PartStore(dir);
  const state: RunState = { version: 1, command: "predict", inputs: [], chunkSize: 300, windowReads: 10, precision: "fp32", saveEmbeddings: false, embeddingsDtype: "float32", models: {} };
  store.open(state, { resume: false, force: false });
  return { plan: { dir, chunkSize: 300, classify: true, keepEmbeddings: false, embeddingsDtype: "float32" }, store };
}

describe("processParts", () => {
  test("every part is written and reported once, in order, with its telemetry", async () => {
    const { plan, store } = storeIn("all");
    const done: [PartEntry, PartTelemetry][] = [];
    await processParts(plan, models, feed(parts(3, 10)), { done: (e, t) => done.push([e, t]), warn: () => {} });
    expect(done.map(([e]) => e.part)).toEqual([0, 1, 2]);
    expect(store.listEntries()).toEqual([0, 1, 2]);
    for (const [e, t] of done) {
      expect(store.validPart(e.part)).toEqual(e);
      expect(e.records).toBe(10);
      expect(t.reads).toBe(10);
      expect(t.esm_tokens).toBeGreaterThan(0);
    }
  }, 60_000);

  test("a stop ends the loop with RunStopped; finished parts stay, nothing after the stop is written", async () => {
    const { plan, store } = storeIn("stopped");
    const control = new StopControl();
    let err: unknown = null;
    try {
      await processParts(plan, models, feed(parts(4, 10), (k) => k === 1 && control.stop("SIGINT")), { done: () => {}, warn: () => {} }, control);
    } catch (x) {
      err = x;
    }
    expect(err).toBeInstanceOf(RunStopped);
    expect((err as RunStopped).exitCode).toBe(130);
    const written = store.listEntries();
    expect(written.length).toBeLessThan(4);
    for (const k of written) expect(store.validPart(k)).not.toBeNull();
  }, 60_000);
});
