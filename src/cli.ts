#!/usr/bin/env bun
/**
 * virnuc command line. Each command lives with its pipeline stage and is imported lazily,
 * so `virnuc tokenize` does not pay for loading the native library. Commands with sub-actions
 * (`models`, `bench`) dispatch to a cac instance of their own, so each sub-action has its own
 * usage, options and `--help`.
 *
 * Exit codes: 0 ok, 1 error, 2 usage (unknown command or option, missing argument),
 * 130 / 143 interrupted (SIGINT / SIGTERM).
 */
import { cac, type CAC } from "cac";
import { UserError, UsageError, oneLine } from "./util/errors.ts";
import { BENCH_MODES, flagHelp, type BenchMode, type BenchModeName } from "../bench/flags.ts";

const verbose = process.argv.includes("--verbose");
/** cac reads a lone `-` as an option; it is standard input: carried through parsing as this token. */
const STDIN_TOKEN = "\u0000stdin";

type Command = ReturnType<CAC["command"]>;

function needOutput(command: string, opts: { output?: unknown }) {
  if (!opts.output || typeof opts.output !== "string" || opts.output === STDIN_TOKEN)
    throw new UsageError(`${command}: -o DIR is required (see virnuc ${command} --help)`);
}

const cli = cac("virnuc");
cli.option("--verbose", "Print stack traces on errors");
cli.option("-v, --version", "Print the versions of virnuc, libvirnuc (its build) and Bun");

const predictOptions = (c: Command) =>
  c
    .option("-o, --output <dir>", "Output directory (required)")
    .option("--chunk-size <n>", "Window size in bp (VirNucPro: 300 or 500)", { default: 500 })
    .option("--esm <model>", "ESM-2 model: Hub id, directory or fair-esm .pt", {
      default: "facebook/esm2_t36_3B_UR50D",
    })
    .option("--dnabert <model>", "DNABERT-S model: Hub id or directory", { default: "zhihan1996/DNABERT-S" })
    .option("--tokenizer <file>", "DNABERT-S tokenizer.json (default: the one in the DNABERT-S model directory)")
    .option("--device <dev>", "auto | cpu | cuda | cuda:N", { default: "auto" })
    .option("--gpus <list>", "GPUs to use, e.g. 0,1 (default: every visible GPU)")
    .option("--workers <n>", "CPU worker subprocesses (CPU device)")
    .option("--precision <p>", "CUDA precision: fp16, or fp8 (ESM-2 in E4M3 on sm_89+; DNABERT-S stays fp16); the CPU backend is fp32", { default: "fp16" })
    .option("--token-budget <n>", "Tokens per packed batch (default: chosen from free memory)")
    .option("--window-reads <n>", "Input records per part (the unit of resume and of work dealt to GPUs)", { default: 20000 })
    .option("--shard <i/N>", "Process only shard i of N (0-based; gather with virnuc merge)")
    .option("--resume", "Skip parts already finished in DIR, redo the rest (a stream: give the same stream again)")
    .option("--force", "Start over in a DIR that holds an earlier run")
    .option("--threads <n>", "CPU backend threads (default: all cores)")
    .option("--save-embeddings", "Also write the embeddings (see --embeddings-format)")
    .option("--embeddings-dtype <t>", "float32 | float16 for embeddings.arrow", { default: "float32" })
    .option("--embeddings-format <f>", "arrow | parquet: embeddings.arrow or embeddings.parquet", { default: "arrow" })
    .option("--no-progress", "No progress output")
    .option("--log-json <file>", "Write per-window telemetry as JSON lines");

const INPUTS = "INPUTS: FASTA or FASTQ files (plain, gzip or zstd, told by content), - for standard input, named pipes";

predictOptions(cli.command("predict <...inputs>", "Identify viral reads (VirNucPro semantics)"))
  .usage(`predict <...inputs> -o DIR [options]\n\n  ${INPUTS}`)
  .option("--classifier <file>", "VirNucPro classifier .pth (default: 300_model.pth / 500_model.pth by chunk size)")
  .option("--no-report", "Do not write DIR/report.html")
  .option(
    "--recheck-margin <m>",
    "With --precision fp8: frames whose virus score is within m of 0.5, and every frame of a window whose largest virus and others scores are within 2m, are embedded again in fp16 and classified again: calls then match fp16's wherever fp8 moved no score by m (default 0: off)",
  )
  .action(async (inputs: string[], opts) => {
    needOutput("predict", opts);
    await (await import("./run/command.ts")).predictCommand(inputs, opts, "predict");
  });

predictOptions(cli.command("embed <...inputs>", "Write features only (DNABERT-S + ESM-2 embeddings)"))
  .usage(`embed <...inputs> -o DIR [options]\n\n  ${INPUTS}`)
  .action(async (inputs: string[], opts) => {
    needOutput("embed", opts);
    await (await import("./run/command.ts")).predictCommand(inputs, opts, "embed");
  });

cli
  .command("merge <...dirs>", "Merge shard output directories (from --shard i/N) into one")
  .usage("merge <...dirs> -o DIR")
  .option("-o, --output <dir>", "Output directory (required)")
  .option("--no-report", "Do not write DIR/report.html (predict runs)")
  .action(async (dirs: string[], opts) => {
    needOutput("merge", opts);
    await (await import("./run/merge.ts")).mergeCommand(dirs, opts);
  });

cli
  .command("report <...dirs>", "Rebuild DIR/report.html from a finished output directory, or one cohort page from several (-o FILE)")
  .option("-o, --output <file>", "Where to write the page (default DIR/report.html; required for several DIRs)")
  .action(async (dirs: string[], opts) => (await import("./report/report.ts")).reportCommand(dirs, opts));

cli
  .command("cohort [...dirs]", "One table over many samples' runs: sequences/predictions.parquet with a sample column, cohort_summary.tsv")
  .option("--sample <name=dir>", "A sample's run directory, named (repeat; plain DIR arguments are named by their last component)")
  .option("-o, --output <dir>", "Output directory (required)")
  .action(async (dirs: string[], opts) => (await import("./cohort/command.ts")).cohortCommand(dirs, opts));

cli
  .command("index <...inputs>", "Record index of plain or bgzip FASTA/FASTQ files, so that --shard runs read only their parts")
  .option("-o, --output <dir>", "Where to keep an index that cannot be written beside its input (default: .)")
  .action(async (inputs: string[], opts) => (await import("./fasta/index.ts")).indexCommand(inputs, opts));

cli
  .command("frames <...inputs>", "Write VirNucPro's identified_nucleotide.fa and identified_protein.faa")
  .usage(`frames <...inputs> -o DIR [--chunk-size N]\n\n  ${INPUTS}`)
  .option("-o, --output <dir>", "Output directory (required)")
  .option("--chunk-size <n>", "Window size in bp", { default: 500 })
  .action(async (inputs: string[], opts) => {
    needOutput("frames", opts);
    await (await import("./frames/command.ts")).framesCommand(inputs, opts);
  });

cli
  .command("tokenize [file]", "Tokenize one sequence per line (FILE or - for stdin); print ids")
  .option("--model <m>", "esm | dnabert")
  .option("--tokenizer <file>", "tokenizer.json (dnabert; default: from the resolved DNABERT-S model)")
  .option("--dnabert <model>", "DNABERT-S model used to find tokenizer.json", { default: "zhihan1996/DNABERT-S" })
  .action(async (file: string | undefined, opts) =>
    (await import("./tokenize/command.ts")).tokenizeCommand(file, opts),
  );

// Listed here for `virnuc --help`; run by their own cac instances (GROUPS below).
cli.command("models <action> [...args]", "Model weights: list | resolve | inspect | verify | pull | random");
cli.command("bench [mode] [...args]", "Benchmarks: host | engine | e2e | packing (README: Performance)");

/** `virnuc models <action>`: each action with its own options. */
function modelsCli(): CAC {
  const m = cac("virnuc models");
  m.usage("<action> [options]").option("--verbose", "Print stack traces on errors");
  const run = (action: string) => async (...a: unknown[]) => {
    const opts = a.pop() as Record<string, unknown>;
    const args = a.flat().filter((x): x is string => typeof x === "string");
    await (await import("./models/command.ts")).modelsCommand(action, args, opts);
  };
  m.command("list", "Where the models are: defaults, Hugging Face cache, torch hub, classifiers").action(run("list"));
  m.command("resolve [kind] [spec]", "Print the file or directory a model spec resolves to (kind: esm | dnabert | classifier)")
    .option("--chunk-size <n>", "Which classifier (300 | 500)", { default: 500 })
    .action(run("resolve"));
  m.command("inspect <path>", "Print a model file's or directory's tensors, dtypes and config").action(run("inspect"));
  m.command("verify [...targets]", "Check downloaded files against their published hashes (default: the default models)").action(run("verify"));
  m.command("pull [...ids]", "Download models (resumable, verified); default: ESM-2 3B, DNABERT-S and both classifiers")
    .option("-o, --output <dir>", "Download into DIR (Hugging Face cache layout) instead of the cache")
    .option("--endpoint <url>", "Hugging Face endpoint (default $HF_ENDPOINT or https://huggingface.co)")
    .option("--github <url>", "Base URL for the classifier files")
    .action(run("pull"));
  m.command("random", "Write a seeded random-weight model of a named architecture (benchmarks, tests)")
    .option("--arch <name>", "Architecture: esm2_t6_8M_UR50D ... esm2_t36_3B_UR50D, dnabert-s, classifier, or tiny-*")
    .option("--seed <n>", "Seed", { default: 1 })
    .option("--dtype <t>", "f32 | f16 (default f16 for ESM-2 3B/15B, else f32)")
    .option("--outliers", "ESM-2 with a few 20-50x LayerNorm gain channels (as real weights have)")
    .option("--tokenizer <file>", "tokenizer.json to copy into a dnabert model (default: a synthetic one)")
    .option("-o, --output <dir>", "Output directory (required)")
    .action(run("random"));
  return m;
}

/** `virnuc bench <mode>`: each mode's help comes from the flags it parses (bench/flags.ts). */
function benchCli(rest: string[]): CAC {
  const b = cac("virnuc bench");
  b.usage(`[mode] [options]   (mode: ${Object.keys(BENCH_MODES).join(" | ")}; default host)`).option("--verbose", "Print stack traces on errors");
  for (const [mode, spec] of Object.entries(BENCH_MODES) as [BenchModeName, BenchMode][]) {
    const c = b.command(mode, spec.summary).allowUnknownOptions();
    for (const [name, flag] of Object.entries(spec.flags)) c.option(...flagHelp(name, flag));
    c.action(async () => {
      const { runBench } = await import("../bench/index.ts");
      await runBench(mode, rest.slice(rest.indexOf(mode) + 1));
    });
  }
  return b;
}

/** Commands whose first argument is an action with its own cac instance. */
const GROUPS: Record<string, (rest: string[]) => CAC> = { models: () => modelsCli(), bench: (rest) => benchCli(rest) };

function helpRequested(c: CAC): boolean {
  return !!c.options.help;
}

/** Parses and runs argv (after `bun src/cli.ts`) with `c`; usage problems become UsageErrors. */
async function runCli(c: CAC, argv: string[], what: string): Promise<void> {
  c.help();
  try {
    c.parse(["bun", what, ...argv], { run: false });
  } catch (err) {
    throw usage(err, what);
  }
  if (helpRequested(c)) return; // cac printed the help
  if (!c.matchedCommand) {
    if (c.args.length > 0) throw new UsageError(`unknown ${what === "virnuc" ? "command" : "action"} '${c.args[0]}' (see ${what} --help)`);
    c.outputHelp();
    return;
  }
  c.args = c.args.map((a) => (a === STDIN_TOKEN ? "-" : a)) as typeof c.args;
  let ran: unknown;
  try {
    ran = c.runMatchedCommand();
  } catch (err) {
    throw usage(err, `${what} ${c.matchedCommandName}`);
  }
  await ran;
}

function usage(err: unknown, what: string): unknown {
  if (err instanceof Error && err.name === "CACError") return new UsageError(`${err.message.replaceAll(STDIN_TOKEN, "-")} (see ${what} --help)`);
  return err;
}

async function main() {
  // `virnuc ... | head`: a reader that goes away is not an error.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
  // A worker subprocess started by a multi-GPU / multi-worker run (src/run/workers.ts).
  if (process.argv[2] === "__worker") {
    await (await import("./run/worker.ts")).workerMain();
    return;
  }
  const argv = process.argv.slice(2).map((a) => (a === "-" ? STDIN_TOKEN : a));
  try {
    const group = GROUPS[argv[0]];
    if (group) {
      let rest = argv.slice(1);
      // `virnuc bench [flags]` runs the host benchmark, as before.
      if (argv[0] === "bench" && (rest.length === 0 || (rest[0].startsWith("-") && !["-h", "--help"].includes(rest[0])))) rest = ["host", ...rest];
      await runCli(group(rest), rest, `virnuc ${argv[0]}`);
      return;
    }
    if (argv[0] === "-v" || argv[0] === "--version" || (argv.length > 0 && argv.every((a) => a === "--version" || a === "--verbose"))) {
      process.stdout.write((await import("./version.ts")).versionText() + "\n");
      return;
    }
    await runCli(cli, argv, "virnuc");
  } catch (err) {
    if (verbose && err instanceof Error) console.error(err.stack);
    const code = exitCode(err);
    console.error(`virnuc: error: ${oneLine(err)}`);
    process.exit(code);
  }
}

function exitCode(err: unknown): number {
  if (err instanceof UserError) return err.exitCode;
  const code = (err as { code?: unknown })?.code;
  // node:util parseArgs (the benchmarks' flags)
  if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_")) return 2;
  return 1;
}

await main();
