// The typed engine wrapper: handles, buffers, tickets and the errors a user or a bad model can cause.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { join } from "node:path";
import type { HostTensor } from "../models/tensor.ts";
import { UserError } from "../util/errors.ts";
import { EngineError, Engine, NonFiniteError, backendAvailable, cudaDeviceCount } from "./engine.ts";
import { dnaTokens, embed, protein, rng, tinyDnabert, tinyEsm, tinyMlp } from "../../test/engine/tiny.ts";

// subprocesses and heavy checks on a busy machine take longer than the 5 s default (bunfig has no such key)
setDefaultTimeout(120_000);

const engine = Engine.create("cpu", { threads: 2 });
afterAll(() => engine.close());

function withTensor(tensors: Map<string, HostTensor>, name: string, t: HostTensor | null): Map<string, HostTensor> {
  const copy = new Map(tensors);
  if (t) copy.set(name, t);
  else copy.delete(name);
  return copy;
}

function loadError(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a failure");
}

describe("engine", () => {
  test("describes itself, reports memory, honours the thread count", () => {
    const one = Engine.create("cpu", { threads: 1 });
    try {
      expect(one.describe()).toStartWith("cpu (1 threads");
      expect(engine.describe()).toStartWith("cpu (2 threads");
      const mem = engine.memory();
      expect(mem.total).toBeGreaterThan(0);
      expect(mem.free).toBeGreaterThan(0);
      expect(mem.free).toBeLessThanOrEqual(mem.total);
    } finally {
      one.close();
    }
  });

  test("cpu is always available; CUDA only with a device", () => {
    expect(backendAvailable("cpu")).toBe(true);
    if (backendAvailable("cuda")) {
      expect(cudaDeviceCount()).toBeGreaterThan(0);
    } else {
      expect(() => Engine.create("cuda")).toThrow(UserError);
    }
  });

  test("host buffers are native, aligned, typed views of the same bytes", () => {
    const b = engine.alloc(64);
    expect(b.ptr % 64).toBe(0);
    b.f32()[2] = 1.5;
    expect(new Float32Array(b.u8().buffer)[2]).toBe(1.5);
    b.i32()[0] = -7;
    expect(b.i32()[0]).toBe(-7);
    const stale = b.f32();
    b.free();
    expect(() => b.f32()).toThrow("after free");
    b.free(); // idempotent
    // a view kept past free() is detached: empty, and writing to it touches no freed memory
    expect(stale.length).toBe(0);
    stale[0] = 1;
    expect(stale[0]).toBeUndefined();
  });

  test("closing the engine detaches every buffer's views", () => {
    const e = Engine.create("cpu", { threads: 1 });
    const views = [e.alloc(256).f32(), e.alloc(1 << 20).u8()];
    e.close();
    for (const v of views) expect(v.length).toBe(0);
  });

  test("close is idempotent and models are unusable afterwards", () => {
    const e = Engine.create("cpu", { threads: 1 });
    const m = tinyMlp(1);
    const h = e.loadClassifier(m.config, m.tensors);
    e.alloc(16);
    e.close();
    e.close();
    expect(() => h.submitClassify(e.alloc(4), 0, e.alloc(4))).toThrow("after close");
  });

  test("a library that is not there is a one-line UserError", () => {
    const script = `import { Engine } from ${JSON.stringify(join(import.meta.dir, "engine.ts"))};
      try { Engine.create("cpu"); } catch (e) { console.log(e.name + ": " + e.message); }`;
    const p = Bun.spawnSync([process.execPath, "-e", script], {
      env: { ...process.env, VIRNUC_LIB: "/nonexistent/libvirnuc.so" },
    });
    expect(p.stdout.toString().trim()).toBe("UserError: libvirnuc not found at VIRNUC_LIB=/nonexistent/libvirnuc.so");
  });
});

describe("model loading", () => {
  const esm = tinyEsm(5);

  test("a missing tensor is named, with its expected shape", () => {
    const name = "encoder.layer.1.attention.self.key.weight";
    const err = loadError(() => engine.loadEncoder(esm.config, withTensor(esm.tensors, name, null), "fp32"));
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe(`cannot load the ESM-2 model: missing tensor ${name} (expected shape [32, 32])`);
  });

  test("a wrong shape names the tensor, the shape found and the shape expected", () => {
    const name = "encoder.layer.0.intermediate.dense.weight";
    const bad: HostTensor = { dtype: "f32", shape: [32, 64], data: new Uint8Array(32 * 64 * 4) };
    const err = loadError(() => engine.loadEncoder(esm.config, withTensor(esm.tensors, name, bad), "fp32"));
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe(`cannot load the ESM-2 model: tensor ${name} has shape [32, 64], expected [64, 32]`);
  });

  test("data that does not match its shape is refused before the library sees it", () => {
    const name = "embeddings.word_embeddings.weight";
    const bad: HostTensor = { dtype: "f16", shape: [33, 32], data: new Uint8Array(10) };
    const err = loadError(() => engine.loadEncoder(esm.config, withTensor(esm.tensors, name, bad), "fp32"));
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain(name);
  });

  test("the CPU backend refuses fp16 with a clear message", () => {
    const err = loadError(() => engine.loadEncoder(esm.config, esm.tensors, "fp16"));
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain("fp32 only");
  });

  test("a config the architecture cannot have is refused", () => {
    const err = loadError(() => engine.loadEncoder({ ...esm.config, nHeads: 5 }, esm.tensors, "fp32"));
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain("not a multiple of n_heads");
  });

  test("tensors as views into one shared (unaligned) buffer, and f64/i64 tensors, load the same", () => {
    const m = tinyMlp(9, { inFeatures: 16, hidden: 8 });
    // Lay every tensor out in one buffer at odd offsets, like a memory-mapped checkpoint.
    const total = [...m.tensors.values()].reduce((s, t) => s + t.data.byteLength + 3, 1);
    const big = new Uint8Array(total);
    let at = 1;
    const views = new Map<string, HostTensor>();
    for (const [name, t] of m.tensors) {
      big.set(t.data, at);
      views.set(name, { ...t, data: big.subarray(at, at + t.data.byteLength) });
      at += t.data.byteLength + 3;
    }
    // bn1.running_var as f64, and an extra integer tensor the head does not use.
    const rv = m.weights.get("bn1.running_var")!.data;
    views.set("bn1.running_var", { dtype: "f64", shape: [8], data: new Uint8Array(Float64Array.from(rv).buffer) });
    views.set("bn1.num_batches_tracked", { dtype: "i64", shape: [], data: new Uint8Array(8) });
    const a = engine.loadClassifier(m.config, m.tensors);
    const b = engine.loadClassifier(m.config, views);
    try {
      const feat = engine.alloc(3 * 16 * 4);
      const next = rng(4);
      feat.f32().set(Array.from({ length: 48 }, () => next() * 2 - 1));
      const oa = engine.alloc(3 * 2 * 4);
      const ob = engine.alloc(3 * 2 * 4);
      a.submitClassify(feat, 3, oa).wait();
      b.submitClassify(feat, 3, ob).wait();
      expect(Array.from(ob.f32())).toEqual(Array.from(oa.f32()));
      for (const x of [feat, oa, ob]) x.free();
    } finally {
      a.close();
      b.close();
    }
  });
});

describe("submission and tickets", () => {
  const esm = tinyEsm(6);
  const h = engine.loadEncoder(esm.config, esm.tensors, "fp32");

  test("a NaN weight reaches only the sequences that use it: NonFiniteError names the row", () => {
    // Poison the embedding row of token 20 (M); only the third sequence contains it.
    const word = esm.tensors.get("embeddings.word_embeddings.weight")!;
    const f = new Float32Array(33 * 32);
    f.fill(0.01);
    for (let j = 0; j < 32; j++) f[20 * 32 + j] = Number.NaN;
    const poisoned = engine.loadEncoder(
      esm.config,
      withTensor(esm.tensors, "embeddings.word_embeddings.weight", { ...word, dtype: "f32", data: new Uint8Array(f.buffer) }),
      "fp32",
    );
    try {
      const err = loadError(() => embed(engine, poisoned, [[0, 5, 6, 2], [0, 7, 2], [0, 8, 20, 9, 2], [0, 20, 2]]));
      expect(err).toBeInstanceOf(NonFiniteError);
      expect((err as NonFiniteError).row).toBe(2);
      expect(err.message).toContain("sequence 2");
      // Without the poisoned token the same model is fine.
      expect(embed(engine, poisoned, [[0, 5, 6, 2], [0, 7, 2]]).every(Number.isFinite)).toBe(true);
    } finally {
      poisoned.close();
    }
  });

  test("NaN features make the classifier report the row", () => {
    const m = tinyMlp(2, { inFeatures: 8, hidden: 4 });
    const c = engine.loadClassifier(m.config, m.tensors);
    const feat = engine.alloc(4 * 8 * 4);
    const out = engine.alloc(4 * 2 * 4);
    try {
      feat.f32().fill(0.5);
      feat.f32()[3 * 8 + 5] = Number.POSITIVE_INFINITY;
      const t = c.submitClassify(feat, 4, out);
      expect(t.poll()).toBe(true);
      const err = loadError(() => t.wait());
      expect(err).toBeInstanceOf(NonFiniteError);
      expect((err as NonFiniteError).row).toBe(3);
      // The outcome is kept: waiting again reports the same.
      expect(() => t.wait()).toThrow(NonFiniteError);
    } finally {
      feat.free();
      out.free();
      c.close();
    }
  });

  test("a token outside the vocabulary is refused at submit, naming sequence and position", () => {
    const err = loadError(() => embed(engine, h, [[0, 5, 2], [0, 6, 33, 2]]));
    expect(err).toBeInstanceOf(EngineError);
    expect(err.message).toContain("token id 33 at position 2 of sequence 1");
  });

  test("a protein without residues cannot be pooled", () => {
    const err = loadError(() => embed(engine, h, [[0, 5, 2], [0, 2]]));
    expect(err).toBeInstanceOf(EngineError);
    expect(err.message).toContain("sequence 1");
  });

  test("buffers too small for the batch are refused", () => {
    const tokens = engine.alloc(8);
    const cu = engine.alloc(8);
    const out = engine.alloc(16);
    cu.i32().set([0, 5]);
    expect(() => h.submitEmbed(tokens, cu, 1, out)).toThrow("bytes");
    for (const b of [tokens, cu, out]) b.free();
  });

  test("free() of a buffer a pending ticket uses is deferred until the ticket completes", () => {
    const seq = protein(rng(3), 6);
    const tokens = engine.alloc(seq.length * 4);
    const cu = engine.alloc(8);
    const out = engine.alloc(32 * 4);
    tokens.i32().set(seq);
    cu.i32().set([0, seq.length]);
    const t = h.submitEmbed(tokens, cu, 1, out);
    out.free();
    expect(out.isFreed).toBe(true);
    expect(out.f32().length).toBe(32); // still readable: the ticket holds it
    t.wait();
    expect(() => out.f32()).toThrow("after free");
    tokens.free();
    cu.free();
  });

  test("an empty batch completes", () => {
    const cu = engine.alloc(4);
    cu.i32()[0] = 0;
    const tokens = engine.alloc(0);
    const out = engine.alloc(0);
    h.submitEmbed(tokens, cu, 0, out).wait();
    for (const b of [tokens, cu, out]) b.free();
  });

  test("a DNABERT-S handle suggests a token budget and embeds to its hidden width", () => {
    const d = tinyDnabert(1);
    const dh = engine.loadEncoder(d.config, d.tensors, "fp32");
    try {
      expect(dh.suggestTokenBudget()).toBeGreaterThan(0);
      expect(embed(engine, dh, [dnaTokens(rng(1), 4, 40)]).length).toBe(48);
    } finally {
      dh.close();
    }
  });
});
