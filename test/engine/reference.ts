/**
 * Float64 reference of the encoders and the classifier head, written from
 * /work/shared/docs/models.md for checking libvirnuc's CPU backend. Plain and slow on purpose:
 * matrices are arrays of Float64Array rows, every step spelled out as in the document.
 */

export type Weights = Map<string, { shape: number[]; data: Float64Array }>;

export interface RefConfig {
  nLayers: number;
  hidden: number;
  nHeads: number;
  intermediate: number;
  vocab: number;
  lnEps: number;
  maskTokenId?: number;
  tokenDropout?: boolean;
  maxPoolPositions?: number;
}

type Mat = Float64Array[];

function get(w: Weights, name: string): Float64Array {
  const t = w.get(name);
  if (!t) throw new Error(`reference: no tensor ${name}`);
  return t.data;
}

/** y = x W^T + b with W [out, in] row-major. */
function linear(x: Mat, W: Float64Array, b: Float64Array | null, out: number): Mat {
  const inn = x[0]?.length ?? 0;
  return x.map((row) => {
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inn; i++) s += row[i] * W[o * inn + i];
      y[o] = s;
    }
    return y;
  });
}

function layerNorm(x: Mat, w: Float64Array, b: Float64Array, eps: number): Mat {
  return x.map((row) => {
    const n = row.length;
    let mean = 0;
    for (const v of row) mean += v;
    mean /= n;
    let variance = 0;
    for (const v of row) variance += (v - mean) * (v - mean);
    variance /= n;
    const inv = 1 / Math.sqrt(variance + eps);
    return row.map((v, j) => (v - mean) * inv * w[j] + b[j]);
  });
}

/** erf to about 1e-15 (series near 0, continued fraction for the tail). */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    // Maclaurin series: erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 200; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
  let f = ax;
  for (let k = 60; k >= 1; k--) f = ax + k / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

export const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));

/** softmax(scores) V over one sequence for one head; scores[i][j] from the caller. */
function attend(scores: number[][], v: Mat, head: number, d: number): Mat {
  return scores.map((row) => {
    const mx = Math.max(...row);
    const e = row.map((s) => Math.exp(s - mx));
    const sum = e.reduce((a, b) => a + b, 0);
    const out = new Float64Array(d);
    for (let j = 0; j < row.length; j++) for (let c = 0; c < d; c++) out[c] += (e[j] / sum) * v[j][head * d + c];
    return out;
  });
}

/** Mean of rows [from, to). */
function meanRows(x: Mat, from: number, to: number): Float64Array {
  const out = new Float64Array(x[0].length);
  for (let r = from; r < to; r++) for (let j = 0; j < out.length; j++) out[j] += x[r][j];
  return out.map((v) => v / (to - from));
}

/** ESM-2 pooled embedding of one tokenised protein ([cls] ... [eos]). */
export function esm2Embed(w: Weights, c: RefConfig, tokens: number[]): Float64Array {
  const H = c.hidden;
  const d = H / c.nHeads;
  const n = tokens.length;
  const word = get(w, "embeddings.word_embeddings.weight");
  const mask = c.maskTokenId ?? 32;
  const dropout = c.tokenDropout ?? true;
  const nMask = tokens.filter((t) => t === mask).length;
  const factor = dropout ? 0.88 / (1 - nMask / n) : 1;
  let x: Mat = tokens.map((t) => {
    const row = new Float64Array(H);
    if (!(dropout && t === mask)) for (let j = 0; j < H; j++) row[j] = word[t * H + j] * factor;
    return row;
  });
  for (let l = 0; l < c.nLayers; l++) {
    const p = `encoder.layer.${l}.`;
    const h = layerNorm(x, get(w, p + "attention.LayerNorm.weight"), get(w, p + "attention.LayerNorm.bias"), c.lnEps);
    const q = linear(h, get(w, p + "attention.self.query.weight"), get(w, p + "attention.self.query.bias"), H);
    const k = linear(h, get(w, p + "attention.self.key.weight"), get(w, p + "attention.self.key.bias"), H);
    const v = linear(h, get(w, p + "attention.self.value.weight"), get(w, p + "attention.self.value.bias"), H);
    const invFreq = get(w, p + "attention.self.rotary_embeddings.inv_freq");
    const rotate = (m: Mat, scale: number) =>
      m.map((row, pos) => {
        const out = new Float64Array(H);
        for (let hd = 0; hd < c.nHeads; hd++) {
          for (let i = 0; i < d / 2; i++) {
            const a = pos * invFreq[i];
            const x1 = row[hd * d + i] * scale;
            const x2 = row[hd * d + i + d / 2] * scale;
            out[hd * d + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
            out[hd * d + i + d / 2] = x2 * Math.cos(a) + x1 * Math.sin(a);
          }
        }
        return out;
      });
    const qr = rotate(q, 1 / Math.sqrt(d));
    const kr = rotate(k, 1);
    const ctx: Mat = tokens.map(() => new Float64Array(H));
    for (let hd = 0; hd < c.nHeads; hd++) {
      const scores = qr.map((qi) =>
        kr.map((kj) => {
          let s = 0;
          for (let e = 0; e < d; e++) s += qi[hd * d + e] * kj[hd * d + e];
          return s;
        }),
      );
      attend(scores, v, hd, d).forEach((row, i) => ctx[i].set(row, hd * d));
    }
    const attnOut = linear(ctx, get(w, p + "attention.output.dense.weight"), get(w, p + "attention.output.dense.bias"), H);
    x = x.map((row, i) => row.map((val, j) => val + attnOut[i][j]));
    const h2 = layerNorm(x, get(w, p + "LayerNorm.weight"), get(w, p + "LayerNorm.bias"), c.lnEps);
    const f = linear(h2, get(w, p + "intermediate.dense.weight"), get(w, p + "intermediate.dense.bias"), c.intermediate).map(
      (row) => row.map(gelu),
    );
    const o = linear(f, get(w, p + "output.dense.weight"), get(w, p + "output.dense.bias"), H);
    x = x.map((row, i) => row.map((val, j) => val + o[i][j]));
  }
  x = layerNorm(x, get(w, "encoder.emb_layer_norm_after.weight"), get(w, "encoder.emb_layer_norm_after.bias"), c.lnEps);
  const residues = n - 2;
  const last = c.maxPoolPositions ? Math.min(c.maxPoolPositions, residues) : residues;
  return meanRows(x, 1, 1 + last);
}

/** ALiBi slopes from the rule in models.md / MosaicBERT, computed directly as powers of two. */
export function referenceSlopes(nHeads: number): number[] {
  let p = 1;
  while (p * 2 <= nHeads) p *= 2;
  const out: number[] = [];
  for (let i = 0; i < p; i++) out.push(2 ** ((-8 * (i + 1)) / p));
  for (let i = 0; out.length < nHeads; i++) out.push(2 ** ((-8 * (2 * i + 1)) / (2 * p)));
  return out;
}

/** DNABERT-S pooled embedding of one tokenised DNA sequence. */
export function dnabertEmbed(w: Weights, c: RefConfig, tokens: number[]): Float64Array {
  const H = c.hidden;
  const I = c.intermediate;
  const d = H / c.nHeads;
  const word = get(w, "embeddings.word_embeddings.weight");
  const tt = get(w, "embeddings.token_type_embeddings.weight");
  const slopes = referenceSlopes(c.nHeads);
  let x: Mat = tokens.map((t) => {
    const row = new Float64Array(H);
    for (let j = 0; j < H; j++) row[j] = word[t * H + j] + tt[j];
    return row;
  });
  x = layerNorm(x, get(w, "embeddings.LayerNorm.weight"), get(w, "embeddings.LayerNorm.bias"), c.lnEps);
  for (let l = 0; l < c.nLayers; l++) {
    const p = `encoder.layer.${l}.`;
    const qkv = linear(x, get(w, p + "attention.self.Wqkv.weight"), get(w, p + "attention.self.Wqkv.bias"), 3 * H);
    const ctx: Mat = tokens.map(() => new Float64Array(H));
    const v = qkv.map((row) => row.subarray(2 * H));
    for (let hd = 0; hd < c.nHeads; hd++) {
      const scores = qkv.map((qi, i) =>
        qkv.map((kj, j) => {
          let s = 0;
          for (let e = 0; e < d; e++) s += qi[hd * d + e] * kj[H + hd * d + e];
          return s / Math.sqrt(d) - slopes[hd] * Math.abs(i - j);
        }),
      );
      attend(scores, v, hd, d).forEach((row, i) => ctx[i].set(row, hd * d));
    }
    const a = linear(ctx, get(w, p + "attention.output.dense.weight"), get(w, p + "attention.output.dense.bias"), H);
    x = layerNorm(
      x.map((row, i) => row.map((val, j) => val + a[i][j])),
      get(w, p + "attention.output.LayerNorm.weight"),
      get(w, p + "attention.output.LayerNorm.bias"),
      c.lnEps,
    );
    const u = linear(x, get(w, p + "mlp.gated_layers.weight"), null, 2 * I);
    const g = u.map((row) => {
      const out = new Float64Array(I);
      for (let j = 0; j < I; j++) out[j] = gelu(row[j]) * row[I + j];
      return out;
    });
    const o = linear(g, get(w, p + "mlp.wo.weight"), get(w, p + "mlp.wo.bias"), H);
    x = layerNorm(
      x.map((row, i) => row.map((val, j) => val + o[i][j])),
      get(w, p + "mlp.layernorm.weight"),
      get(w, p + "mlp.layernorm.bias"),
      c.lnEps,
    );
  }
  return meanRows(x, 0, tokens.length);
}

/** VirNucPro MLPClassifier on one feature row: softmax probabilities. */
export function mlpClassify(w: Weights, bnEps: number, features: Float64Array, hidden: number, nClasses: number): Float64Array {
  const h = linear([features], get(w, "hidden_layer.weight"), get(w, "hidden_layer.bias"), hidden)[0];
  const g = get(w, "bn1.weight");
  const b = get(w, "bn1.bias");
  const mean = get(w, "bn1.running_mean");
  const variance = get(w, "bn1.running_var");
  const r = h.map((v, j) => Math.max(0, ((v - mean[j]) / Math.sqrt(variance[j] + bnEps)) * g[j] + b[j]));
  const z = linear([r], get(w, "output_layer.weight"), get(w, "output_layer.bias"), nClasses)[0];
  const mx = Math.max(...z);
  const e = z.map((v) => Math.exp(v - mx));
  const s = e.reduce((a, v) => a + v, 0);
  return e.map((v) => v / s);
}
