import { describe, expect, test, afterAll } from "bun:test";
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { gzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import { newReadSummary, readFasta, sniffInputs, SNIFF_BYTES, type FastaRecord, type ReadOptions } from "./reader.ts";
import { UserError } from "../util/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "virnuc-fasta-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(content: string | Uint8Array, name = `in${n++}.fa`): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

async function read(paths: string[], opts: ReadOptions = {}) {
  const warnings: string[] = [];
  const recs: (Omit<FastaRecord, "seq"> & { seq: string })[] = [];
  for await (const r of readFasta(paths, { onWarning: (m) => warnings.push(m), ...opts }))
    recs.push({ ...r, seq: new TextDecoder().decode(r.seq) });
  return { recs, warnings };
}

async function failure(paths: string[]): Promise<string> {
  try {
    await read(paths);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error("expected a UserError");
}

describe("readFasta: records", () => {
  test("ids, descriptions, multi-line sequences, case kept, lines and offsets", async () => {
    const text = ">r1 some description\nACGT\nacgtN\n>r2\tx\nGG\n\n>r3\nTTT";
    const p = file(text);
    const { recs, warnings } = await read([p]);
    expect(warnings).toEqual([]);
    expect(recs.map((r) => [r.id, r.seq, r.line, r.offset, r.index, r.file])).toEqual([
      ["r1", "ACGTacgtN", 1, 0, 0, p],
      ["r2", "GG", 4, text.indexOf(">r2"), 1, p],
      ["r3", "TTT", 7, text.indexOf(">r3"), 2, p],
    ]);
  });

  test("CRLF line ends, blank lines, inner spaces and tabs are dropped silently", async () => {
    const p = file("\r\n\n>a desc\r\nAC GT\r\n\tTT\r\n\r\n>b\r\nG\r\n");
    const { recs, warnings } = await read([p]);
    expect(warnings).toEqual([]);
    expect(recs.map((r) => [r.id, r.seq, r.line])).toEqual([
      ["a", "ACGTTT", 3],
      ["b", "G", 7],
    ]);
  });

  test("an empty record is skipped with a warning naming file and line; indices stay dense", async () => {
    const p = file(">a\nAC\n>empty desc\n\n>c\nGG\n");
    const { recs, warnings } = await read([p]);
    expect(recs.map((r) => [r.id, r.index])).toEqual([
      ["a", 0],
      ["c", 1],
    ]);
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toContain(`${p}:3`);
    expect(warnings[0]).toContain("empty");
  });

  test("several files are one stream, in order; duplicate ids are kept", async () => {
    const a = file(">x\nAAA\n>y\nCCC\n");
    const b = file(">x\nGGG\n");
    const { recs } = await read([a, b]);
    expect(recs.map((r) => [r.id, r.seq, r.index, r.file, r.line])).toEqual([
      ["x", "AAA", 0, a, 1],
      ["y", "CCC", 1, a, 3],
      ["x", "GGG", 2, b, 1],
    ]);
  });

  test("gzip is detected by magic bytes whatever the name; multi-member gzip; offset -1", async () => {
    const gz = new Uint8Array([...gzipSync(">a d\nAC\nGT\n"), ...gzipSync(">b\nTT\n")]);
    const p = file(gz, "looks-plain.fa");
    const plain = file(">c\nGG\n", "looks-gzipped.fa.gz");
    const { recs } = await read([p, plain]);
    expect(recs.map((r) => [r.id, r.seq, r.line, r.offset, r.index])).toEqual([
      ["a", "ACGT", 1, -1, 0],
      ["b", "TT", 4, -1, 1],
      ["c", "GG", 1, 0, 2],
    ]);
  });

  test("records that straddle the 1 MiB read chunk (long header, long sequence)", async () => {
    const longSeq = "ACGT".repeat(400_000); // 1.6 Mbp on one line, across the 1st/2nd chunk
    const longHeader = "h".repeat(900_000); // crosses the 2nd/3rd chunk boundary
    const text = `>first\n${longSeq}\n>second ${longHeader}\nAC\n>third\nGT\n`;
    const p = file(text);
    const { recs } = await read([p]);
    expect(recs.map((r) => [r.id, r.seq.length, r.line, r.offset])).toEqual([
      ["first", longSeq.length, 1, 0],
      ["second", 2, 3, text.indexOf(">second")],
      ["third", 2, 5, text.indexOf(">third")],
    ]);
    expect(recs[0].seq).toBe(longSeq);
    const z = await read([file(gzipSync(text), "long.gz")]);
    expect(z.recs.map((r) => [r.id, r.seq.length])).toEqual([
      ["first", longSeq.length],
      ["second", 2],
      ["third", 2],
    ]);
  });

  test("start: a worker begins at a known record offset and keeps global indices", async () => {
    const a = file(">a\nAA\n>b\nCC\n");
    const b = file(">c\nGG\n>d\nTT\n>e\nNN\n");
    const all = (await read([a, b])).recs;
    const d = all.find((r) => r.id === "d")!;
    const { recs } = await read([a, b], { start: { fileIndex: 1, offset: d.offset, index: d.index } });
    expect(recs.map((r) => [r.id, r.index, r.offset])).toEqual([
      ["d", 3, d.offset],
      ["e", 4, all[4].offset],
    ]);
  });
});

describe("readFasta: errors name the file and line", () => {
  test("text before the first header", async () => {
    const p = file("\nACGT\n>a\nAC\n");
    const msg = await failure([p]);
    expect(msg).toContain(`${p}:2`);
    expect(msg).toContain("before the first '>'");
  });

  test("NUL / binary bytes in the sequence", async () => {
    const p = file(new Uint8Array([...new TextEncoder().encode(">a\nAC\nGG"), 0, 0x41, 0x0a]));
    const msg = await failure([p]);
    expect(msg).toContain(`${p}:3`);
    expect(msg).toContain("binary");
  });

  test("NUL in a header", async () => {
    const p = file(new Uint8Array([...new TextEncoder().encode(">a\nAC\n>b"), 0, 0x0a, 0x41, 0x0a]));
    const msg = await failure([p]);
    expect(msg).toContain(`${p}:3`);
    expect(msg).toContain("NUL");
  });

  test("a header with no id", async () => {
    const p = file(">a\nAC\n>\nGG\n");
    const msg = await failure([p]);
    expect(msg).toContain(`${p}:3`);
    expect(msg).toContain("without an id");
    const q = file(">a\nAC\n>   \nGG\n");
    expect(await failure([q])).toContain(`${q}:3`);
  });

  test("an empty file is an error; the files before it are still read", async () => {
    const ok = file(">a\nAC\n");
    const empty = file("");
    const seen: string[] = [];
    let msg = "";
    try {
      for await (const r of readFasta([ok, empty])) seen.push(r.id);
    } catch (err) {
      expect(err).toBeInstanceOf(UserError);
      msg = (err as Error).message;
    }
    expect(seen).toEqual(["a"]);
    expect(msg).toContain(`no records in ${empty}`);
  });

  test("truncated gzip", async () => {
    const whole = gzipSync(">a\n" + "ACGTACGTTG\n".repeat(5000));
    const p = file(whole.subarray(0, whole.length >> 1), "trunc.fa.gz");
    const msg = await failure([p]);
    expect(msg).toMatch(new RegExp(`^${p.replace(/[.]/g, "\\.")}:\\d+: corrupt or truncated gzip`));
  });

  test("corrupt gzip (damaged deflate data)", async () => {
    const whole = new Uint8Array(gzipSync(">a\n" + "ACGTACGTTGCA\n".repeat(2000)));
    for (let i = 20; i < 60; i++) whole[i] ^= 0x5a;
    const p = file(whole, "corrupt.gz");
    const msg = await failure([p]);
    expect(msg).toContain(p);
    expect(msg).toContain("gzip");
  });

  test("a missing file and a directory", async () => {
    expect(await failure([join(dir, "nope.fa")])).toContain("nope.fa");
    expect(await failure([dir])).toContain("directory");
  });
});

describe("readFasta: bounded memory", () => {
  test("a 200 Mbp single record streams with RSS under 600 MB", async () => {
    const p = join(dir, "chromosome.fa");
    const fd = openSync(p, "w");
    writeSync(fd, ">chr1 a long one\n");
    // 80-column lines of a repeating pattern, written 1 MiB-ish at a time.
    const line = "ACGTTGCAAC".repeat(8) + "\n";
    const block = Buffer.from(line.repeat(12_800)); // 1.024 Mbp per block
    const blocks = 200_000_000 / 1_024_000;
    for (let i = 0; i < Math.ceil(blocks); i++) writeSync(fd, block);
    writeSync(fd, ">tail\nACGT\n");
    closeSync(fd);
    Bun.gc(true);
    let peak = process.memoryUsage().rss;
    const seen: [string, number][] = [];
    let sample = "";
    for await (const r of readFasta([p])) {
      peak = Math.max(peak, process.memoryUsage().rss);
      seen.push([r.id, r.seq.length]);
      if (r.id === "chr1") sample = new TextDecoder().decode(r.seq.subarray(r.seq.length - 80));
    }
    rmSync(p);
    expect(seen).toEqual([
      ["chr1", Math.ceil(blocks) * 1_024_000],
      ["tail", 4],
    ]);
    expect(sample).toBe("ACGTTGCAAC".repeat(8));
    expect(peak).toBeLessThan(600 * 1024 * 1024);
    // The process-lifetime peak also catches a transient one (e.g. old and grown buffer side by side).
    expect(process.resourceUsage().maxRSS * 1024).toBeLessThan(600 * 1024 * 1024);
  }, 60_000);
});

describe("readFasta: ids, sharding starts, early stops", () => {
  test("the id is cut at Python's whitespace on the header bytes; UTF-8 ids round-trip", async () => {
    // 'à' is C3 A0 in UTF-8: A0 alone is not a separator; U+00A0 (C2 A0) and U+3000 are.
    const enc = new TextEncoder();
    const p = file(enc.encode(">réadà_1 x\nAC\n>a\u00a0b\nGG\n>\t c\u3000d\nTT\n>e\x1ff\nCC\n"));
    const { recs } = await read([p]);
    const bytes = recs.map((r) => Buffer.from(r.id, "latin1").toString("utf8"));
    expect(bytes).toEqual(["réadà_1", "a", "c", "e"]);
  });

  test("start: the line of the header is used in messages when given", async () => {
    const a = file(">a\nAA\n>b\nC\0C\n");
    let msg = "";
    try {
      for await (const _ of readFasta([a], { start: { fileIndex: 0, offset: 6, index: 1, line: 3 } }));
    } catch (err) {
      msg = (err as Error).message;
    }
    expect(msg).toContain(`${a}:4: binary data`);
  });

  test("start: an offset that is not a header start, or inside gzip input, is refused", async () => {
    const p = file(">a\nAAAA\n>b\nCC\n");
    const bad = async (offset: number, path = p) => {
      try {
        for await (const _ of readFasta([path], { start: { fileIndex: 0, offset, index: 0 } }));
      } catch (err) {
        expect(err).toBeInstanceOf(UserError);
        return (err as Error).message;
      }
      throw new Error("expected a UserError");
    };
    expect(await bad(4)).toContain("not the start of a '>' or '@' header line");
    expect(await bad(1000)).toContain("outside the file");
    expect(await bad(3, file(gzipSync(">a\nAC\n>b\nGG\n"), "s.gz"))).toContain("gzip");
    expect((await read([p], { start: { fileIndex: 0, offset: 8, index: 5 } })).recs.map((r) => [r.id, r.index])).toEqual([["b", 5]]);
  });

  test("a consumer that stops early leaves no file open (plain and gzip)", async () => {
    const text = Array.from({ length: 20_000 }, (_, i) => `>r${i}\n${"ACGT".repeat(40)}\n`).join("");
    const plain = file(text);
    const gz = file(gzipSync(text), "early.gz");
    const fds = () => readdirSync("/proc/self/fd").length;
    const before = fds();
    for (let k = 0; k < 10; k++)
      for (const p of [plain, gz])
        for await (const r of readFasta([p])) if (r.index > 3) break;
    await Bun.sleep(50);
    expect(fds()).toBeLessThanOrEqual(before);
  });
});

const fq = (recs: [string, string][], qual = (s: string) => "I".repeat(s.length)) =>
  recs.map(([h, s]) => `@${h}\n${s}\n+\n${qual(s)}\n`).join("");

describe("readFasta: FASTQ", () => {
  test("4-line records, told by '@' whatever the name; qualities dropped; lines and offsets", async () => {
    const text = fq([["r1 desc", "ACGT"], ["r2", "GGN"]]);
    const p = file("\n" + text, "reads.fa");
    const summary = newReadSummary();
    const { recs, warnings } = await read([p], { summary });
    expect(warnings).toEqual([]);
    expect(recs.map((r) => [r.id, r.seq, r.line, r.offset, r.index])).toEqual([
      ["r1", "ACGT", 2, 1, 0],
      ["r2", "GGN", 6, 1 + text.indexOf("@r2"), 1],
    ]);
    expect(summary.inputs[0]).toMatchObject({ format: "fastq", compression: "none", stream: false, records: 2 });
  });

  test("a quality line may start with '@' or '+'; '+' may repeat the id; CRLF; blank lines between records", async () => {
    const p = file("@a\r\nACG\r\n+a\r\n@+I\r\n\r\n@b\nT\n+\n@\n");
    const { recs } = await read([p]);
    expect(recs.map((r) => [r.id, r.seq, r.line])).toEqual([
      ["a", "ACG", 1],
      ["b", "T", 6],
    ]);
  });

  test("FASTQ and FASTA inputs mix in one stream; the last record may lack its final newline", async () => {
    const a = file(fq([["q", "AC"]]));
    const b = file(">f\nGG\n");
    const c = file("@z\nTT\n+\nII");
    const { recs } = await read([a, b, c]);
    expect(recs.map((r) => [r.id, r.seq, r.index])).toEqual([
      ["q", "AC", 0],
      ["f", "GG", 1],
      ["z", "TT", 2],
    ]);
  });

  test("a long read (sequence and qualities across the 1 MiB chunks), plain and gzip", async () => {
    const seq = "ACGTTGCA".repeat(200_000); // 1.6 Mbp
    const text = fq([["short", "AC"], ["long nanopore", seq], ["after", "GGT"]]);
    for (const p of [file(text), file(gzipSync(text))]) {
      const { recs } = await read([p]);
      expect(recs.map((r) => [r.id, r.seq.length, r.line])).toEqual([
        ["short", 2, 1],
        ["long", seq.length, 5],
        ["after", 3, 9],
      ]);
      expect(recs[1].seq === seq).toBe(true);
    }
  });

  test("an empty read is skipped with a warning, like an empty FASTA record", async () => {
    const p = file("@e\n\n+\n\n@x\nA\n+\nI\n");
    const { recs, warnings } = await read([p]);
    expect(recs.map((r) => [r.id, r.index])).toEqual([["x", 0]]);
    expect(warnings).toEqual([`${p}:1: record 'e' has no sequence: skipped`]);
  });

  const cases: [string, string, RegExp][] = [
    ["qualities shorter than the sequence", "@a\nACGT\n+\nIII\n", /:4: record 'a' has 3 quality values for 4 bases/],
    ["qualities longer", "@a\nAC\n+\nIII\n@b\nA\n+\nI\n", /:4: record 'a' has 3 quality values for 2 bases/],
    ["multi-line sequence", "@a\nACGT\nACGT\n+\nIIIIIIII\n", /:3: record 'a' continues its sequence on a second line: multi-line FASTQ is not read/],
    ["no '+' line", "@a\nACGT\n@b\nAC\n+\nII\n", /:3: record 'a' has no '\+' line/],
    ["no sequence line", "@a\n+\nII\n", /:2: record 'a' has no sequence line/],
    ["text instead of a header", "@a\nAC\n+\nII\nxyz\n", /:5: expected a FASTQ record header \('@' line\)/],
    ["a FASTA header in FASTQ", "@a\nAC\n+\nII\n>b\nAC\n", /:5: .*FASTA '>' header inside FASTQ/],
    ["a header with no id", "@a\nAC\n+\nII\n@  \nAC\n+\nII\n", /:5: header without an id/],
    ["truncated after the sequence", "@a\nAC\n+\nII\n@b\nACGT\n", /:5: record 'b' is cut short/],
    ["truncated after the header", "@a\nAC\n+\nII\n@b", /:5: record 'b' is cut short/],
    ["a space in the qualities", "@a\nACG\n+\nI I\n", /:4: record 'a': byte 0x20 is not a quality value/],
    ["binary in the sequence", "@a\nA\u0001C\n+\nIII\n", /:2: binary data \(byte 0x01\)/],
  ];
  for (const [name, text, want] of cases)
    test(`one error line naming file and line: ${name}`, async () => {
      const p = file(text, `bad${n++}.fq`);
      const msg = await failure([p]);
      expect(msg.startsWith(`${p}:`)).toBe(true);
      expect(msg).toMatch(want);
      expect(msg).not.toContain("\n");
    });
});

describe("readFasta: compression, streams, sha256", () => {
  const text = ">a d\nACGT\nTT\n>b\nGG\n";
  const want = [
    ["a", "ACGTTT"],
    ["b", "GG"],
  ];

  test("zstd (one frame, several frames, and a FASTQ inside), by magic bytes", async () => {
    const z = file(Bun.zstdCompressSync(Buffer.from(text)), "x.fa");
    const two = file(Buffer.concat([Bun.zstdCompressSync(Buffer.from(">a\nAC\n")), Bun.zstdCompressSync(Buffer.from(">b\nGG\n"))]));
    const q = file(Bun.zstdCompressSync(Buffer.from(fq([["r", "ACG"]]))));
    const summary = newReadSummary();
    const { recs } = await read([z, two, q], { summary });
    expect(recs.map((r) => [r.id, r.seq, r.offset])).toEqual([
      ["a", "ACGTTT", -1],
      ["b", "GG", -1],
      ["a", "AC", -1],
      ["b", "GG", -1],
      ["r", "ACG", -1],
    ]);
    expect(summary.inputs.map((i) => [i.compression, i.format])).toEqual([
      ["zstd", "fasta"],
      ["zstd", "fasta"],
      ["zstd", "fastq"],
    ]);
  });

  test("truncated zstd, and bytes after the last zstd frame, are errors", async () => {
    const whole = Bun.zstdCompressSync(Buffer.from(">a\n" + "ACGTACGTTG\n".repeat(5000)));
    const cut = file(whole.subarray(0, whole.length - 7), "cut.zst");
    expect(await failure([cut])).toMatch(new RegExp(`^${cut.replace(/[.]/g, "\\.")}:\\d+: corrupt or truncated zstd input .*truncated`));
    const junk = file(Buffer.concat([whole, Buffer.from("junk!")]), "junk.zst");
    expect(await failure([junk])).toMatch(/corrupt or truncated zstd input \(bytes that are not zstd data follow/);
  });

  test("zstd with bytes inserted anywhere is an error, also where the decompressor stops without one", async () => {
    const text = ">a desc\nACGTACGTTGCAACGT\n>b\nGGGGCCCCAAAATTTT\n";
    const z = new Uint8Array(Bun.zstdCompressSync(Buffer.from(text)));
    const accepted: string[] = [];
    for (let at = 0; at <= z.length; at++)
      for (const ins of [[0xe4, 0xcb, 0x1b], [0], [1, 2]]) {
        const p = file(new Uint8Array([...z.subarray(0, at), ...ins, ...z.subarray(at)]), `ins-${at}-${ins.length}.zst`);
        try {
          await read([p]);
          accepted.push(`${ins.length} byte(s) at ${at}`);
        } catch (err) {
          expect(err).toBeInstanceOf(UserError);
        }
      }
    expect(accepted).toEqual([]);
  });

  test("bzip2 and xz: one line naming the format and a pipe that works", async () => {
    const bz = file(Buffer.from("BZh91AY&SY..."), "x.fa.bz2");
    expect(await failure([bz])).toBe(`${bz} is bzip2-compressed, which virnuc does not read: decompress it in a pipe, e.g. \`bzcat ${bz} | virnuc predict - -o DIR\``);
    const xz = file(new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0, 1, 2]), "x.xz");
    expect(await failure([xz])).toContain("is xz-compressed, which virnuc does not read: decompress it in a pipe, e.g. `xzcat");
  });

  test("sha256 of each input's bytes as given, computed while streaming; bytes counted", async () => {
    const gz = gzipSync(text);
    const a = file(text);
    const b = file(gz);
    const summary = newReadSummary();
    await read([a, b], { summary });
    const sha = (x: string | Uint8Array) => createHash("sha256").update(x).digest("hex");
    expect(summary.inputs.map((i) => [i.path, i.bytes, i.sha256, i.records])).toEqual([
      [a, text.length, sha(text), 2],
      [b, gz.length, sha(gz), 2],
    ]);
    // a start offset inside a file: no whole-file hash
    const s = newReadSummary();
    await read([a], { summary: s, start: { fileIndex: 0, offset: text.indexOf(">b"), index: 1 } });
    expect(s.inputs[0].sha256).toBeNull();
    // a consumer that stops early gets no hash for the unfinished input
    const big = file(">x\nAC\n".repeat(300_000));
    const e = newReadSummary();
    for await (const r of readFasta([big], { summary: e })) if (r.index > 2) break;
    expect(e.inputs[0].sha256).toBeNull();
  });

  test("a named pipe streams (plain and gzip), with the same records and hash as the file", async () => {
    if (process.platform === "win32") return;
    for (const content of [Buffer.from(text), gzipSync(text)]) {
      const fifo = join(dir, `fifo${n++}`);
      expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
      const src = file(content);
      const writer = Bun.spawn(["sh", "-c", `cat '${src}' > '${fifo}'`]);
      const summary = newReadSummary();
      const { recs } = await read([fifo], { summary });
      await writer.exited;
      expect(recs.map((r) => [r.id, r.seq, r.offset])).toEqual(want.map(([i, s]) => [i, s, -1]));
      expect(summary.inputs[0].stream).toBe(true);
      expect(summary.inputs[0].sha256).toBe(createHash("sha256").update(content).digest("hex"));
    }
  });

  test("standard input (-) in a child process; '-' twice is refused", async () => {
    const code = `import { readFasta, newReadSummary } from ${JSON.stringify(join(import.meta.dir, "reader.ts"))};
      const s = newReadSummary(); const out = [];
      for await (const r of readFasta(["-"], { summary: s })) out.push([r.id, new TextDecoder().decode(r.seq), r.file]);
      console.log(JSON.stringify({ out, input: s.inputs[0] }));`;
    const p = Bun.spawnSync([process.execPath, "-e", code], { stdin: Buffer.from(Bun.zstdCompressSync(Buffer.from(text))) });
    const got = JSON.parse(p.stdout.toString());
    expect(got.out).toEqual(want.map(([i, s]) => [i, s, "<stdin>"]));
    expect(got.input).toMatchObject({ path: "-", stream: true, compression: "zstd", format: "fasta" });
    expect(await failure(["-", "-"])).toContain("standard input (-) is given more than once");
  });
});

describe("readFasta: warnings users of VirNucPro want", () => {
  test("protein input: one warning naming the first record, then a count", async () => {
    const p = file(">p1\nMKVLAAGIEEFLPQ\n>d\nACGT\n>p2\nMSTPEEL\n>p3\nQQQ\n");
    const summary = newReadSummary();
    const { recs, warnings } = await read([p], { summary });
    expect(recs.length).toBe(4);
    expect(summary.proteinLike).toBe(3);
    expect(warnings.length).toBe(2);
    expect(warnings[0]).toStartWith(`${p}:1: record 'p1' looks like protein, not DNA`);
    expect(warnings[1]).toBe(`3 records in all look like protein (first: 'p1' at ${p}:1)`);
  });

  test("RNA (U): one warning naming the record; IUPAC DNA codes are not flagged", async () => {
    const p = file(">dna\nACGTNRYKMSWBDHVacgtn\n>rna\nACGU\n");
    const summary = newReadSummary();
    const { warnings } = await read([p], { summary });
    expect(summary.rnaLike).toBe(1);
    expect(summary.proteinLike).toBe(0);
    expect(warnings).toEqual([expect.stringContaining(`${p}:3: record 'rna' has U (RNA?)`)]);
  });

  test("duplicate ids: all records processed, one warning with the count and the first repeat", async () => {
    const a = file(">x\nAA\n>y\nCC\n>x dup\nGG\n");
    const b = file(fq([["y", "TT"], ["z", "AC"], ["x", "A"]]));
    const summary = newReadSummary();
    const { recs, warnings } = await read([a, b], { summary });
    expect(recs.map((r) => [r.id, r.index])).toEqual([
      ["x", 0],
      ["y", 1],
      ["x", 2],
      ["y", 3],
      ["z", 4],
      ["x", 5],
    ]);
    expect(summary.duplicateIds).toBe(3);
    expect(warnings).toEqual([
      `3 record(s) repeat an id seen before (first: 'x' at ${a}:5); every record is processed and kept: ids are not unique keys (record_index is)`,
    ]);
  });

  test("the duplicate check holds many ids (table growth) without false repeats", async () => {
    const ids = Array.from({ length: 50_000 }, (_, i) => `read_${i}`);
    const p = file(ids.map((id) => `>${id}\nA\n`).join("") + ">read_49999\nA\n>read_7\nA\n");
    const summary = newReadSummary();
    await read([p], { summary });
    expect(summary.duplicateIds).toBe(2);
  });
});

describe("sniffInputs: every input's format checked before a run, stream bytes kept", () => {
  /** A named pipe that a child process fills with `content` (once). */
  function fifo(content: string | Uint8Array): { path: string; writer: ReturnType<typeof Bun.spawn> } {
    const path = join(dir, `sniff-fifo${n++}`);
    expect(Bun.spawnSync(["mkfifo", path], { env: process.env }).exitCode).toBe(0);
    const src = file(content);
    return { path, writer: Bun.spawn(["sh", "-c", `cat '${src}' > '${path}'`], { env: process.env, stderr: "ignore" }) };
  }
  async function sniffFailure(paths: string[]): Promise<string> {
    try {
      await sniffInputs(paths);
    } catch (err) {
      expect(err).toBeInstanceOf(UserError);
      return (err as Error).message;
    }
    throw new Error("expected a UserError");
  }
  const sha = (x: string | Uint8Array) => createHash("sha256").update(x).digest("hex");
  // A first record whose header alone spans many pipe reads, then 2 MB of records.
  const long = `>first ${"d".repeat(900_000)}\nACGTAC\n` + Array.from({ length: 40_000 }, (_, i) => `>r${i}\n${"ACGTTGCA".repeat(6)}\n`).join("");

  test("a stream read ahead gives the reader every byte: the same records and sha256 as the file (plain, gzip, zstd)", async () => {
    if (process.platform === "win32") return;
    const want = await read([file(long)]);
    expect(want.recs.length).toBe(40_001);
    for (const content of [Buffer.from(long), gzipSync(long), Bun.zstdCompressSync(Buffer.from(long))]) {
      const f = fifo(content);
      const heads = await sniffInputs([f.path]);
      const head = heads.get(f.path)!;
      expect(head.chunks.length).toBeGreaterThan(0); // bytes were read to check the stream ...
      const summary = newReadSummary();
      const got = await read([f.path], { summary, heads });
      await f.writer.exited;
      expect(heads.size).toBe(0); // ... and handed to the reader, which read the rest
      expect(got.recs.map((r) => [r.id, r.seq, r.index])).toEqual(want.recs.map((r) => [r.id, r.seq, r.index]));
      expect(summary.inputs[0].sha256).toBe(sha(content));
      expect(summary.inputs[0].bytes).toBe(content.length);
    }
  });

  test("a bad stream is refused with the reader's own error line, before anything else reads it", async () => {
    if (process.platform === "win32") return;
    const bam = gzipSync(Buffer.from([0x42, 0x41, 0x4d, 0x01, 0, 0, 0, 0, 0x40, 0x48, 0x44]));
    const cases: [string, string | Uint8Array, RegExp][] = [
      ["BAM (gzip'd binary)", bam, /^\S+:1: binary data \(byte 0x01\) in the input: not a FASTA or FASTQ text file/],
      ["bzip2", Buffer.from("BZh91AY&SY\u0000\u0001"), /is bzip2-compressed, which virnuc does not read: decompress it in a pipe, e\.g\. `bzcat \S+ \| virnuc predict - -o DIR`$/],
      ["xz", new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0, 1, 2]), /is xz-compressed, which virnuc does not read/],
      ["empty", "", /^no records in \S+ \(the input is empty or holds only blank lines\)$/],
      ["blank lines only, gzip", gzipSync("\n\n  \n"), /^no records in /],
      ["text before the first header", "ACGT\n>r\nAC\n", /^\S+:1: text before the first '>' header/],
      ["a FASTQ first record cut short", "@r1\nACGT\n", /^\S+:1: record 'r1' is cut short/],
      ["FASTQ qualities of the wrong length", "@r1\nACGT\n+\nII\n@r2\nAC\n+\nII\n", /^\S+:4: record 'r1' has 2 quality values for 4 bases/],
    ];
    for (const [name, content, re] of cases) {
      const f = fifo(content);
      const sniffed = await sniffFailure([f.path]);
      await f.writer.exited;
      expect(sniffed, name).toMatch(re);
      // The same text given to the reader fails with the same line.
      const g = fifo(content);
      const read2 = await failure([g.path]);
      await g.writer.exited;
      expect(sniffed.replaceAll(f.path, "X"), name).toBe(read2.replaceAll(g.path, "X"));
    }
  });

  test("regular files: the first record is checked; later records and long first records are the reader's", async () => {
    const bad = file("ACGT\n>r\nAC\n");
    expect(await sniffFailure([file(">ok\nAC\n"), bad])).toBe(await failure([bad]));
    const gzBad = file(gzipSync(">r\nAC\x00GT\n"));
    expect(await sniffFailure([gzBad])).toBe(await failure([gzBad]));
    // Only the first record (or the first SNIFF_BYTES of text) is read: a later fault is found by the run.
    const laterFault = file(">a\nACGT\n>b\nAC\x01\n");
    expect((await sniffInputs([laterFault])).size).toBe(0);
    expect(await failure([laterFault])).toMatch(/:4: binary data/);
    const hugeFirst = file(gzipSync(`>big\n${"ACGT".repeat(SNIFF_BYTES / 2)}\n\x01`));
    expect((await sniffInputs([hugeFirst])).size).toBe(0);
    expect(await sniffFailure([join(dir, "missing.fa")])).toContain("does not exist");
    expect(await sniffFailure(["-", "-"])).toContain("standard input (-) is given more than once");
  });
});
