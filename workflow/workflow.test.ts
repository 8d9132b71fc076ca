/**
 * The Snakemake workflow on two tiny samples with random tiny models: shards + merge give each
 * sample exactly what a direct `virnuc predict` writes, the cohort holds both samples, a rerun
 * after failed jobs redoes only those (and the shards continue with --resume), and the SLURM
 * profile submits through a stand-in sbatch.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { CLI, modelArgs, outputsOf, runCli, syntheticFasta, tempDir, tinyModels } from "../test/helpers.ts";
import { readParquet } from "../src/output/parquet.ts";


const SNAKEFILE = resolve(import.meta.dir, "Snakefile");
const PROFILE = resolve(import.meta.dir, "profiles/slurm");
const STAND_IN = resolve(import.meta.dir, "test");
const SHARDS = 3;
const WINDOW_READS = 12;

const snakemake = Bun.which("snakemake");
let root: string;
let sheet: string;
const direct: Record<string, Record<string, Buffer>> = {};
const directFiles: Record<string, string[]> = {};
const samples: Record<string, string[]> = {};

function visibleFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => !f.startsWith(".")).sort();
}

function runSnakemake(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawnSync(["snakemake", "-s", SNAKEFILE, ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: p.exitCode, out: p.stdout.toString() + p.stderr.toString() };
}

function config(outdir: string, extra: Record<string, string> = {}): string[] {
  const m = tinyModels();
  const kv: Record<string, string> = {
    samples: sheet,
    outdir,
    shards: String(SHARDS),
    chunk_size: "300",
    esm: m.esm,
    dnabert: m.dnabert,
    classifier: m.classifier,
    device: "cpu",
    threads: "1",
    extra: `--window-reads ${WINDOW_READS}`,
    ...extra,
  };
  return ["--config", ...Object.entries(kv).map(([k, v]) => `${k}=${v}`)];
}

/** The job counts of Snakemake's "Job stats" table. */
function jobStats(out: string): Record<string, number> {
  const stats: Record<string, number> = {};
  const at = out.lastIndexOf("Job stats:");
  if (at < 0) return stats;
  for (const line of out.slice(at).split("\n").slice(1)) {
    const m = /^(\w+)\s+(\d+)(\s+\d+)*$/.exec(line.trim());
    if (m?.[1] === "total") break;
    if (m) stats[m[1]] = Number(m[2]);
  }
  return stats;
}

beforeAll(() => {
  if (!snakemake) throw new Error("snakemake is not installed (apt-get install -y snakemake; .ci/run installs it)");
  root = tempDir("workflow");
  tinyModels();
  // Sample A: plain FASTA, 40 records; sample B: 30 records in two files (FASTA and compressed).
  const a = join(root, "a.fa");
  syntheticFasta(a, 40, 150, 31);
  const b1 = join(root, "b1.fa");
  syntheticFasta(b1, 14, 320, 32);
  const b2plain = join(root, "b2.fa");
  syntheticFasta(b2plain, 16, 150, 33);
  // sample B's second file is FASTQ.gz (4-line records, qualities ignored)
  const fa = readFileSync(b2plain, "utf8").trim().split("\n");
  const fq: string[] = [];
  for (let i = 0; i < fa.length; i += 2) fq.push(`@${fa[i].slice(1)}`, fa[i + 1], "+", "I".repeat(fa[i + 1].length));
  const b2 = join(root, "b2.fq.gz");
  writeFileSync(b2, gzipSync(fq.join("\n") + "\n"));
  rmSync(b2plain);
  samples.A = [a];
  samples.B = [b1, b2];
  sheet = join(root, "samples.tsv");
  // Relative paths are relative to the sheet's directory.
  writeFileSync(sheet, `sample\tpath\nA\ta.fa\nB\tb1.fa,${b2}\n`);
  for (const [name, inputs] of Object.entries(samples)) {
    const d = join(root, `direct-${name}`);
    const r = runCli(["predict", ...inputs, "-o", d, "--chunk-size", "300", "--window-reads", String(WINDOW_READS), "--no-progress", ...modelArgs()]);
    if (r.code !== 0) throw new Error(`direct predict ${name}: ${r.stderr}`);
    direct[name] = outputsOf(d);
    directFiles[name] = visibleFiles(d);
  }
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

function expectSamplesMatchDirect(outdir: string) {
  for (const name of Object.keys(samples)) {
    const d = join(outdir, name);
    expect(visibleFiles(d)).toEqual(directFiles[name]);
    expect(outputsOf(d)).toEqual(direct[name]);
  }
}

describe("workflow/Snakefile", () => {
  test(
    "shards + merge per sample equal a direct predict; the cohort holds both samples; a rerun after failed jobs redoes only them",
    () => {
      const outdir = join(root, "out");
      // A virnuc that fails shard 1 of every sample after computing it, while the flag file exists.
      const flag = join(root, "fail-shard-1");
      writeFileSync(flag, "");
      const wrapper = join(root, "virnuc-flaky");
      writeFileSync(
        wrapper,
        `#!/usr/bin/env bash\n"${process.execPath}" "${CLI}" "$@"; rc=$?\n` +
          `case " $* " in *" --shard 1/${SHARDS} "*) if [ -e "${flag}" ]; then echo "injected failure" >&2; exit 1; fi;; esac\nexit $rc\n`,
      );
      chmodSync(wrapper, 0o755);

      const first = runSnakemake(["--cores", "2", "--keep-going", ...config(outdir, { virnuc: wrapper })]);
      expect(first.code).not.toBe(0);
      expect(first.out).toMatch(/Error in rule shard/);
      const doneMarkers = (s: string) => readdirSync(join(outdir, "shards", s)).filter((f) => /^\d+-of-\d+\.done$/.test(f)).sort();
      for (const s of ["A", "B"]) expect(doneMarkers(s)).toEqual([`0-of-${SHARDS}.done`, `2-of-${SHARDS}.done`]);
      expect(existsSync(join(outdir, "A", "run.json"))).toBe(false);
      // The failed shards' parts are on disk; remember them to see that the rerun keeps them.
      const partsOf = (s: string) => join(outdir, "shards", s, `1-of-${SHARDS}`, ".virnuc", "parts");
      const before = Object.fromEntries(
        ["A", "B"].map((s) => [s, readdirSync(partsOf(s)).filter((f) => f.endsWith(".json")).map((f) => [f, statSync(join(partsOf(s), f)).mtimeMs])]),
      );
      for (const s of ["A", "B"]) expect(before[s].length).toBeGreaterThan(0);
      const markerTime = statSync(join(outdir, "shards", "A", `0-of-${SHARDS}.done`)).mtimeMs;

      rmSync(flag);
      const second = runSnakemake(["--cores", "2", ...config(outdir, { virnuc: wrapper })]);
      expect(second.code).toBe(0);
      // Only the failed shards, then the merges and the cohort.
      expect(jobStats(second.out)).toEqual({ all: 1, cohort: 1, merge: 2, shard: 2 });
      expect(statSync(join(outdir, "shards", "A", `0-of-${SHARDS}.done`)).mtimeMs).toBe(markerTime);
      // Inside the rerun shard job, --resume kept every finished part.
      for (const s of ["A", "B"])
        for (const [f, t] of before[s]) expect(statSync(join(partsOf(s), f as string)).mtimeMs).toBe(t as number);

      expectSamplesMatchDirect(outdir);
      // Sample A's plain FASTA was indexed once, beside it, before its shards ran; they only seeked.
      expect(existsSync(join(root, "a.fa.virnuc-idx"))).toBe(true);
      expect(jobStats(first.out).index).toBe(2);
      expect(readFileSync(join(outdir, "logs", "B", `shard-0-of-${SHARDS}.log`), "utf8")).toMatch(/gzip-compressed and cannot be seeked/);

      const seqs = readParquet(readFileSync(join(outdir, "cohort", "sequences.parquet")));
      expect(seqs.schema.fields[0].name).toBe("sample");
      const names = [...seqs.getChild("sample")!] as string[];
      expect(names.filter((n) => n === "A").length).toBe(40);
      expect(names.filter((n) => n === "B").length).toBe(30);
      const preds = readParquet(readFileSync(join(outdir, "cohort", "predictions.parquet")));
      expect(new Set(preds.getChild("sample")!)).toEqual(new Set(["A", "B"]));
      const summary = readFileSync(join(outdir, "cohort", "cohort_summary.tsv"), "utf8").trim().split("\n");
      expect(summary[0]).toBe("sample\treads\tviral_sequences\tviral_windows");
      expect(summary.slice(1).map((l) => l.split("\t").slice(0, 2))).toEqual([["A", "40"], ["B", "30"]]);

      // Everything is up to date now.
      const third = runSnakemake(["--cores", "2", "-n", ...config(outdir, { virnuc: wrapper })]);
      expect(third.code).toBe(0);
      expect(third.out).toMatch(/Nothing to be done/);
    },
    240_000,
  );

  test(
    "the SLURM profile submits every job through sbatch (a stand-in that runs them locally)",
    () => {
      // One sample, 2 shards: every job of a cluster run starts Snakemake again, which is slow.
      const outdir = join(root, "out-slurm");
      const log = join(root, "sbatch.log");
      const sheetA = join(root, "samples-a.tsv");
      writeFileSync(sheetA, `sample\tpath\nA\t${samples.A[0]}\n`);
      const r = runSnakemake(
        ["--profile", PROFILE, "--jobs", "4", "--latency-wait", "5", ...config(outdir, { shards: "2", samples: sheetA })],
        { PATH: `${STAND_IN}:${process.env.PATH}`, SBATCH_LOG: log },
      );
      if (r.code !== 0) {
        const logs = existsSync(join(root, "slurm-logs")) ? readdirSync(join(root, "slurm-logs")).map((f) => readFileSync(join(root, "slurm-logs", f), "utf8")) : [];
        throw new Error(`snakemake --profile failed:\n${r.out.slice(-4000)}\n${logs.join("\n").slice(-4000)}`);
      }
      const submissions = readFileSync(log, "utf8").trim().split("\n");
      // 1 index, 2 shards, 1 merge, 1 cohort ('all' runs locally).
      expect(submissions.length).toBe(5);
      expect(submissions.filter((l) => l.includes("--job-name=virnuc-shard")).length).toBe(2);
      for (const l of submissions) expect(l).toMatch(/--parsable .*--cpus-per-task=1 --gres=gpu:0 --mem=\d+ --time=\d+ --output=slurm-logs\//);
      expect(visibleFiles(join(outdir, "A"))).toEqual(directFiles.A);
      expect(outputsOf(join(outdir, "A"))).toEqual(direct.A);
      expect(readFileSync(join(outdir, "cohort", "cohort_summary.tsv"), "utf8")).toMatch(/^sample\treads\tviral_sequences\tviral_windows\nA\t40\t\d+\t\d+\n$/);
    },
    240_000,
  );

  test("a bad sample sheet is one clear error", () => {
    const bad = join(root, "bad.tsv");
    writeFileSync(bad, "sample\tpath\nA\tmissing.fa\n");
    let r = runSnakemake(["--cores", "1", "-n", ...config(join(root, "out-bad")).map((a) => (a === `samples=${sheet}` ? `samples=${bad}` : a))]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/bad\.tsv:2: input .*missing\.fa of sample 'A' does not exist/);
    writeFileSync(bad, "name\tfile\nA\ta.fa\n");
    r = runSnakemake(["--cores", "1", "-n", ...config(join(root, "out-bad")).map((a) => (a === `samples=${sheet}` ? `samples=${bad}` : a))]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/the first line must be the header 'sample<TAB>path'/);
    r = runSnakemake(["--cores", "1", "-n", ...config(join(root, "out-bad"), { device: "gpu" })]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/'gpu' is not one of \['cpu', 'cuda'\]/);
  }, 120_000);
});
