/**
 * `virnuc frames <inputs...> -o DIR --chunk-size N`: VirNucPro's two intermediate files,
 * identified_nucleotide.fa and identified_protein.faa (`>id\nSEQ\n` per kept frame).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { readFasta } from "../fasta/reader.ts";
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
    throw new UserError(`--chunk-size must be a positive whole number of bases (got '${s}')`);
  return Number(s);
}

/** Appends latin1 text to a file through one reused buffer; flushes when full. */
class BufferedFile {
  private fd: number;
  private buf = new Uint8Array(1 << 20);
  private len = 0;
  constructor(readonly path: string) {
    this.fd = openSync(path, "w");
  }
  write(s: string) {
    if (this.len + s.length > this.buf.length) {
      this.flush();
      if (s.length > this.buf.length) this.buf = new Uint8Array(s.length * 2);
    }
    // Frame text is ASCII (ids are latin1-decoded bytes): one byte per char code.
    const b = this.buf;
    let p = this.len;
    for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
    this.len = p;
  }
  flush() {
    let off = 0;
    while (off < this.len) off += writeSync(this.fd, this.buf, off, this.len - off);
    this.len = 0;
  }
  close() {
    this.flush();
    fsyncSync(this.fd);
    closeSync(this.fd);
  }
  abandon() {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}

export async function framesCommand(inputs: string[], opts: { output?: string; chunkSize?: number | string }): Promise<void> {
  if (!opts.output || typeof opts.output !== "string")
    throw new UserError("frames: the output directory is required (-o DIR)");
  if (!inputs || inputs.length === 0) throw new UserError("frames: no input FASTA files given");
  const chunkSize = parseChunkSize(opts.chunkSize);
  const dir = opts.output;
  if (existsSync(dir) && !statSync(dir).isDirectory())
    throw new UserError(`output ${dir} exists and is not a directory; pass a directory to -o`);
  mkdirSync(dir, { recursive: true });

  // Written under temporary names and renamed at the end: a failed run leaves no half file.
  const nucPath = join(dir, NUCLEOTIDE_FILE);
  const protPath = join(dir, PROTEIN_FILE);
  const nuc = new BufferedFile(`${nucPath}.tmp-${process.pid}`);
  const prot = new BufferedFile(`${protPath}.tmp-${process.pid}`);
  try {
    for await (const rec of readFasta(inputs)) {
      for (const win of windowsOf(rec, chunkSize)) {
        for (const f of framesOf(win)) {
          nuc.write(`>${f.id}\n${f.nucleotide}\n`);
          prot.write(`>${f.id}\n${f.protein}\n`);
        }
      }
    }
    nuc.close();
    prot.close();
  } catch (err) {
    nuc.abandon();
    prot.abandon();
    for (const p of [nuc.path, prot.path]) {
      try {
        unlinkSync(p);
      } catch {
        // nothing to remove
      }
    }
    throw err;
  }
  renameSync(nuc.path, nucPath);
  renameSync(prot.path, protPath);
}
