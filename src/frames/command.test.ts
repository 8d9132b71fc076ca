import { describe, expect, test, afterAll } from "bun:test";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { framesCommand, parseChunkSize, writeFrames } from "./command.ts";
import { UserError } from "../util/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "virnuc-frames-cmd-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A 300 bp read whose F1 is an open frame (no stop among GCT repeats), and a 2 bp one with no codon at all.
const ORF = "ATG" + "GCT".repeat(99);

describe("frames command", () => {
  test("UTF-8 bytes of a header survive into the frame ids unchanged", async () => {
    const input = join(dir, "utf8.fa");
    writeFileSync(input, Buffer.from(`>échantillon_à desc\n${ORF}\n`, "utf8"));
    const out = join(dir, "utf8");
    await framesCommand([input], { output: out, chunkSize: "300" });
    const nuc = readFileSync(join(out, "identified_nucleotide.fa"), "utf8");
    const prot = readFileSync(join(out, "identified_protein.faa"), "utf8");
    expect(nuc.split("\n")[0]).toBe(">échantillon_à_chunk_1F1");
    expect(prot.split("\n").slice(0, 2)).toEqual([">échantillon_à_chunk_1F1", "M" + "A".repeat(99)]);
  });

  test("writeFrames counts records, windows and kept frames; only the two files are left", async () => {
    const input = join(dir, "two.fa");
    writeFileSync(input, `>a\n${ORF}${ORF}\n>b\nAC\n`);
    const out = join(dir, "two");
    await framesCommand([input], { output: out, chunkSize: 300 });
    expect(readdirSync(out).sort()).toEqual(["identified_nucleotide.fa", "identified_protein.faa"]);
    const sum = await writeFrames([input], out, 300);
    expect(sum.records).toBe(2);
    expect(sum.windows).toBe(3);
    const ids = readFileSync(join(out, "identified_protein.faa"), "latin1").split("\n").filter((l) => l.startsWith(">"));
    expect(ids.length).toBe(sum.frames);
    expect(ids).toContain(">a_chunk_1F1");
    expect(ids).toContain(">a_chunk_2F1");
    expect(ids.some((l) => l.startsWith(">b_"))).toBe(false);
  });

  test("chunk sizes: numbers and digit strings; anything else is a one-line UserError", () => {
    expect(parseChunkSize(undefined)).toBe(500);
    expect(parseChunkSize("300")).toBe(300);
    expect(parseChunkSize(" 42 ")).toBe(42);
    expect(parseChunkSize(7)).toBe(7);
    for (const bad of [0, -5, "0", "-1", "1.5", 2.5, "abc", "", "1e3"]) {
      expect(() => parseChunkSize(bad)).toThrow(UserError);
      expect(() => parseChunkSize(bad)).toThrow(/--chunk-size must be a positive whole number/);
    }
  });

  test("an output path that cannot be created is a UserError naming it", async () => {
    const file = join(dir, "plain-file");
    writeFileSync(file, "x");
    const input = join(dir, "one.fa");
    writeFileSync(input, `>a\n${ORF}\n`);
    let err: unknown;
    try {
      await framesCommand([input], { output: join(file, "sub") });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toContain(join(file, "sub"));
  });
});
