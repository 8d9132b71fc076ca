/**
 * The seeded synthetic VirNucPro workload every benchmark shares: short reads with realistic
 * open reading frames (about 0.8 kept frames per 150 bp read, as in real samples).
 *
 * A read is either cut from a protein-coding stretch (codons drawn from the 61 sense codons,
 * so one frame never meets a stop) on a random strand and phase, or plain random sequence
 * (each frame of 50 random codons survives with p = (61/64)^50 ~ 0.09). The coding fraction
 * is calibrated so the mean kept frames per 150 bp read is 0.8; at 300/500 bp almost only the
 * coding frame survives. A rare N exercises the dropped-codon rule.
 */
import { closeSync, openSync, renameSync, writeSync } from "node:fs";
import { Xoshiro128 } from "../src/models/prng.ts";

/** Fraction of reads cut from coding sequence (calibrated: 0.80 kept frames/read at 150 bp). */
export const CODING_FRACTION = 0.26;
/** Probability of an N at a base. */
export const N_RATE = 0.0005;

const ACGT = [65, 67, 71, 84];
const COMP = new Uint8Array(256);
COMP[65] = 84;
COMP[67] = 71;
COMP[71] = 67;
COMP[84] = 65;
COMP[78] = 78;

// The 61 sense codons of NCBI table 1 as byte triples (stops TAA, TAG, TGA left out).
const SENSE: number[] = [];
for (const a of ACGT)
  for (const b of ACGT)
    for (const c of ACGT) {
      const s = String.fromCharCode(a, b, c);
      if (s !== "TAA" && s !== "TAG" && s !== "TGA") SENSE.push(a, b, c);
    }

const latin1 = new TextDecoder("latin1");

/** One read of `len` bases into `out` (reused scratch); returns the view. */
function makeRead(rng: Xoshiro128, len: number, out: Uint8Array): Uint8Array {
  const seq = out.subarray(0, len);
  if (rng.next() < CODING_FRACTION) {
    // Cut from a stop-free coding stretch at a random phase, then maybe take the other strand.
    const phase = rng.int(3);
    const tmp = out.subarray(len, len + len + 6);
    for (let i = 0; i < tmp.length; i += 3) {
      const k = 3 * rng.int(61);
      tmp[i] = SENSE[k];
      tmp[i + 1] = SENSE[k + 1];
      tmp[i + 2] = SENSE[k + 2];
    }
    if (rng.next() < 0.5) seq.set(tmp.subarray(phase, phase + len));
    else for (let i = 0; i < len; i++) seq[i] = COMP[tmp[phase + len - 1 - i]];
  } else {
    for (let i = 0; i < len; i += 16) {
      let r = rng.nextU32();
      for (let j = i; j < Math.min(len, i + 16); j++, r >>>= 2) seq[j] = ACGT[r & 3];
    }
  }
  if (N_RATE > 0) {
    // Geometric gaps between Ns: one draw per N rather than one per base.
    for (let i = Math.floor(Math.log(1 - rng.next()) / Math.log(1 - N_RATE)); i < len; i += 1 + Math.floor(Math.log(1 - rng.next()) / Math.log(1 - N_RATE)))
      seq[i] = 78;
  }
  return seq;
}

/** n seeded reads of lengthBp bases: ids `synth_<i>` (0-based), upper-case ACGT with rare N. */
export function* syntheticReads(n: number, lengthBp: number, seed: number): Generator<{ id: string; seq: string }> {
  for (const r of syntheticReadBytes(n, lengthBp, seed)) yield { id: r.id, seq: latin1.decode(r.seq) };
}

/** As syntheticReads, the sequence as bytes (a view into reused scratch: copy to keep it). */
export function* syntheticReadBytes(n: number, lengthBp: number | number[], seed: number): Generator<{ id: string; seq: Uint8Array }> {
  const lengths = Array.isArray(lengthBp) ? lengthBp : [lengthBp];
  if (lengths.length === 0 || lengths.some((l) => !(Number.isInteger(l) && l > 0)))
    throw new RangeError(`read lengths must be positive integers (got ${lengths.join(",")})`);
  const rng = new Xoshiro128(seed);
  const scratch = new Uint8Array(2 * Math.max(...lengths) + 8);
  for (let i = 0; i < n; i++) yield { id: `synth_${i}`, seq: makeRead(rng, lengths[i % lengths.length], scratch) };
}

/**
 * Writes n seeded reads as FASTA (`>synth_<i>\nSEQ\n`), streamed through a 1 MB buffer; with
 * several lengths, read i has length lengths[i % lengths.length]. The file appears whole (renamed
 * into place), so a reader never sees a partial workload.
 */
export async function writeSyntheticFasta(path: string, n: number, lengthBp: number | number[], seed: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w");
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    let len = 0;
    for (const r of syntheticReadBytes(n, lengthBp, seed)) {
      if (len + r.id.length + r.seq.length + 3 > buf.length) {
        writeSync(fd, buf, 0, len);
        len = 0;
      }
      if (r.id.length + r.seq.length + 3 > buf.length) {
        // A read longer than the buffer goes straight to the file.
        writeSync(fd, `>${r.id}\n`, null, "latin1");
        writeSync(fd, r.seq);
        writeSync(fd, "\n");
        continue;
      }
      buf[len++] = 0x3e;
      len += buf.write(r.id, len, "latin1");
      buf[len++] = 0x0a;
      buf.set(r.seq, len);
      len += r.seq.length;
      buf[len++] = 0x0a;
    }
    writeSync(fd, buf, 0, len);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
