// --recheck-margin on the CPU backend: the near-boundary frames of a part are redone with another
// ESM-2 (here a second tiny random model standing in for fp16, VIRNUC_TEST_RECHECK_ESM at the CLI)
// and only those frames change; the CLI refuses it without fp8 and on resume with another margin.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Engine, type EncoderHandle } from "../engine/engine.ts";
import { PartEncoder } from "../engine/encode.ts";
import { PartClassifier } from "./classify.ts";
import { BoundaryRecheck, framesNearTheBoundary } from "./recheck.ts";
import { frameCalls, sequenceCalls, windowCalls } from "./calls.ts";
import { loadModels, resolveModels, type LoadedModels } from "../run/models.ts";
import { preparePart, type ClassifiedPart, type EncodedPart } from "../run/chain.ts";
import { writeRandomModel } from "../models/random.ts";
import { parseFileMetadata } from "../output/filemeta.ts";
import { tableFromIPC } from "apache-arrow";
import { syntheticReads } from "../../bench/workload.ts";
import { modelArgs, removeTempDirs, runCli, syntheticFasta, tempDir, tinyModels } from "../../test/helpers.ts";

setDefaultTimeout(120_000);

let models: LoadedModels;
let altEsm: string;
beforeAll(async () => {
  altEsm = join(tempDir("recheck-models"), "esm-b");
  writeRandomModel("tiny-esm", 11, altEsm);
  const resolved = await resolveModels({ ...tinyModels(), chunkSize: 300, needClassifier: true });
  process.env.VIRNUC_TEST_RECHECK_ESM = altEsm;
  try {
    models = loadModels(resolved, { backend: "cpu", device: 0 }, "fp32", { threads: 1, recheck: true });
  } finally {
    delete process.env.VIRNUC_TEST_RECHECK_ESM;
  }
});
afterAll(() => {
  models?.close();
  removeTempDirs();
});

const enc = new TextEncoder();
function prepared() {
  const records = [...syntheticReads(200, 300, 21)].map((r, i) => ({ id: r.id, seq: enc.encode(r.seq), file: "x.fa", line: 1, offset: 0, index: i }));
  return preparePart({ index: 0, records }, 300, models.tokenizers);
}

async function encodeWith(esm: EncoderHandle): Promise<EncodedPart> {
  const e = new PartEncoder(models.engine, {
    esm: { handle: esm, label: "ESM-2", source: "esm", budget: 4096 },
    dnabert: { handle: models.dnabert, label: "DNABERT-S", source: "dnabert", budget: 4096 },
  });
  try {
    return e.collect(await e.submit(prepared()));
  } finally {
    e.close();
  }
}

function classifier(): PartClassifier {
  return new PartClassifier(models.engine, { handle: models.classifier!, source: "classifier", encoderSources: { esm: "esm", dnabert: "dnabert" } });
}

/** Typed arrays as plain ones (NaN, for windows without frames, compares equal there). */
function plain(x: object): unknown {
  return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : plain(v)]));
}

function copyCalls(c: ClassifiedPart) {
  const f = c.calls!.frames;
  return { others: f.scoreOthers.slice(), virus: f.scoreVirus.slice(), esm: c.encoded.esm.slice() };
}

describe("framesNearTheBoundary", () => {
  test("a frame within 2m of a tie, and every frame of a window whose maxima are within 2m", () => {
    // frames 0,1 in window 0; 2,3 in window 1; 4 in window 2
    const probs = new Float32Array([0.52, 0.48, 0.95, 0.05, 0.1, 0.9, 0.07, 0.93, 0.3, 0.7]);
    const frames = frameCalls(probs);
    const frameWindow = new Int32Array([0, 0, 1, 1, 2]);
    const windows = windowCalls(3, frameWindow, frames);
    const sequences = sequenceCalls(1, new Int32Array([0, 0, 0]), windows);
    const calls = { frames, windows, sequences };
    // window 0: frame 0 near a tie (0.52/0.48); its maxima 0.95 (others) vs 0.48 (virus) are far apart
    expect(framesNearTheBoundary(calls, frameWindow, 0.05)).toEqual([0]);
    // window 1: maxima 0.1 (others) vs 0.93 (virus); window 2: 0.3 vs 0.7, |d| = 0.4 -> needs m > 0.2
    expect(framesNearTheBoundary(calls, frameWindow, 0.21)).toEqual([0, 4]);
    expect(framesNearTheBoundary(calls, frameWindow, 0)).toEqual([]);
    expect(framesNearTheBoundary(calls, frameWindow, 0.5)).toEqual([0, 1, 2, 3, 4]);
    // a window decided by two frames far from 0.5: 0.9 virus in one, 0.88 others in the other
    const f2 = frameCalls(new Float32Array([0.1, 0.9, 0.88, 0.12]));
    const w2 = windowCalls(1, new Int32Array([0, 0]), f2);
    const c2 = { frames: f2, windows: w2, sequences: sequenceCalls(1, new Int32Array([0]), w2) };
    expect(framesNearTheBoundary(c2, new Int32Array([0, 0]), 0.02)).toEqual([0, 1]);
    expect(framesNearTheBoundary(c2, new Int32Array([0, 0]), 0.005)).toEqual([]);
  });
});

describe("BoundaryRecheck", () => {
  test("exactly the near-boundary frames get the recheck model's embeddings and scores; the calls follow", async () => {
    const a = await encodeWith(models.esm);
    const b = await encodeWith(models.esmRecheck!);
    const cls = classifier();
    const ca = cls.submit(a).result();
    const cb = cls.submit(b).result();
    const n = a.prepared.frameIds.length;
    expect(n).toBeGreaterThan(20);
    // a margin that takes some frames and leaves others
    const gaps = Array.from(ca.calls!.frames.scoreVirus, (v, i) => Math.abs(v - ca.calls!.frames.scoreOthers[i])).sort((x, y) => x - y);
    const margin = gaps[Math.floor(n / 4)] / 2 + 1e-6;
    const redo = framesNearTheBoundary(ca.calls!, a.prepared.frameWindow, margin);
    expect(redo.length).toBeGreaterThan(0);
    expect(redo.length).toBeLessThan(n);
    const before = copyCalls(ca);
    const r = new BoundaryRecheck(models.engine, { handle: models.esmRecheck!, budget: 4096, source: "esm-b", margin }, cls);
    const out = r.apply(ca);
    r.close();
    expect(out.frames).toBe(redo.length);
    const f = out.part.calls!.frames;
    const fb = cb.calls!.frames;
    const E = a.esmDim;
    const inRedo = new Set(redo);
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const [others, virus, esmRow] = inRedo.has(i)
        ? [fb.scoreOthers[i], fb.scoreVirus[i], b.esm.subarray(i * E, (i + 1) * E)]
        : [before.others[i], before.virus[i], before.esm.subarray(i * E, (i + 1) * E)];
      expect(f.scoreOthers[i]).toBe(others);
      expect(f.scoreVirus[i]).toBe(virus);
      expect(Array.from(out.part.encoded.esm.subarray(i * E, (i + 1) * E))).toEqual(Array.from(esmRow));
      expect(f.isVirus[i]).toBe(f.scoreVirus[i] > f.scoreOthers[i] ? 1 : 0);
      if (inRedo.has(i) && fb.scoreVirus[i] !== before.virus[i]) changed++;
    }
    expect(changed).toBeGreaterThan(0); // the two models differ: the test would see a missed patch
    // windows and records recomputed from the patched frames
    const w = windowCalls(a.prepared.windowIds.length, a.prepared.frameWindow, f);
    expect(plain(out.part.calls!.windows)).toEqual(plain(w));
    expect(plain(out.part.calls!.sequences)).toEqual(plain(sequenceCalls(a.prepared.records.ids.length, a.prepared.windowRecord, w)));
  });

  test("margin 0.5 redoes every frame: the part is the recheck model's; margin 0 changes nothing", async () => {
    const cls = classifier();
    const ca = cls.submit(await encodeWith(models.esm)).result();
    const before = copyCalls(ca);
    const off = new BoundaryRecheck(models.engine, { handle: models.esmRecheck!, budget: 4096, source: "esm-b", margin: 0 }, cls);
    const o0 = off.apply(ca);
    off.close();
    expect(o0.frames).toBe(0);
    expect(o0.part.calls!.frames.scoreVirus).toEqual(before.virus);
    const cb = cls.submit(await encodeWith(models.esmRecheck!)).result();
    const all = new BoundaryRecheck(models.engine, { handle: models.esmRecheck!, budget: 4096, source: "esm-b", margin: 0.5 }, cls);
    const o = all.apply(ca);
    all.close();
    expect(o.frames).toBe(ca.encoded.prepared.frameIds.length);
    expect(plain(o.part.calls!)).toEqual(plain(cb.calls!));
    expect(Array.from(o.part.encoded.esm)).toEqual(Array.from(cb.encoded.esm));
  });
});

describe("virnuc predict --recheck-margin", () => {
  test("refused without fp8, out of range, and for embed", () => {
    const d = tempDir("recheck-cli");
    const fa = join(d, "in.fa");
    syntheticFasta(fa, 5, 300, 3);
    for (const [args, msg] of [
      [["predict", fa, "-o", join(d, "o1"), "--recheck-margin", "0.1"], /needs --precision fp8/],
      [["predict", fa, "-o", join(d, "o2"), "--recheck-margin", "0.7"], /from 0 to 0\.5/],
      [["predict", fa, "-o", join(d, "o3"), "--recheck-margin", "x"], /from 0 to 0\.5/],
    ] as const) {
      const r = runCli([...args, ...modelArgs()]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr.trim().split("\n").length).toBe(1);
    }
    const e = runCli(["embed", fa, "-o", join(d, "o4"), "--recheck-margin", "0.1", ...modelArgs()]);
    expect(e.code).toBe(2);
    // 0 is off, and accepted with any precision
    const z = runCli(["predict", fa, "-o", join(d, "o5"), "--recheck-margin", "0", "--no-report", ...modelArgs()]);
    expect(z.code).toBe(0);
    expect(JSON.parse(readFileSync(join(d, "o5", "run.json"), "utf8")).recheckMargin).toBeUndefined();
  });

  test("every frame redone (margin 0.5) gives the recheck model's outputs; run.json counts them; resume keeps the margin", () => {
    const d = tempDir("recheck-run");
    const fa = join(d, "in.fa");
    syntheticFasta(fa, 60, 300, 5);
    const env = { VIRNUC_TEST_RECHECK_ESM: altEsm };
    const args = (o: string, extra: string[] = []) => ["predict", fa, "-o", join(d, o), "--no-report", "--window-reads", "20", ...extra, ...modelArgs()];
    const r = runCli(args("rechecked", ["--recheck-margin", "0.5", "--save-embeddings"]), { env });
    expect(r.code).toBe(0);
    const m = tinyModels();
    const plainB = runCli(["predict", fa, "-o", join(d, "b"), "--no-report", "--window-reads", "20", "--save-embeddings", ...modelArgs({ ...m, esm: altEsm })]);
    expect(plainB.code).toBe(0);
    // the redone frames carry the recheck model's embeddings; the files say the margin
    const emb = (o: string) => tableFromIPC(readFileSync(join(d, o, "embeddings.arrow")));
    const [er, eb] = [emb("rechecked"), emb("b")];
    expect(er.numRows).toBeGreaterThan(0);
    const esmBytes = (t: ReturnType<typeof emb>) => {
      const col = t.getChild("esm")!;
      return Buffer.concat(Array.from({ length: t.numRows }, (_, i) => Buffer.from(Float32Array.from(col.get(i)!).buffer)));
    };
    expect(esmBytes(er).equals(esmBytes(eb))).toBe(true);
    expect(er.getChild("frame_id")!.toArray()).toEqual(eb.getChild("frame_id")!.toArray());
    expect(parseFileMetadata(er.schema.metadata)!.recheck_margin).toBe(0.5);
    expect(parseFileMetadata(eb.schema.metadata)!.recheck_margin).toBeUndefined();
    // and in worker subprocesses (each loads the recheck model itself)
    const w = runCli(args("workers", ["--recheck-margin", "0.5", "--workers", "2"]), { env });
    expect(w.code).toBe(0);
    for (const f of ["prediction_results.txt", "prediction_results_highestscore.csv"])
      for (const o of ["rechecked", "workers"]) expect(readFileSync(join(d, o, f), "utf8")).toBe(readFileSync(join(d, "b", f), "utf8"));
    const run = JSON.parse(readFileSync(join(d, "rechecked", "run.json"), "utf8"));
    expect(run.recheckMargin).toBe(0.5);
    expect(run.summary.recheckFrames).toBe(run.summary.frames);
    expect(run.summary.frames).toBeGreaterThan(0);
    // the report says it
    expect(runCli(["report", join(d, "rechecked")]).code).toBe(0);
    const html = readFileSync(join(d, "rechecked", "report.html"), "utf8");
    expect(html).toContain(`redone in fp16: ${run.summary.frames.toLocaleString("en-US")} of ${run.summary.frames.toLocaleString("en-US")} frames`);
    // another margin on resume: refused, nothing removed
    const again = runCli(args("rechecked", ["--recheck-margin", "0.2", "--resume"]), { env });
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/--recheck-margin changed \(0\.5 -> 0\.2\)/);
    expect(existsSync(join(d, "rechecked", "prediction_results.txt"))).toBe(true);
  });
});
