/**
 * `virnuc frames`: VirNucPro's two intermediate files, identified_nucleotide.fa and
 * identified_protein.faa (`>id\nSEQ\n` per kept frame, in pipeline order), streamed.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { readFasta, type ReadOptions } from "../fasta/reader.ts";
import { windowsOf } from "./windows.ts";
import { framesOf } from "./sixframe.ts";
import { UserError } from "../util/errors.ts";

export const NUCLEOTIDE_FILE = "identified_nucleotide.fa";
export const PROTEIN_FILE = "identified_protein.faa";

/** Parses --chunk-size: a positive integer (cac hands over a number or a string). */
export function parseChunkSize(v: number | string | undefined, fallback = 500): number {
  if (v === undefined) return fallback;
  const s = String(v).trim();
  if (!/^\d+$/.test(s) || Number(s) <= 0 || !Number.isSafeInteger(Number(s)))
    throw new UserError(`--chunk-size must be a positive whole number of bases (got '${s}'); VirNucPro uses 300 or 500`);
  return Number(s);
}

/** A file written through a 1 MB buffer; strings are written as latin1 (headers keep their bytes). */
class BufferedFile {
  private readonly fd: number;
  private readonly buf = Buffer.allocUnsafe(1 << 20);
  private len = 0;
  constructor(readonly path: string) {
    this.fd = openSync(path, "w");
  }
  /** Appends `>id\nseq\n`. */
  record(id: string, seq: string): void {
    const need = id.length + seq.length + 3;
    if (this.len + need > this.buf.length) {
      this.flush();
      if (need > this.buf.length) {
        this.put(`>${id}\n${seq}\n`);
        return;
      }
    }
    const b = this.buf;
    let n = this.len;
    b[n++] = 0x3e;
    n += b.write(id, n, "latin1");
    b[n++] = 0x0a;
    n += b.write(seq, n, "latin1");
    b[n++] = 0x0a;
    this.len = n;
  }
  private put(s: string): void {
    writeSync(this.fd, s, null, "latin1");
  }
  flush(): void {
    let off = 0;
    while (off < this.len) off += writeSync(this.fd, this.buf, off, this.len - off);
    this.len = 0;
  }
  close(): void {
    this.flush();
    fsyncSync(this.fd);
    closeSync(this.fd);
  }
  abandon(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    rmSync(this.path, { force: true });
  }
}

export interface FramesSummary {
  records: number;
  windows: number;
  frames: number;
}

/**
 * Reads `inputs` in order and writes the kept frames of every window. Both files appear whole
 * (written under temporary names, renamed at the end), so a failed run leaves no partial output.
 */
export async function writeFrames(
  inputs: string[],
  dir: string,
  chunkSize: number,
  readOpts: ReadOptions = {},
): Promise<FramesSummary> {
  const nucPath = join(dir, NUCLEOTIDE_FILE);
  const protPath = join(dir, PROTEIN_FILE);
  const tag = `.tmp-${process.pid}`;
  let nuc: BufferedFile | undefined;
  let prot: BufferedFile | undefined;
  const sum: FramesSummary = { records: 0, windows: 0, frames: 0 };
  try {
    nuc = new BufferedFile(nucPath + tag);
    prot = new BufferedFile(protPath + tag);
    for await (const rec of readFasta(inputs, readOpts)) {
      sum.records++;
      for (const w of windowsOf(rec, chunkSize)) {
        sum.windows++;
        for (const f of framesOf(w)) {
          nuc.record(f.id, f.nucleotide);
          prot.record(f.id, f.protein);
          sum.frames++;
        }
      }
    }
    nuc.close();
    prot.close();
  } catch (err) {
    nuc?.abandon();
    prot?.abandon();
    if (err instanceof UserError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code && e.path !== undefined) throw new UserError(`cannot write ${e.path}: ${e.code} (${e.message})`);
    if (e.code) throw new UserError(`cannot write the frame files in ${dir}: ${e.code} (${e.message})`);
    throw err;
  }
  renameSync(nucPath + tag, nucPath);
  renameSync(protPath + tag, protPath);
  return sum;
}

export async function framesCommand(inputs: string[], opts: { output?: string; chunkSize?: number | string }): Promise<void> {
  if (!opts.output || typeof opts.output !== "string")
    throw new UserError("frames needs an output directory: -o DIR (it receives identified_nucleotide.fa and identified_protein.faa)");
  if (!inputs || inputs.length === 0) throw new UserError("frames needs at least one input FASTA file");
  const chunkSize = parseChunkSize(opts.chunkSize);
  const dir = opts.output;
  let st;
  try {
    st = statSync(dir);
  } catch {
    // created below
  }
  if (st && !st.isDirectory()) throw new UserError(`-o ${dir} is a file, not a directory: choose another output path`);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new UserError(`cannot create the output directory ${dir}: ${(err as Error).message}`);
  }
  await writeFrames(inputs, dir, chunkSize);
}
