/**
 * Packing benchmark: how full the batches run (src/pack/ffd.ts: real tokens / sum over batches
 * of max(capacity, batch tokens)) on the seeded VirNucPro workload, balanced packing (what the
 * encoders use) against plain first-fit decreasing, per read length, part size, token budget and
 * encoder. Host-only and deterministic: no model or device needed.
 *
 *   bun bench packing [--lengths 150,300,500] [--parts 20000,6000,700] [--budgets 65536,8192,4096]
 *                     [--tokenizer tokenizer.json] [--out bench/results]
 */
import { parseBenchArgs } from "./flags.ts";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { makeWorkload } from "./engine.ts";
import { machineInfo, table } from "./report.ts";
import { EsmTokenizer } from "../src/tokenize/esm.ts";
import { BpeTokenizer } from "../src/tokenize/bpe.ts";
import { packBatches, packFFD } from "../src/pack/ffd.ts";

/** The encoders' cap on sequences per batch (src/run/encode.ts). */
const MAX_SEQS = 4096;

export async function packingBench(args: string[]) {
  const o = parseBenchArgs("packing", args);
  const tok = { esm: EsmTokenizer.default(), dnabert: BpeTokenizer.fromFile(o.tokenizer!) };
  const parts = o.parts!.split(",").map(Number);
  const largest = Math.max(...parts);
  const rows: Record<string, unknown>[] = [];
  for (const bp of o.lengths!.split(",").map(Number)) {
    // One seeded workload per length (the engine bench's seed); smaller parts are its first reads.
    const wl = makeWorkload(largest, bp, 7 + bp, tok);
    for (const reads of parts) {
      const frames = Math.round((wl.esm.length * reads) / largest);
      for (const [encoder, all] of [["esm2", wl.esm], ["dnabert", wl.dnabert]] as const) {
        const lengths = Int32Array.from(all.slice(0, frames), (s) => s.length);
        const tokens = lengths.reduce((a, x) => a + x, 0);
        for (const budget of o.budgets!.split(",").map(Number)) {
          const t0 = performance.now();
          const bal = packBatches(lengths, budget, { maxSeqs: MAX_SEQS });
          const ms = performance.now() - t0;
          const ffd = packFFD(lengths, budget, { maxSeqs: MAX_SEQS });
          rows.push({
            read_length: bp, part_reads: reads, encoder, budget, sequences: lengths.length, tokens,
            balanced: { batches: bal.batches.length, capacity: bal.capacity, efficiency: bal.efficiency, ms },
            ffd: { batches: ffd.batches.length, efficiency: ffd.efficiency },
          });
        }
      }
    }
  }
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  console.log(table(
    ["bp", "part reads", "encoder", "budget", "seqs", "tokens", "balanced", "batches x capacity", "FFD", "FFD batches"],
    rows.map((r) => {
      const b = r.balanced as { batches: number; capacity: number; efficiency: number };
      const f = r.ffd as { batches: number; efficiency: number };
      return [String(r.read_length), String(r.part_reads), String(r.encoder), String(r.budget), String(r.sequences), String(r.tokens),
        pct(b.efficiency), `${b.batches} x ${b.capacity}`, pct(f.efficiency), String(f.batches)];
    }),
  ));
  const eff = (k: "balanced" | "ffd") => rows.map((r) => (r[k] as { efficiency: number }).efficiency);
  console.log(`balanced ${pct(Math.min(...eff("balanced")))}-${pct(Math.max(...eff("balanced")))}, first-fit decreasing ${pct(Math.min(...eff("ffd")))}-${pct(Math.max(...eff("ffd")))}`);
  const result = { kind: "packing", date: new Date().toISOString(), machine: machineInfo(), maxSeqs: MAX_SEQS, rows };
  mkdirSync(o.out!, { recursive: true });
  const path = join(o.out!, `packing-${result.date.slice(0, 19).replace(/[:T]/g, "-")}.json`);
  writeFileSync(path, JSON.stringify(result, null, 2) + "\n");
  console.error(`bench: wrote ${path}`);
}
