/**
 * Inputs as users have them: FASTQ, FASTQ.gz, zstd, standard input, a named pipe and process
 * substitution each give the same VirNucPro files as the FASTA they hold (`virnuc frames`
 * against VirNucPro's own files, and `virnuc predict` with tiny random models); --resume on a
 * stream; compressions virnuc does not read.
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { CLI, REFERENCE, ROOT, modelArgs, outputsOf, runCli, tempDir, tinyModels } from "./helpers.ts";

// Every test runs the CLI as a subprocess: more than Bun's 5 s default on a busy machine.
setDefaultTimeout(120_000);

const FASTA = join(REFERENCE, "virnucpro/test_sequences.fa");
const EXPECTED = join(REFERENCE, "virnucpro/test_sequences_chunk300_identified");
const work = tempDir("inputs");
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The FASTA's records as 4-line FASTQ (qualities made up: they are ignored). */
function toFastq(fasta: string): string {
  const out: string[] = [];
  for (const block of fasta.split(">").slice(1)) {
    const [head, ...lines] = block.split("\n");
    const seq = lines.join("").trim();
    out.push(`@${head}\n${seq}\n+\n${"F".repeat(seq.length)}\n`);
  }
  return out.join("");
}

const text = readFileSync(FASTA, "utf8");
const fastq = toFastq(text);
const files = {
  fastq: join(work, "reads.fastq"),
  fastqGz: join(work, "reads.fq.gz"),
  fastqZst: join(work, "reads.fq.zst"),
  fastaZst: join(work, "reads.fa.zst"),
};
writeFileSync(files.fastq, fastq);
writeFileSync(files.fastqGz, gzipSync(fastq));
writeFileSync(files.fastqZst, Bun.zstdCompressSync(Buffer.from(fastq)));
writeFileSync(files.fastaZst, Bun.zstdCompressSync(Buffer.from(text)));

/** The CLI with bytes on its standard input. */
function runWithStdin(args: string[], stdin: Uint8Array) {
  const p = Bun.spawnSync([process.execPath, CLI, ...args], { cwd: ROOT, env: process.env, stdin, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

/** The CLI reading a named pipe that another process fills with `content`. */
function runWithFifo(args: (fifo: string) => string[], content: string) {
  const fifo = join(work, `fifo-${Math.random().toString(36).slice(2, 8)}`);
  expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
  const src = `${fifo}.src`;
  writeFileSync(src, content);
  const writer = Bun.spawn(["sh", "-c", `cat '${src}' > '${fifo}'`]);
  const r = runCli(args(fifo));
  writer.kill();
  return r;
}

function expectReferenceFrames(dir: string) {
  expect(readFileSync(join(dir, "identified_nucleotide.fa")).equals(readFileSync(`${EXPECTED}_nucleotide.fa`))).toBe(true);
  expect(readFileSync(join(dir, "identified_protein.faa")).equals(readFileSync(`${EXPECTED}_protein.faa`))).toBe(true);
}

describe("virnuc frames: every input form gives VirNucPro's files for the FASTA it holds", () => {
  const frames = (input: string, dir: string) => ["frames", input, "-o", dir, "--chunk-size", "300"];
  const cases: [string, (dir: string) => { code: number | null; stderr: string }][] = [
    ["the FASTA itself", (d) => runCli(frames(FASTA, d))],
    ["FASTQ", (d) => runCli(frames(files.fastq, d))],
    ["FASTQ.gz", (d) => runCli(frames(files.fastqGz, d))],
    ["zstd FASTQ", (d) => runCli(frames(files.fastqZst, d))],
    ["zstd FASTA", (d) => runCli(frames(files.fastaZst, d))],
    ["standard input (-), FASTQ.gz", (d) => runWithStdin(frames("-", d), gzipSync(fastq))],
    ["standard input (-), zstd FASTA", (d) => runWithStdin(frames("-", d), Bun.zstdCompressSync(Buffer.from(text)))],
    ["a named pipe, FASTQ", (d) => runWithFifo((f) => frames(f, d), fastq)],
    [
      "process substitution",
      (d) => {
        const p = Bun.spawnSync(["bash", "-c", `'${process.execPath}' '${CLI}' frames <(cat '${files.fastqGz}') -o '${d}' --chunk-size 300`], { cwd: ROOT, env: process.env, stderr: "pipe" });
        return { code: p.exitCode, stderr: p.stderr.toString() };
      },
    ],
  ];
  for (const [name, run] of cases)
    test(name, () => {
      const d = join(work, `frames-${name.replace(/\W+/g, "-")}`);
      const r = run(d);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expectReferenceFrames(d);
    });
});

describe("virnuc predict on streams (tiny random models)", () => {
  const args = (input: string, dir: string, extra: string[] = []) => ["predict", input, "-o", dir, "--chunk-size", "300", "--window-reads", "8", "--no-progress", ...extra, ...modelArgs()];
  let reference: Record<string, Buffer>;
  beforeAll(() => {
    tinyModels();
    const d = join(work, "predict-fasta");
    const r = runCli(args(FASTA, d));
    expect(r.code).toBe(0);
    reference = outputsOf(d);
    expect(Object.keys(reference).length).toBeGreaterThanOrEqual(5);
  }, 120_000);

  test("standard input (zstd FASTQ) and a named pipe (FASTQ) give the same files as the FASTA file", () => {
    const a = join(work, "predict-stdin");
    const r = runWithStdin(args("-", a), Bun.zstdCompressSync(Buffer.from(fastq)));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(outputsOf(a)).toEqual(reference);
    const b = join(work, "predict-fifo");
    const q = runWithFifo((f) => args(f, b), fastq);
    expect(q.code).toBe(0);
    expect(outputsOf(b)).toEqual(reference);
  }, 120_000);

  test("--resume on a stream: the same stream again resumes; a different one is refused clearly", () => {
    const d = join(work, "predict-resume");
    expect(runWithStdin(args("-", d), Buffer.from(fastq)).code).toBe(0);
    const again = runWithStdin(args("-", d, ["--resume"]), gzipSync(fastq));
    expect(again.code).toBe(0);
    expect(outputsOf(d)).toEqual(reference);
    const other = runWithStdin(args("-", d, ["--resume"]), Buffer.from(fastq.replace("@test_seq_9", "@renamed")));
    expect(other.code).toBe(1);
    expect(other.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^virnuc: error: --resume refused: the input records of part \d+ .* differ from the earlier run's$/)]);
  }, 120_000);

  test("a stream whose first record spans many reads: stdin (plain, gzip) gives the same files as the file with those bytes", () => {
    // The format check reads the stream's head before the models load; the reader must still get every byte.
    const long = text.replace(/^>(\S+)/, (m) => `${m} ${"description ".repeat(80_000)}`);
    const f = join(work, "long-header.fa");
    writeFileSync(f, long);
    const d = join(work, "predict-long-file");
    expect(runCli(args(f, d)).code).toBe(0);
    const want = outputsOf(d);
    for (const [name, bytes] of [["plain", Buffer.from(long)], ["gzip", gzipSync(long)]] as const) {
      const o = join(work, `predict-long-stdin-${name}`);
      const r = runWithStdin(args("-", o), bytes);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(outputsOf(o)).toEqual(want);
    }
  }, 120_000);

  test("a bad stream fails with its format error before any model is resolved or loaded, and makes no output directory", () => {
    const noModels = ["--esm", join(work, "no-esm"), "--dnabert", join(work, "no-dnabert"), "--classifier", join(work, "no-cls.pth"), "--device", "cpu", "--no-progress"];
    const bam = gzipSync(Buffer.from([0x42, 0x41, 0x4d, 0x01, 0x5d, 0, 0, 0, 0x40, 0x48, 0x44, 0x09]));
    const cases: [string, Uint8Array, string][] = [
      ["BAM", bam, "<stdin>:1: binary data (byte 0x01) in the input: not a FASTA or FASTQ text file (plain, gzip or zstd)"],
      ["bzip2", Buffer.from("BZh91AY&SY\u0000\u0001"), "<stdin> is bzip2-compressed, which virnuc does not read: decompress it in a pipe, e.g. `bzcat FILE | virnuc predict - -o DIR`"],
      ["xz", new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0, 1, 2]), "<stdin> is xz-compressed, which virnuc does not read: decompress it in a pipe, e.g. `xzcat FILE | virnuc predict - -o DIR`"],
      ["binary", new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), "<stdin>:1: binary data (byte 0x7f) in the input: not a FASTA or FASTQ text file (plain, gzip or zstd)"],
      ["empty", new Uint8Array(0), "no records in <stdin> (the input is empty or holds only blank lines)"],
      ["zstd text before the first header", Bun.zstdCompressSync(Buffer.from("ACGT\n>r\nAC\n")), "<stdin>:1: text before the first '>' header: not a FASTA file (FASTA starts with '>', FASTQ with '@')"],
    ];
    for (const [name, bytes, message] of cases)
      for (const command of ["predict", "embed"]) {
        const o = join(work, `bad-stream-${command}-${name.replace(/\W+/g, "-")}`);
        const models = command === "embed" ? noModels.filter((a, i) => a !== "--classifier" && noModels[i - 1] !== "--classifier") : noModels;
        const r = runWithStdin([command, "-", "-o", o, ...models], bytes);
        expect(r.stderr, `${command} ${name}`).toBe(`virnuc: error: ${message}\n`);
        expect(r.code).toBe(1);
        expect(existsSync(o)).toBe(false);
      }
    // The same models with a good stream: the check passes it, and the run stops at the missing model.
    const ok = runWithStdin(["predict", "-", "-o", join(work, "good-stream-no-models"), ...noModels], gzipSync(fastq));
    expect(ok.code).toBe(1);
    expect(ok.stderr).toMatch(/^virnuc: error: --esm \S*no-esm: /);
    // A named pipe is checked the same way.
    const q = runWithFifo((f) => ["predict", f, "-o", join(work, "bad-fifo"), ...noModels], "@r1\nACGT\n+\nII\n");
    expect(q.code).toBe(1);
    expect(q.stderr).toMatch(/^virnuc: error: \S+fifo-\w+:4: record 'r1' has 2 quality values for 4 bases/);
  }, 120_000);

  test("bzip2 input: one error line naming the format and a pipe that works, before any model loads", () => {
    const bz = join(work, "reads.fa.bz2");
    writeFileSync(bz, Buffer.from("BZh91AY&SY\u0000\u0001"));
    const r = runCli(["predict", bz, "-o", join(work, "bz"), "--esm", "/nonexistent"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`virnuc: error: ${bz} is bzip2-compressed, which virnuc does not read: decompress it in a pipe, e.g. \`bzcat ${bz} | virnuc predict - -o DIR\`\n`);
  });
});
