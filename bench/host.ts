/**
 * Host-side benchmark: what one core does per read before the GPU sees it.
 * read (FASTA) -> windows -> frames -> ESM-2 tokens -> DNABERT-S BPE tokens, timed per stage
 * over N seeded synthetic reads written to a temporary FASTA file.
 *
 *   bun bench/host.ts [--reads 1000000] [--length 150] [--chunk-size 300] [--seed 11]
 *                     [--tokenizer test/fixtures/reference/dnabert-s/tokenizer.json] [--out bench/results]
 */
import { parseBenchArgs } from "./flags.ts";
import { mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { tmpdir } from "node:os";
import { syntheticReads, writeSyntheticFasta } from "./workload.ts";
import { readFasta, type FastaRecord } from "../src/fasta/reader.ts";
import { windowsOf } from "../src/frames/windows.ts";
import { framesOf } from "../src/frames/sixframe.ts";
import { EsmTokenizer } from "../src/tokenize/esm.ts";
import { BpeTokenizer } from "../src/tokenize/bpe.ts";
import { machineInfo, table } from "./report.ts";

const REPO = resolve(import.meta.dir, "..");
const DEFAULT_TOKENIZER = resolve(REPO, "test/fixtures/reference/dnabert-s/tokenizer.json");
const GOAL_READS_PER_S = 50_000;

interface Tokenizers {
  esm: EsmTokenizer;
  bpe: BpeTokenizer;
}

interface StageTimes {
  read: number;
  frames: number;
  esm: number;
  bpe: number;
}

interface Counts {
  reads: number;
  windows: number;
  frames: number;
  esmTokens: number;
  bpeTokens: number;
}

/** Frames, then tokens, of one batch of records; adds the seconds of each stage to `t`. */
function processBatch(batch: FastaRecord[], chunk: number, tok: Tokenizers, t: StageTimes, c: Counts): void {
  const proteins: string[] = [];
  const nucleotides: string[] = [];
  let t0 = performance.now();
  for (const rec of batch) {
    for (const w of windowsOf(rec, chunk)) {
      c.windows++;
      for (const f of framesOf(w)) {
        proteins.push(f.protein);
        nucleotides.push(f.nucleotide);
      }
    }
  }
  let t1 = performance.now();
  t.frames += t1 - t0;
  t0 = t1;
  for (const p of proteins) c.esmTokens += tok.esm.encode(p).length;
  t1 = performance.now();
  t.esm += t1 - t0;
  t0 = t1;
  for (const n of nucleotides) c.bpeTokens += tok.bpe.encode(n).length;
  t1 = performance.now();
  t.bpe += t1 - t0;
  c.reads += batch.length;
  c.frames += proteins.length;
}

const encoder = new TextEncoder();

/** Mean kept frames per read of the workload at one read length (frames only, in memory). */
function meanKeptFrames(reads: number, length: number, chunk: number, seed: number): number {
  let kept = 0;
  let i = 0;
  for (const r of syntheticReads(reads, length, seed))
    for (const w of windowsOf({ id: r.id, seq: encoder.encode(r.seq), index: i++ }, chunk)) kept += framesOf(w).length;
  return kept / reads;
}

export async function hostBench(args: string[]): Promise<object> {
  const o = parseBenchArgs("host", args);
  const reads = Number(o.reads);
  const length = Number(o.length);
  const chunk = o["chunk-size"] ? Number(o["chunk-size"]) : length <= 300 ? 300 : 500;
  const seed = Number(o.seed);
  const batchSize = Number(o.batch);
  for (const [k, v] of [["reads", reads], ["length", length], ["chunk-size", chunk], ["batch", batchSize]] as const)
    if (!(Number.isInteger(v) && v > 0)) throw new Error(`--${k} must be a positive integer`);

  const tok: Tokenizers = { esm: EsmTokenizer.default(), bpe: BpeTokenizer.fromFile(o.tokenizer!) };

  mkdirSync(o["work-dir"]!, { recursive: true });
  const fasta = join(o["work-dir"]!, `host_${reads}_${length}_${seed}_${process.pid}.fa`);
  let tw = performance.now();
  await writeSyntheticFasta(fasta, reads, length, seed);
  const writeS = (performance.now() - tw) / 1000;
  const fastaBytes = statSync(fasta).size;
  console.error(`wrote ${reads} reads of ${length} bp (${(fastaBytes / 2 ** 20).toFixed(0)} MiB) in ${writeS.toFixed(1)} s: ${fasta}`);

  // Warm the JIT on a slice of the same workload before timing anything.
  {
    const warm: FastaRecord[] = [];
    let i = 0;
    for (const r of syntheticReads(Math.min(reads, 20_000), length, seed + 1))
      warm.push({ id: r.id, seq: encoder.encode(r.seq), file: "warm", line: 0, offset: -1, index: i++ });
    processBatch(warm, chunk, tok, { read: 0, frames: 0, esm: 0, bpe: 0 }, { reads: 0, windows: 0, frames: 0, esmTokens: 0, bpeTokens: 0 });
  }

  const t: StageTimes = { read: 0, frames: 0, esm: 0, bpe: 0 };
  const c: Counts = { reads: 0, windows: 0, frames: 0, esmTokens: 0, bpeTokens: 0 };
  let peakRss = process.memoryUsage().rss;
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  try {
    let batch: FastaRecord[] = [];
    let mark = performance.now();
    for await (const rec of readFasta([fasta])) {
      batch.push(rec);
      if (batch.length === batchSize) {
        t.read += performance.now() - mark;
        processBatch(batch, chunk, tok, t, c);
        batch = [];
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
        mark = performance.now();
      }
    }
    t.read += performance.now() - mark;
    if (batch.length > 0) processBatch(batch, chunk, tok, t, c);
  } finally {
    rmSync(fasta, { force: true });
  }
  const wallS = (performance.now() - wall0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  if (c.reads !== reads) throw new Error(`read back ${c.reads} records, wrote ${reads}`);

  const calReads = Number(o["calibration-reads"]);
  const workload: Record<string, number> = {};
  for (const L of [150, 300, 500]) workload[`${L}`] = meanKeptFrames(calReads, L, L <= 300 ? 300 : 500, seed);

  const stageS = { read: t.read / 1000, frames: t.frames / 1000, esm_tokens: t.esm / 1000, bpe_tokens: t.bpe / 1000 };
  const totalS = stageS.read + stageS.frames + stageS.esm_tokens + stageS.bpe_tokens;
  const stages = Object.entries(stageS).map(([name, s]) => ({
    stage: name,
    seconds: s,
    reads_per_s: reads / s,
    share: s / totalS,
    ns_per_read: (s / reads) * 1e9,
  }));
  const result = {
    kind: "host",
    date: new Date().toISOString(),
    machine: machineInfo(),
    params: { reads, length, chunk_size: chunk, seed, batch: batchSize, tokenizer: o.tokenizer, fasta_mib: fastaBytes / 2 ** 20 },
    stages,
    total: {
      seconds: totalS,
      wall_s: wallS,
      reads_per_s: reads / totalS,
      reads_per_s_wall: reads / wallS,
      mbp_per_s: (reads * length) / totalS / 1e6,
      goal_reads_per_s: GOAL_READS_PER_S,
      goal_met: reads / totalS >= GOAL_READS_PER_S,
      // > 1 when the runtime's helper threads (GC, I/O) used a second core
      cpu_per_wall: (cpu.user + cpu.system) / 1e6 / wallS,
    },
    peak_rss_mib: peakRss / 2 ** 20,
    max_rss_mib_process: process.resourceUsage().maxRSS / 1024,
    per_read: {
      windows: c.windows / reads,
      kept_frames: c.frames / reads,
      esm_tokens: c.esmTokens / reads,
      bpe_tokens: c.bpeTokens / reads,
    },
    workload: { calibration_reads: calReads, kept_frames_per_read_by_length: workload },
    fasta_write_s: writeS,
  };

  mkdirSync(o.out!, { recursive: true });
  const stamp = result.date.slice(0, 19).replace(/[:T]/g, "-");
  const jsonPath = join(o.out!, `host-${stamp}.json`);
  writeFileSync(jsonPath, JSON.stringify(result, null, 2) + "\n");

  console.log(
    table(
      ["stage", "seconds", "reads/s", "ns/read", "share"],
      [
        ...stages.map((s) => [s.stage, s.seconds.toFixed(2), s.reads_per_s.toFixed(0), s.ns_per_read.toFixed(0), `${(100 * s.share).toFixed(1)}%`]),
        ["total", totalS.toFixed(2), result.total.reads_per_s.toFixed(0), ((totalS / reads) * 1e9).toFixed(0), "100%"],
      ],
    ),
  );
  console.log(
    `${reads} reads x ${length} bp, chunk ${chunk}: ${result.total.reads_per_s.toFixed(0)} reads/s on one thread ` +
      `(goal ${GOAL_READS_PER_S}: ${result.total.goal_met ? "met" : "NOT met"}); peak RSS ${result.peak_rss_mib.toFixed(0)} MiB; ` +
      `per read: ${result.per_read.kept_frames.toFixed(3)} kept frames, ${result.per_read.esm_tokens.toFixed(1)} ESM tokens, ` +
      `${result.per_read.bpe_tokens.toFixed(1)} BPE tokens`,
  );
  console.log(
    `workload kept frames/read: ${Object.entries(workload).map(([L, v]) => `${L} bp ${v.toFixed(3)}`).join(", ")}; ${result.machine.cpu}, Bun ${result.machine.bun}`,
  );
  console.log(`wrote ${jsonPath}`);
  return result;
}

if (import.meta.main) await hostBench(process.argv.slice(2));
