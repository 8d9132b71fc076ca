#!/usr/bin/env bun
/**
 * virnuc command line. Each command lives with its pipeline stage and is imported lazily,
 * so `virnuc tokenize` does not pay for loading the native library.
 */
import { cac } from "cac";
import { UserError, oneLine } from "./util/errors.ts";
import pkg from "../package.json" with { type: "json" };

const cli = cac("virnuc");
const verbose = process.argv.includes("--verbose");

cli.option("--verbose", "Print stack traces on errors");

const predictOptions = (c: ReturnType<typeof cli.command>) =>
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
    .option("--precision <p>", "CUDA precision: fp16 (fp8 not implemented yet); the CPU backend is fp32", { default: "fp16" })
    .option("--token-budget <n>", "Tokens per packed batch (default: chosen from free memory)")
    .option("--window-reads <n>", "Input records per part (the unit of resume and of work dealt to GPUs)", { default: 20000 })
    .option("--shard <i/N>", "Process only shard i of N (0-based; gather with virnuc merge)")
    .option("--resume", "Skip parts already finished in DIR, redo the rest")
    .option("--force", "Start over in a DIR that holds an earlier run")
    .option("--threads <n>", "CPU backend threads (default: all cores)")
    .option("--save-embeddings", "Also write the embeddings (see --embeddings-format)")
    .option("--embeddings-dtype <t>", "float32 | float16 for embeddings.arrow", { default: "float32" })
    .option("--embeddings-format <f>", "arrow | parquet: embeddings.arrow or embeddings.parquet", { default: "arrow" })
    .option("--no-progress", "No progress output")
    .option("--log-json <file>", "Write per-window telemetry as JSON lines");

predictOptions(cli.command("predict <...inputs>", "Identify viral reads (VirNucPro semantics)"))
  .option("--classifier <file>", "VirNucPro classifier .pth (default: 300_model.pth / 500_model.pth by chunk size)")
  .action(async (inputs: string[], opts) => (await import("./run/command.ts")).predictCommand(inputs, opts, "predict"));

predictOptions(cli.command("embed <...inputs>", "Write features only (DNABERT-S + ESM-2 embeddings)"))
  .action(async (inputs: string[], opts) => (await import("./run/command.ts")).predictCommand(inputs, opts, "embed"));

cli
  .command("merge <...dirs>", "Merge shard output directories (from --shard i/N) into one")
  .option("-o, --output <dir>", "Output directory (required)")
  .action(async (dirs: string[], opts) => (await import("./run/merge.ts")).mergeCommand(dirs, opts));

cli
  .command("frames <...inputs>", "Write VirNucPro's identified_nucleotide.fa and identified_protein.faa")
  .option("-o, --output <dir>", "Output directory (required)")
  .option("--chunk-size <n>", "Window size in bp", { default: 500 })
  .action(async (inputs: string[], opts) => (await import("./frames/command.ts")).framesCommand(inputs, opts));

cli
  .command("tokenize [file]", "Tokenize one sequence per line (FILE or - for stdin); print ids")
  .option("--model <m>", "esm | dnabert")
  .option("--tokenizer <file>", "tokenizer.json (dnabert; default: from the resolved DNABERT-S model)")
  .option("--dnabert <model>", "DNABERT-S model used to find tokenizer.json", { default: "zhihan1996/DNABERT-S" })
  .action(async (file: string | undefined, opts) =>
    (await import("./tokenize/command.ts")).tokenizeCommand(file, opts),
  );

cli
  .command("models <action> [...args]", "Model weights: list | resolve | inspect | verify | pull | random")
  .option("--arch <name>", "random: architecture (esm2_t6_8M_UR50D ... esm2_t36_3B_UR50D, dnabert-s, classifier, or tiny-*)")
  .option("--seed <n>", "random: seed", { default: 1 })
  .option("--dtype <t>", "random: f32 | f16 (default f16 for ESM-2 3B/15B, else f32)")
  .option("--tokenizer <file>", "random: tokenizer.json to copy into a dnabert model (default: a synthetic one)")
  .option("-o, --output <dir>", "random/pull: output directory")
  .option("--chunk-size <n>", "resolve/pull: which classifier (300 | 500)", { default: 500 })
  .option("--endpoint <url>", "pull: Hugging Face endpoint (default $HF_ENDPOINT or https://huggingface.co)")
  .option("--github <url>", "pull: base URL for the classifier files")
  .action(async (action: string, args: string[], opts) =>
    (await import("./models/command.ts")).modelsCommand(action, args, opts),
  );

cli
  .command("bench [mode]", "Benchmarks: host | engine | e2e (README: Performance)")
  .allowUnknownOptions()
  .action(async (mode: string | undefined) => {
    const { runBench } = await import("../bench/index.ts");
    await runBench(mode ?? "host", process.argv.slice(process.argv.indexOf("bench") + 2));
  });

cli.help();
cli.version(pkg.version);

async function main() {
  // A worker subprocess started by a multi-GPU / multi-worker run (src/run/workers.ts).
  if (process.argv[2] === "__worker") {
    await (await import("./run/worker.ts")).workerMain();
    return;
  }
  try {
    cli.parse(process.argv, { run: false });
    if (!cli.matchedCommand) {
      if (cli.args.length > 0) throw new UserError(`unknown command '${cli.args[0]}' (see virnuc --help)`);
      if (!cli.options.help && !cli.options.version) cli.outputHelp();
      return;
    }
    await cli.runMatchedCommand();
  } catch (err) {
    if (verbose && err instanceof Error) console.error(err.stack);
    console.error(`virnuc: error: ${oneLine(err)}`);
    process.exit(err instanceof UserError ? err.exitCode : 1);
  }
}

await main();
