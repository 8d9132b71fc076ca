/**
 * The benchmarks' flags, in one place: each mode parses its arguments with these specs and
 * `virnuc bench MODE --help` prints them (src/cli.ts), so the two cannot drift apart.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export interface BenchFlag {
  type: "string" | "boolean";
  default?: string | boolean;
  multiple?: boolean;
  /** the value's name in the help (`--reads <n>`) */
  value?: string;
  help: string;
  /** the default as the help says it, where the value itself reads badly (a long path) */
  shownDefault?: string;
}

export interface BenchMode {
  summary: string;
  flags: Record<string, BenchFlag>;
}

const REPO = resolve(import.meta.dir, "..");
const TOKENIZER = resolve(REPO, "test/fixtures/reference/dnabert-s/tokenizer.json");
const TOKENIZER_SHOWN = "test/fixtures/reference/dnabert-s/tokenizer.json";

const common = (out: string): Record<string, BenchFlag> => ({
  "work-dir": { type: "string", default: join(tmpdir(), "virnuc-bench"), value: "dir", help: "Scratch directory", shownDefault: "$TMPDIR/virnuc-bench" },
  out: { type: "string", default: out, value: "dir", help: "Where the JSON result goes", shownDefault: "bench/results" },
});

export const BENCH_MODES = {
  host: {
    summary: "Host side only: FASTA -> windows -> frames -> tokens, reads/s (the default mode)",
    flags: {
      reads: { type: "string", default: "1000000", value: "n", help: "Synthetic reads" },
      length: { type: "string", default: "150", value: "bp", help: "Read length" },
      "chunk-size": { type: "string", value: "n", help: "Window size (default: 300 for reads up to 300 bp, else 500)" },
      seed: { type: "string", default: "11", value: "n", help: "Workload seed" },
      batch: { type: "string", default: "4096", value: "n", help: "Reads per batch" },
      tokenizer: { type: "string", default: TOKENIZER, value: "file", help: "DNABERT-S tokenizer.json", shownDefault: TOKENIZER_SHOWN },
      "calibration-reads": { type: "string", default: "100000", value: "n", help: "Reads for the frame-rate calibration" },
      ...common(join(REPO, "bench/results")),
    },
  },
  engine: {
    summary: "Encoders alone on packed batches: tokens/s by read length and token budget",
    flags: {
      esm: { type: "string", value: "dir", help: "ESM-2 model (default: a random ESM-2 3B)" },
      dnabert: { type: "string", value: "dir", help: "DNABERT-S model (default: a random DNABERT-S)" },
      tokenizer: { type: "string", value: "file", help: "DNABERT-S tokenizer.json for the random model" },
      reads: { type: "string", default: "6000", value: "n", help: "Reads per case" },
      lengths: { type: "string", default: "150,300,500", value: "list", help: "Read lengths" },
      budgets: { type: "string", default: "8192,16384,32768,65536", value: "list", help: "ESM-2 token budgets" },
      "dnabert-budgets": { type: "string", default: "16384,65536", value: "list", help: "DNABERT-S token budgets" },
      repeats: { type: "string", default: "3", value: "n", help: "Repeats per case" },
      precision: { type: "string", default: "fp16", value: "list", help: "fp16 | fp8 | fp32, or several (fp16,fp8)" },
      device: { type: "string", default: "cuda", value: "dev", help: "cuda | cpu" },
      peers: { type: "boolean", default: false, help: "Also run the PyTorch peers (scripts/bench/peers.py)" },
      "dnabert-remote-code": { type: "string", value: "file", help: "bert_layers.py for the PyTorch DNABERT-S peer" },
      python: { type: "string", default: "python3", value: "exe", help: "Python for the peers" },
      ...common("bench/results"),
    },
  },
  e2e: {
    summary: "virnuc predict end to end on synthetic reads, optionally on several GPU sets",
    flags: {
      reads: { type: "string", default: "1000000", value: "n", help: "Synthetic reads" },
      length: { type: "string", default: "150", value: "bp", help: "Read length" },
      "chunk-size": { type: "string", default: "300", value: "n", help: "Window size" },
      "gpu-sets": { type: "string", multiple: true, value: "set", help: "GPU set to run on, e.g. 0 or 0,1 (repeatable)" },
      device: { type: "string", default: "cuda", value: "dev", help: "cuda | cpu" },
      esm: { type: "string", value: "dir", help: "ESM-2 model (default: a random ESM-2 3B)" },
      dnabert: { type: "string", value: "dir", help: "DNABERT-S model (default: a random DNABERT-S)" },
      classifier: { type: "string", value: "file", help: "Classifier (default: a random one)" },
      tokenizer: { type: "string", value: "file", help: "DNABERT-S tokenizer.json for the random model" },
      "token-budget": { type: "string", value: "n", help: "Tokens per packed batch" },
      precision: { type: "string", default: "fp16", value: "p", help: "fp16 | fp8" },
      "sample-reads": { type: "string", default: "50000", value: "n", help: "Reads of the embedding-only rate measured beside the run" },
      "cold-hash": {
        type: "boolean",
        default: false,
        help: "Time the first run's sha256 of model files outside the Hugging Face cache too (once per checkpoint; by default they are hashed before timing, as every later run finds them)",
      },
      ...common("bench/results"),
    },
  },
  packing: {
    summary: "Host only: packing efficiency of the token-budget batches on VirNucPro-shaped workloads",
    flags: {
      lengths: { type: "string", default: "150,300,500", value: "list", help: "Read lengths" },
      parts: { type: "string", default: "20000,6000,700", value: "list", help: "Reads per part, one per length" },
      budgets: { type: "string", default: "65536,8192,4096", value: "list", help: "Token budgets" },
      tokenizer: { type: "string", default: TOKENIZER, value: "file", help: "DNABERT-S tokenizer.json", shownDefault: TOKENIZER_SHOWN },
      out: { type: "string", default: "bench/results", value: "dir", help: "Where the JSON result goes" },
    },
  },
} satisfies Record<string, BenchMode>;

export type BenchModeName = keyof typeof BENCH_MODES;

/** Parsed flags: strings (a repeatable flag: string[]), booleans for switches. */
export type BenchValues = Record<string, any>;

/** Parses a benchmark's arguments with its spec; unknown flags are an error (exit 2 at the CLI). */
export function parseBenchArgs(mode: BenchModeName, args: string[]): BenchValues {
  const flags: Record<string, BenchFlag> = BENCH_MODES[mode].flags;
  const options = Object.fromEntries(
    Object.entries(flags).map(([name, f]) => [name, { type: f.type, multiple: f.multiple, ...(f.default !== undefined ? { default: f.default } : {}) }]),
  );
  return parseArgs({ args, options: options as ParseArgsConfig["options"] }).values;
}

/** The help line of a flag: "--reads <n>" and "Synthetic reads (default: 1000000)". */
export function flagHelp(name: string, f: BenchFlag): [string, string] {
  const shown = f.shownDefault ?? (typeof f.default === "string" ? f.default : undefined);
  return [f.type === "boolean" ? `--${name}` : `--${name} <${f.value ?? "value"}>`, shown && !f.help.includes("default:") ? `${f.help} (default: ${shown})` : f.help];
}
