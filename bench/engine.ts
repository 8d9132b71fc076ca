/**
 * Engine benchmark: ESM-2 and DNABERT-S embedding throughput on the seeded synthetic VirNucPro
 * workload, swept over token budget and read length, with the peers users would run instead
 * (Hugging Face EsmModel FP16 + SDPA, DNABERT-S as VirNucPro runs it) on the same sequences in
 * the same run, and the GEMM ceiling measured there too.
 *
 *   bun bench engine [--esm DIR] [--dnabert DIR] [--reads N] [--lengths 150,300,500]
 *                    [--budgets 8192,16384,32768,65536] [--repeats 3] [--precision fp16 | fp8 | fp16,fp8]
 *                    [--peers] [--dnabert-remote-code bert_layers.py] [--out bench/results]
 */
import { parseBenchArgs } from "./flags.ts";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { tmpdir } from "node:os";
import { syntheticReads } from "./workload.ts";
import { windowsOf } from "../src/frames/windows.ts";
import { framesOf } from "../src/frames/sixframe.ts";
import { EsmTokenizer } from "../src/tokenize/esm.ts";
import { BpeTokenizer } from "../src/tokenize/bpe.ts";
import { loadEsm } from "../src/models/esm.ts";
import { loadDnabert } from "../src/models/dnabert.ts";
import { writeRandomModel } from "../src/models/random.ts";
import { Engine } from "../src/engine/engine.ts";
import { EncoderRunner } from "../src/engine/encode.ts";
import { machineInfo, median, spread, svgLinePlot, table } from "./report.ts";

export interface Workload {
  length: number;
  proteins: string[];
  nucleotides: string[];
  esm: Int32Array[];
  dnabert: Int32Array[];
}

export function makeWorkload(reads: number, length: number, seed: number, tok: { esm: EsmTokenizer; dnabert: BpeTokenizer }): Workload {
  const chunk = length <= 300 ? 300 : 500;
  const proteins: string[] = [];
  const nucleotides: string[] = [];
  let i = 0;
  for (const r of syntheticReads(reads, length, seed)) {
    const rec = { id: r.id, seq: new TextEncoder().encode(r.seq), index: i++ };
    for (const w of windowsOf(rec, chunk))
      for (const f of framesOf(w)) {
        proteins.push(f.protein);
        nucleotides.push(f.nucleotide);
      }
  }
  return {
    length,
    proteins,
    nucleotides,
    esm: proteins.map((p) => tok.esm.encode(p)),
    dnabert: nucleotides.map((n) => tok.dnabert.encode(n)),
  };
}

/** FLOPs of an encoder forward over sequences of these lengths (GEMMs + attention). */
export function encoderFlops(cfg: { nLayers: number; hidden: number; intermediate: number; arch: string }, lengths: Int32Array[] | number[]): number {
  const H = cfg.hidden;
  const I = cfg.intermediate;
  // ESM: QKV + O (4 H^2) + FFN (2 H I); DNABERT: QKV + O + gated (2 I H) + out (I H).
  const perTok = cfg.arch === "dnabert" ? 2 * (4 * H * H + 3 * H * I) : 2 * (4 * H * H + 2 * H * I);
  let f = 0;
  for (const s of lengths) {
    const L = typeof s === "number" ? s : s.length;
    f += cfg.nLayers * (perTok * L + 4 * L * L * H);
  }
  return f;
}

/** Random ESM-2 3B and DNABERT-S in `work` (written once); outliers: the ESM-2 variant with outlier channels. */
export async function ensureRandomModels(work: string, tokenizer?: string, opts: { outliers?: boolean } = {}) {
  const esm = join(work, opts.outliers ? "esm2_t36_3B_UR50D-outliers" : "esm2_t36_3B_UR50D");
  const dna = join(work, "dnabert-s");
  if (!existsSync(join(esm, "config.json"))) {
    console.error(`bench: writing random ESM-2 3B weights${opts.outliers ? " (outlier channels)" : ""} to ${esm} ...`);
    writeRandomModel("esm2_t36_3B_UR50D", 1, esm, { outliers: opts.outliers });
  }
  if (!existsSync(join(dna, "config.json"))) {
    console.error(`bench: writing random DNABERT-S weights to ${dna} ...`);
    writeRandomModel("dnabert-s", 1, dna, tokenizer ? { tokenizer } : {});
  }
  return { esm, dna };
}

export async function engineBench(args: string[]) {
  const o = parseBenchArgs("engine", args);
  const work = resolve(o["work-dir"]!);
  mkdirSync(work, { recursive: true });
  const models = o.esm && o.dnabert ? { esm: o.esm, dna: o.dnabert } : await ensureRandomModels(work, o.tokenizer);
  const esmModel = loadEsm(models.esm);
  const dnaModel = loadDnabert(models.dna);
  const tok = {
    esm: EsmTokenizer.default(),
    dnabert: BpeTokenizer.fromFile(o.tokenizer ?? dnaModel.tokenizerPath ?? join(models.dna, "tokenizer.json")),
  };
  const backend = o.device === "cpu" ? "cpu" : "cuda";
  const engine = Engine.create(backend, {});
  // ESM-2 at each requested precision (e.g. fp16,fp8), side by side; DNABERT-S in fp16.
  const precisions = (backend === "cpu" ? ["fp32"] : o.precision!.split(",")) as ("fp32" | "fp16" | "fp8")[];
  for (const p of precisions)
    if (!["fp32", "fp16", "fp8"].includes(p)) throw new Error(`--precision ${p}: expected fp16, fp8 or a list of them`);
  const precision = precisions.join(",");
  const esms = precisions.map((p) => {
    const t0 = performance.now();
    const h = engine.loadEncoder(esmModel.config, esmModel.tensors, p);
    console.error(`bench: ESM-2 loaded in ${p} in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    return [p, h] as const;
  });
  const dna = engine.loadEncoder(dnaModel.config, dnaModel.tensors, backend === "cpu" ? "fp32" : "fp16");
  const lengths: number[] = String(o.lengths).split(",").map(Number);
  const budgets = o.budgets!.split(",").map(Number);
  const repeats = Number(o.repeats);
  const ours: Record<string, unknown>[] = [];
  const peerInputs: { length: number; proteins: string; nucleotides: string }[] = [];

  for (const L of lengths) {
    const wl = makeWorkload(Number(o.reads), L, 7 + L, tok);
    const pf = join(work, `proteins_${L}.txt`);
    const nf = join(work, `nucleotides_${L}.txt`);
    writeFileSync(pf, wl.proteins.join("\n") + "\n");
    writeFileSync(nf, wl.nucleotides.join("\n") + "\n");
    peerInputs.push({ length: L, proteins: pf, nucleotides: nf });
    const runs: [string, string, typeof dna, Int32Array[], number[], typeof esmModel.config][] = [
      ...esms.map(([p, h]) => ["esm2", p, h, wl.esm, budgets, esmModel.config] as [string, string, typeof dna, Int32Array[], number[], typeof esmModel.config]),
      ["dnabert", backend === "cpu" ? "fp32" : "fp16", dna, wl.dnabert, o["dnabert-budgets"]!.split(",").map(Number), dnaModel.config],
    ];
    for (const [name, prec, handle, seqs, bs, cfg] of runs) {
      const tokens = seqs.reduce((a, s) => a + s.length, 0);
      const flops = encoderFlops(cfg, seqs);
      for (const budget of bs) {
        const runner = new EncoderRunner(engine, handle, budget, name);
        runner.submit(seqs, (i) => `seq ${i}`).finish(); // warm-up: allocation, algorithm choice
        const times: number[] = [];
        let eff = 0;
        let capacity = 0;
        for (let r = 0; r < repeats; r++) {
          const t0 = performance.now();
          const p = runner.submit(seqs, (i) => `seq ${i}`);
          p.finish();
          times.push((performance.now() - t0) / 1000);
          eff = p.stats.efficiency;
          capacity = p.stats.capacity;
        }
        runner.close();
        const t = median(times);
        const row = {
          model: name,
          precision: prec,
          config: `${cfg.nLayers} layers, hidden ${cfg.hidden}`,
          read_length: L,
          token_budget: budget,
          sequences: seqs.length,
          tokens,
          mean_tokens: tokens / Math.max(1, seqs.length),
          seconds_median: t,
          seconds_spread: spread(times),
          tokens_per_s: tokens / t,
          seqs_per_s: seqs.length / t,
          tflops: flops / t / 1e12,
          packing_efficiency: eff,
          batch_capacity: capacity,
        };
        ours.push(row);
        console.error(`bench: ${name} ${prec} L=${L} budget=${budget}: ${(row.tokens_per_s / 1e3).toFixed(1)} k tokens/s, ${row.tflops.toFixed(0)} TFLOP/s, packing ${(eff * 100).toFixed(1)}%`);
      }
    }
  }
  for (const [, h] of esms) h.close();
  dna.close();
  engine.close();

  let peers: Record<string, unknown> | null = null;
  if (o.peers) {
    const outJson = join(work, "peers.json");
    const argv = [
      o.python!, "scripts/bench/peers.py", "--esm", models.esm, "--dnabert", models.dna, "--out", outJson,
      ...peerInputs.flatMap((p) => ["--workload", `${p.length}:${p.proteins}:${p.nucleotides}`]),
      ...(o["dnabert-remote-code"] ? ["--dnabert-remote-code", o["dnabert-remote-code"]] : []),
    ];
    console.error(`bench: running peers: ${argv.join(" ")}`);
    const proc = Bun.spawnSync(argv, { stdout: "inherit", stderr: "inherit", env: { ...process.env, PYTHONUNBUFFERED: "1" } });
    if (proc.exitCode === 0) peers = JSON.parse(await Bun.file(outJson).text());
    else console.error(`bench: peers failed (exit ${proc.exitCode})`);
  }

  const result = { kind: "engine", date: new Date().toISOString(), machine: machineInfo(), precision, models, ours, peers };
  mkdirSync(o.out!, { recursive: true });
  const stamp = result.date.slice(0, 19).replace(/[:T]/g, "-");
  const jsonPath = join(o.out!, `engine-${stamp}.json`);
  writeFileSync(jsonPath, JSON.stringify(result, null, 2) + "\n");
  const esmRows = ours.filter((r) => r.model === "esm2");
  const series = precisions.flatMap((p) =>
    lengths.map((L) => ({
      name: `virnuc ESM-2 (${esmModel.config.nLayers}L, ${esmModel.config.hidden}) ${p}, ${L} bp reads`,
      points: esmRows
        .filter((r) => r.read_length === L && r.precision === p)
        .map((r) => [r.token_budget as number, (r.tokens_per_s as number) / 1e3] as [number, number]),
    })),
  );
  const refLines: { name: string; y: number }[] = [];
  const pe = peers as { esm?: { read_length: number; tokens_per_s: number }[] } | null;
  for (const p of pe?.esm ?? []) refLines.push({ name: `HF EsmModel FP16 SDPA, ${p.read_length} bp`, y: p.tokens_per_s / 1e3 });
  writeFileSync(
    join(o.out!, `engine-${stamp}.svg`),
    svgLinePlot({ title: `ESM-2 embedding throughput (${result.machine.gpu ?? "?"})`, xLabel: "token budget", yLabel: "k tokens/s", series, refLines, logX: true }),
  );
  console.log(
    table(
      ["model", "precision", "read bp", "budget", "k tok/s", "seq/s", "TFLOP/s", "packing"],
      ours.map((r) => [
        String(r.model), String(r.precision), String(r.read_length), String(r.token_budget),
        ((r.tokens_per_s as number) / 1e3).toFixed(1), (r.seqs_per_s as number).toFixed(0),
        (r.tflops as number).toFixed(0), `${((r.packing_efficiency as number) * 100).toFixed(1)}%`,
      ]),
    ),
  );
  if (peers) console.log(JSON.stringify(peers, null, 1));
  console.log(`bench: wrote ${jsonPath}`);
}
