// libvirnuc's CPU backend against the float64 reference of models.md, on tiny seeded models.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { Engine, type ClassifierHandle, type EncoderHandle } from "../../src/engine/engine.ts";
import { dnabertEmbed, esm2Embed, mlpClassify, referenceSlopes } from "./reference.ts";
import { cosine, dnaTokens, embed, maxAbsDiff, protein, rng, tinyDnabert, tinyEsm, tinyMlp } from "./tiny.ts";

// subprocesses and heavy checks on a busy machine take longer than the 5 s default (bunfig has no such key)
setDefaultTimeout(120_000);

const engine = Engine.create("cpu", { threads: 2 });
afterAll(() => engine.close());

function classify(e: Engine, h: ClassifierHandle, rows: Float32Array, nRows: number): Float32Array {
  const feat = e.alloc(rows.byteLength);
  const out = e.alloc(nRows * h.nClasses * 4);
  try {
    feat.f32().set(rows);
    h.submitClassify(feat, nRows, out).wait();
    return new Float32Array(out.f32().subarray(0, nRows * h.nClasses));
  } finally {
    feat.free();
    out.free();
  }
}

function expectClose(got: Float32Array, want: Float64Array, what: string): void {
  const err = maxAbsDiff(got, want);
  const cos = cosine(got, want);
  if (err > 1e-4 || cos < 0.99999) throw new Error(`${what}: max abs error ${err}, cosine ${cos}`);
  expect(err).toBeLessThanOrEqual(1e-4);
  expect(cos).toBeGreaterThanOrEqual(0.99999);
}

describe("ESM-2", () => {
  const m = tinyEsm(11);
  const next = rng(5);
  const seqs = [
    protein(next, 9),
    protein(next, 1),
    protein(next, 23),
    [0, 5, 32, 7, 32, 9, 10, 2], // two <mask> tokens: token-dropout ratio 2/8
    protein(next, 70), // the batch spans more than one GEMM row block
  ];
  const h = engine.loadEncoder(m.config, m.tensors, "fp32");

  test("output dim is the hidden size", () => {
    expect(h.outputDim).toBe(32);
  });

  test("matches the float64 reference, <mask> included", () => {
    const got = embed(engine, h, seqs);
    seqs.forEach((s, i) => expectClose(got.subarray(i * 32, (i + 1) * 32), esm2Embed(m.weights, m.config, s), `seq ${i}`));
  });

  test("the mask ratio changes the result (token-dropout rescale is applied)", () => {
    const masked = embed(engine, h, [[0, 5, 32, 7, 9, 2]]);
    const ref = esm2Embed(m.weights, m.config, [0, 5, 32, 7, 9, 2]);
    const noRescale = esm2Embed(m.weights, { ...m.config, tokenDropout: false }, [0, 5, 32, 7, 9, 2]);
    expectClose(masked, ref, "masked");
    expect(maxAbsDiff(masked, noRescale)).toBeGreaterThan(1e-3);
  });

  test("pools residues 1..min(maxPoolPositions, p) of a long protein", () => {
    const short = tinyEsm(11, { maxPoolPositions: 5 });
    const hs = engine.loadEncoder(short.config, short.tensors, "fp32");
    try {
      const long = protein(rng(9), 30);
      const got = embed(engine, hs, [long, protein(rng(10), 3)]);
      expectClose(got.subarray(0, 32), esm2Embed(short.weights, short.config, long), "long");
      expectClose(got.subarray(32), esm2Embed(short.weights, short.config, protein(rng(10), 3)), "short");
      // Differs from pooling every residue.
      expect(maxAbsDiff(got.subarray(0, 32), esm2Embed(m.weights, m.config, long))).toBeGreaterThan(1e-3);
    } finally {
      hs.close();
    }
  });

  test("other shapes: head dim not a multiple of the vector width, FFN wider than a GEMM K block, 3 layers", () => {
    const odd = tinyEsm(3, { hidden: 40, nHeads: 2, intermediate: 300, nLayers: 3 });
    const ho = engine.loadEncoder(odd.config, odd.tensors, "fp32");
    try {
      const s = [protein(rng(1), 17), protein(rng(2), 6)];
      const got = embed(engine, ho, s);
      s.forEach((q, i) => expectClose(got.subarray(i * 40, (i + 1) * 40), esm2Embed(odd.weights, odd.config, q), `seq ${i}`));
    } finally {
      ho.close();
    }
  });
});

describe("DNABERT-S", () => {
  test("ALiBi slopes for 12 heads are 2^-1..2^-8 then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5", () => {
    const want = [1, 2, 3, 4, 5, 6, 7, 8, 0.5, 1.5, 2.5, 3.5].map((e) => 2 ** -e);
    referenceSlopes(12).forEach((s, i) => expect(s).toBeCloseTo(want[i], 15));
  });

  for (const nHeads of [12, 6, 4]) {
    test(`matches the float64 reference with ${nHeads} heads`, () => {
      const m = tinyDnabert(21 + nHeads, { nHeads });
      const h = engine.loadEncoder(m.config, m.tensors, "fp32");
      try {
        expect(h.outputDim).toBe(48);
        const next = rng(nHeads);
        const seqs = [dnaTokens(next, 30, 40), dnaTokens(next, 0, 40), dnaTokens(next, 57, 40), dnaTokens(next, 7, 40)];
        const got = embed(engine, h, seqs);
        seqs.forEach((s, i) =>
          expectClose(got.subarray(i * 48, (i + 1) * 48), dnabertEmbed(m.weights, m.config, s), `${nHeads} heads, seq ${i}`),
        );
      } finally {
        h.close();
      }
    });
  }

  test("the slopes matter: 12 vs 6 heads on the same weights differ", () => {
    const a = tinyDnabert(7, { nHeads: 12 });
    const s = dnaTokens(rng(2), 40, 40);
    const r12 = dnabertEmbed(a.weights, a.config, s);
    const r6 = dnabertEmbed(a.weights, { ...a.config, nHeads: 6 }, s);
    expect(maxAbsDiff(r12, r6)).toBeGreaterThan(1e-3);
  });
});

describe("MLP classifier", () => {
  test("matches the float64 reference; rows sum to 1", () => {
    const m = tinyMlp(4);
    const h = engine.loadClassifier(m.config, m.tensors);
    try {
      expect(h.nClasses).toBe(2);
      const n = 37;
      const next = rng(77);
      const rows = new Float32Array(n * 80).map(() => next() * 4 - 2);
      const got = classify(engine, h, rows, n);
      for (let r = 0; r < n; r++) {
        const want = mlpClassify(m.weights, 1e-5, Float64Array.from(rows.subarray(r * 80, (r + 1) * 80)), 40, 2);
        expect(maxAbsDiff(got.subarray(r * 2, r * 2 + 2), want)).toBeLessThanOrEqual(1e-5);
        expect(got[r * 2] + got[r * 2 + 1]).toBeCloseTo(1, 6);
      }
    } finally {
      h.close();
    }
  });

  test("three classes, features not a multiple of the vector width", () => {
    const m = tinyMlp(8, { inFeatures: 45, hidden: 19, nClasses: 3, bnEps: 1e-3 });
    const h = engine.loadClassifier(m.config, m.tensors);
    try {
      const next = rng(3);
      const rows = new Float32Array(5 * 45).map(() => next() * 2 - 1);
      const got = classify(engine, h, rows, 5);
      for (let r = 0; r < 5; r++) {
        const want = mlpClassify(m.weights, 1e-3, Float64Array.from(rows.subarray(r * 45, (r + 1) * 45)), 19, 3);
        expect(maxAbsDiff(got.subarray(r * 3, r * 3 + 3), want)).toBeLessThanOrEqual(1e-5);
      }
    } finally {
      h.close();
    }
  });
});

describe("batch independence", () => {
  // Enough tokens for several GEMM row blocks, so the probe lands in different tiles and threads.
  const next = rng(1234);
  const probeEsm = protein(next, 31);
  const fillers = Array.from({ length: 12 }, (_, i) => protein(next, 5 + ((i * 7) % 29)));

  function checkIdentical(e: Engine, h: EncoderHandle, probe: number[], others: number[][]): void {
    const dim = h.outputDim;
    const alone = embed(e, h, [probe]);
    const layouts = [
      [probe, ...others],
      [...others, probe],
      [...others.slice(0, 5), probe, ...others.slice(5)],
      [...others.slice(3).reverse(), probe, probe],
    ];
    for (const seqs of layouts) {
      const got = embed(e, h, seqs);
      seqs.forEach((s, i) => {
        if (s !== probe) return;
        const row = got.subarray(i * dim, (i + 1) * dim);
        expect(Array.from(row)).toEqual(Array.from(alone));
      });
    }
  }

  test("ESM-2: a sequence's embedding is bit-identical whatever shares its batch", () => {
    const m = tinyEsm(2, { hidden: 64, nHeads: 4, intermediate: 128 });
    const h = engine.loadEncoder(m.config, m.tensors, "fp32");
    try {
      checkIdentical(engine, h, probeEsm, fillers);
    } finally {
      h.close();
    }
  });

  test("DNABERT-S: bit-identical across batch compositions and thread counts", () => {
    const m = tinyDnabert(3);
    const h = engine.loadEncoder(m.config, m.tensors, "fp32");
    const one = Engine.create("cpu", { threads: 1 });
    try {
      const r = rng(8);
      const probe = dnaTokens(r, 45, 40);
      const others = Array.from({ length: 10 }, (_, i) => dnaTokens(r, 10 + i * 9, 40));
      checkIdentical(engine, h, probe, others);
      const h1 = one.loadEncoder(m.config, m.tensors, "fp32");
      const a = embed(engine, h, [...others, probe]);
      const b = embed(one, h1, [probe, ...others]);
      expect(Array.from(a.subarray(others.length * 48))).toEqual(Array.from(b.subarray(0, 48)));
    } finally {
      h.close();
      one.close();
    }
  });
});
