/**
 * `virnuc frames` against VirNucPro's own intermediate files (test/fixtures/reference/virnucpro):
 * byte-identical identified_nucleotide.fa / identified_protein.faa for every listed case.
 */
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { tmpdir } from "node:os";
import { gzipSync } from "node:zlib";
import { readFasta } from "../src/fasta/reader.ts";
import { windowsOf } from "../src/frames/windows.ts";
import { framesCommand, NUCLEOTIDE_FILE, PROTEIN_FILE } from "../src/frames/command.ts";
import { UserError } from "../src/util/errors.ts";

// subprocesses and heavy checks on a busy machine take longer than the 5 s default (bunfig has no such key)
setDefaultTimeout(120_000);

const ROOT = resolve(import.meta.dir, "..");
const FIX = "test/fixtures/reference/virnucpro"; // relative to the repository root
const fx = (name: string) => resolve(ROOT, FIX, name);

const work = mkdtempSync(join(tmpdir(), "virnuc-frames-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// The table of test/fixtures/reference/virnucpro/README.md: input, chunk size, expected prefix.
const CASES: [string, number, string][] = [
  ["test_with_orfs.fa", 500, "test_with_orfs_identified"],
  ["test_fixed_500bp.fa", 500, "test_fixed_500bp_identified"],
  ["test_sequences_small.fa", 500, "test_sequences_small_identified"],
  ["test_sequences.fa", 300, "test_sequences_chunk300_identified"],
  ["test_sequences.fa", 500, "test_sequences_chunk500_identified"],
];

function expectSameFiles(dir: string, prefix: string) {
  const nuc = readFileSync(join(dir, NUCLEOTIDE_FILE));
  const prot = readFileSync(join(dir, PROTEIN_FILE));
  expect(nuc.equals(readFileSync(fx(`${prefix}_nucleotide.fa`)))).toBe(true);
  expect(prot.equals(readFileSync(fx(`${prefix}_protein.faa`)))).toBe(true);
  return { nuc, prot };
}

describe("virnuc frames: VirNucPro parity", () => {
  test("the fixture table covers every expected file in the fixtures folder", () => {
    const expected = readdirSync(resolve(ROOT, FIX)).filter((f) => /_identified_(nucleotide\.fa|protein\.faa)$/.test(f));
    const covered = CASES.flatMap(([, , p]) => [`${p}_nucleotide.fa`, `${p}_protein.faa`]);
    expect(covered.sort()).toEqual(expected.sort());
    expect(readFileSync(fx("README.md"), "utf8")).toContain("test_sequences_chunk{300,500}_identified_*");
  });

  test("the real CLI as a subprocess: test_with_orfs.fa, chunk 500", () => {
    const out = join(work, "cli");
    const p = Bun.spawnSync([process.execPath, "src/cli.ts", "frames", `${FIX}/test_with_orfs.fa`, "-o", out, "--chunk-size", "500"], {
      cwd: ROOT,
      env: process.env,
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(p.stderr.toString()).toBe("");
    expect(p.exitCode).toBe(0);
    const { nuc } = expectSameFiles(out, "test_with_orfs_identified");
    expect(nuc.length).toBeGreaterThan(0);
    expect(readdirSync(out).sort()).toEqual([NUCLEOTIDE_FILE, PROTEIN_FILE]);
  });

  for (const [input, chunk, prefix] of CASES)
    test(`${input} --chunk-size ${chunk}`, async () => {
      const out = join(work, `${prefix}`);
      await framesCommand([fx(input)], { output: out, chunkSize: String(chunk) });
      expectSameFiles(out, prefix);
    });

  test("windows equal the chunking step's own output (test_with_orfs_chunked500.fa)", async () => {
    const dec = new TextDecoder();
    const got: [string, string][] = [];
    for await (const rec of readFasta([fx("test_with_orfs.fa")]))
      for (const w of windowsOf(rec, 500)) got.push([w.id, dec.decode(w.seq)]);
    const want: [string, string][] = [];
    for await (const rec of readFasta([fx("test_with_orfs_chunked500.fa")])) want.push([rec.id, dec.decode(rec.seq)]);
    expect(want.length).toBeGreaterThan(0);
    expect(got).toEqual(want);
  });

  test("gzip input and CRLF line ends give the same bytes", async () => {
    const text = readFileSync(fx("test_sequences.fa"), "latin1");
    const gz = join(work, "seqs.crlf.fa.gz");
    writeFileSync(gz, gzipSync(Buffer.from(text.replace(/\n/g, "\r\n"), "latin1")));
    const out = join(work, "gz");
    await framesCommand([gz], { output: out, chunkSize: 300 });
    expectSameFiles(out, "test_sequences_chunk300_identified");
  });

  test("several inputs are one stream: outputs concatenate", async () => {
    const out = join(work, "two");
    await framesCommand([fx("test_with_orfs.fa"), fx("test_fixed_500bp.fa")], { output: out, chunkSize: 500 });
    const nuc = readFileSync(join(out, NUCLEOTIDE_FILE));
    const want = Buffer.concat([
      readFileSync(fx("test_with_orfs_identified_nucleotide.fa")),
      readFileSync(fx("test_fixed_500bp_identified_nucleotide.fa")),
    ]);
    expect(nuc.equals(want)).toBe(true);
  });
});

describe("virnuc frames: options and errors", () => {
  async function failure(inputs: string[], opts: { output?: string; chunkSize?: number | string }) {
    try {
      await framesCommand(inputs, opts);
    } catch (err) {
      expect(err).toBeInstanceOf(UserError);
      return (err as Error).message;
    }
    throw new Error("expected a UserError");
  }

  test("missing -o, bad chunk sizes", async () => {
    expect(await failure([fx("test_with_orfs.fa")], {})).toContain("-o");
    for (const c of [0, -5, "0", "abc", "12.5", ""])
      expect(await failure([fx("test_with_orfs.fa")], { output: join(work, "x"), chunkSize: c })).toContain("--chunk-size");
  });

  test("-o naming a file is refused", async () => {
    const f = join(work, "a-file");
    writeFileSync(f, "");
    expect(await failure([fx("test_with_orfs.fa")], { output: f })).toContain("not a directory");
  });

  test("malformed input: error names file and line; no output file is left behind", async () => {
    const bad = join(work, "bad.fa");
    writeFileSync(bad, ">a\nACGTACGTACGTAAACCC\nhello\x00\n");
    const out = join(work, "bad-out");
    const msg = await failure([bad], { output: out, chunkSize: 500 });
    expect(msg).toContain(`${bad}:3`);
    expect(existsSync(join(out, NUCLEOTIDE_FILE))).toBe(false);
    expect(readdirSync(out)).toEqual([]);
  });

  test("CLI: a user error is one line with a non-zero exit", () => {
    const p = Bun.spawnSync([process.execPath, "src/cli.ts", "frames", join(work, "missing.fa"), "-o", join(work, "m")], {
      cwd: ROOT,
      env: process.env,
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(p.exitCode).not.toBe(0);
    const err = p.stderr.toString();
    expect(err).toMatch(/^virnuc: error: .*missing\.fa.*\n$/);
  });
});
