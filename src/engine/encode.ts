/**
 * Chain step PreparedPart -> EncodedPart: both encoders over a part's frames.
 * Per encoder: balanced packing into token-budget batches, token ids and cu_seqlens
 * written straight into native host buffers, asynchronous submission, and pooled embeddings
 * gathered back into frame order. Split into submit / collect so the host can prepare the next
 * part while the device works on this one.
 */
import { packBatches, fillBatch, type PackedBatch } from "../pack/ffd.ts";
import type { Engine, EncoderHandle, HostBuffer, Ticket } from "./engine.ts";
import { NonFiniteError, OutOfMemoryError } from "./engine.ts";
import { UserError } from "../util/errors.ts";
import type { EncodeStats, EncodedPart, PreparedPart } from "../run/chain.ts";

export type { EncodeStats } from "../run/chain.ts";

/** Lets signal handlers run between batches whose work the CPU backend does inside submit. */
const macrotask = () => new Promise<void>((r) => setImmediate(r));

/** One encoder of a run: the loaded model, its label, where its weights came from, its budget. */
export interface EncoderSpec {
  handle: EncoderHandle;
  label: string;
  /** the model's file or directory, named in errors */
  source: string;
  budget: number;
}

interface Slot {
  batch: PackedBatch;
  tokens: HostBuffer;
  cu: HostBuffer;
  out: HostBuffer;
  ticket: Ticket;
}

/** A part's batches in flight on one encoder. */
export class PendingEncode {
  constructor(
    private readonly runner: EncoderRunner,
    readonly seqs: Int32Array[],
    private slots: Slot[],
    readonly stats: EncodeStats,
    readonly names: (i: number) => string,
  ) {}

  /**
   * Waits for every batch; returns the embeddings in input order as one row-major array
   * (n x dim). Out of memory shrinks the budget and redoes the failed batches.
   */
  finish(): Float32Array {
    const dim = this.runner.dim;
    const result = new Float32Array(this.seqs.length * dim);
    const redo: number[] = [];
    let failure: unknown = null;
    for (const slot of this.slots) {
      try {
        if (failure || redo.length > 0) {
          // Only completion matters for the rest: their buffers return to the pool.
          try {
            slot.ticket.wait();
          } catch {
            // superseded by the first failure, or redone below
          }
          if (!failure) for (const i of slot.batch.indices) redo.push(i);
          continue;
        }
        slot.ticket.wait();
        const out = slot.out.f32();
        const idx = slot.batch.indices;
        for (let j = 0; j < idx.length; j++) result.set(out.subarray(j * dim, (j + 1) * dim), idx[j] * dim);
      } catch (err) {
        if (err instanceof NonFiniteError) {
          const seq = slot.batch.indices[Math.max(0, err.row)];
          failure = new UserError(
            `${this.runner.label} (${this.runner.source}) produced NaN/Inf for ${this.names(seq)}: check the model weights (--precision fp32 to compare)`,
          );
        } else if (err instanceof OutOfMemoryError) {
          for (const i of slot.batch.indices) redo.push(i);
        } else failure = err;
      } finally {
        this.runner.release(slot);
      }
    }
    this.slots = [];
    if (failure) throw failure;
    if (redo.length > 0) {
      const budget = Math.floor(this.runner.budget / 2);
      if (budget < 64) throw new UserError(`${this.runner.label}: out of device memory even at a tiny token budget`);
      this.runner.budget = budget;
      this.runner.warn(`${this.runner.label} ran out of device memory; token budget now ${budget}`);
      const sub = redo.map((i) => this.seqs[i]);
      const again = this.runner.submit(sub, (i) => this.names(redo[i])).finish();
      for (let j = 0; j < redo.length; j++) result.set(again.subarray(j * dim, (j + 1) * dim), redo[j] * dim);
    }
    // Whatever the backend checked: NaN/Inf in an embedding names the frame and the model.
    for (let i = 0; i < result.length; i++)
      if (!Number.isFinite(result[i]))
        throw new UserError(
          `${this.runner.label} (${this.runner.source}) produced NaN/Inf for ${this.names(Math.floor(i / dim))}: check the model weights (--precision fp32 to compare)`,
        );
    return result;
  }
}

export interface RunnerOptions {
  /** the model's file or directory, named in errors */
  source?: string;
  warn?: (msg: string) => void;
  maxSeqsPerBatch?: number;
}

export class EncoderRunner {
  readonly dim: number;
  readonly source: string;
  readonly warn: (msg: string) => void;
  private readonly maxSeqsPerBatch: number;
  private free: Slot[] = [];

  constructor(
    private readonly engine: Engine,
    private readonly handle: EncoderHandle,
    public budget: number,
    readonly label: string,
    opts: RunnerOptions = {},
  ) {
    this.dim = handle.outputDim;
    this.source = opts.source ?? "the model";
    this.warn = opts.warn ?? ((m) => console.error(`virnuc: warning: ${m}`));
    this.maxSeqsPerBatch = opts.maxSeqsPerBatch ?? 4096;
  }

  /** Packs and submits every batch of `seqs` (token id arrays); returns once all are submitted. */
  submit(seqs: Int32Array[], names: (i: number) => string): PendingEncode {
    const steps = this.submitting(seqs, names);
    for (;;) {
      const s = steps.next();
      if (s.done) return s.value;
    }
  }

  /**
   * As submit, but lets the event loop run between batches whose work the CPU backend does
   * inside submit, so that a signal handler can cancel the engine between them.
   */
  async submitYielding(seqs: Int32Array[], names: (i: number) => string): Promise<PendingEncode> {
    const steps = this.submitting(seqs, names);
    const yieldNow = this.engine.backend === "cpu";
    for (;;) {
      const s = steps.next();
      if (s.done) return s.value;
      if (yieldNow) await macrotask();
    }
  }

  /** Submits one batch per step. */
  private *submitting(seqs: Int32Array[], names: (i: number) => string): Generator<void, PendingEncode> {
    const lengths = new Int32Array(seqs.length);
    let total = 0;
    for (let i = 0; i < seqs.length; i++) {
      lengths[i] = seqs[i].length;
      total += seqs[i].length;
    }
    const packing = packBatches(lengths, this.budget, { maxSeqs: this.maxSeqsPerBatch });
    const slots: Slot[] = [];
    try {
      for (const batch of packing.batches) {
        const slot = this.acquire(Math.max(batch.tokens, 1), batch.indices.length);
        slot.batch = batch;
        const { nSeqs } = fillBatch(batch, seqs, slot.tokens.i32(), slot.cu.i32());
        try {
          slot.ticket = this.handle.submitEmbed(slot.tokens, slot.cu, nSeqs, slot.out);
        } catch (err) {
          this.release(slot);
          throw err;
        }
        slots.push(slot);
        yield;
      }
    } catch (err) {
      // Submitted batches still hold their buffers: complete them before giving up.
      for (const s of slots) {
        try {
          s.ticket.wait();
        } catch {
          // the first failure is the one reported
        }
        this.release(s);
      }
      throw err;
    }
    const stats: EncodeStats = {
      sequences: seqs.length,
      tokens: total,
      batches: packing.batches.length,
      efficiency: packing.batches.length ? packing.efficiency : 1,
      budget: this.budget,
      capacity: packing.capacity,
    };
    return new PendingEncode(this, seqs, slots, stats, names);
  }

  /** Reuses a slot whose buffers are large enough, else allocates one (native memory). */
  private acquire(tokens: number, nSeqs: number): Slot {
    const needTok = Math.max(tokens, this.budget) * 4;
    const needCu = (Math.max(nSeqs, this.maxSeqsPerBatch) + 1) * 4;
    const needOut = Math.max(nSeqs, 1) * this.dim * 4;
    const k = this.free.findIndex((s) => s.tokens.bytes >= needTok && s.cu.bytes >= needCu && s.out.bytes >= needOut);
    if (k >= 0) return this.free.splice(k, 1)[0];
    // Size outputs for a typical full batch so slots are reusable across batches.
    const outRows = Math.max(nSeqs, Math.min(this.maxSeqsPerBatch, Math.ceil(this.budget / 16)));
    return {
      batch: undefined as unknown as PackedBatch,
      tokens: this.engine.alloc(needTok),
      cu: this.engine.alloc(needCu),
      out: this.engine.alloc(outRows * this.dim * 4),
      ticket: undefined as unknown as Ticket,
    };
  }

  release(slot: Slot) {
    if (this.free.length < 256) this.free.push(slot);
    else {
      slot.tokens.free();
      slot.cu.free();
      slot.out.free();
    }
  }

  close() {
    for (const s of this.free) {
      s.tokens.free();
      s.cu.free();
      s.out.free();
    }
    this.free = [];
  }
}

/** Both encoders of a part in flight. */
export interface EncodingPart {
  prepared: PreparedPart;
  esm: PendingEncode;
  dnabert: PendingEncode;
  submittedAt: number;
}

/** Completes a part's batches whose results are no longer wanted (their buffers return). */
function drop(p: PendingEncode): void {
  try {
    p.finish();
  } catch {
    // the first failure is the one reported
  }
}

export class PartEncoder {
  readonly esm: EncoderRunner;
  readonly dnabert: EncoderRunner;

  constructor(engine: Engine, specs: { esm: EncoderSpec; dnabert: EncoderSpec }, warn?: (msg: string) => void) {
    const runner = (x: EncoderSpec) => new EncoderRunner(engine, x.handle, x.budget, x.label, { source: x.source, warn });
    this.esm = runner(specs.esm);
    this.dnabert = runner(specs.dnabert);
  }

  async submit(p: PreparedPart): Promise<EncodingPart> {
    const name = (i: number) => `frame ${p.frameIds[i]}`;
    // DNABERT-S first: it is short, so the classifier of this part can start sooner.
    const dnabert = await this.dnabert.submitYielding(p.dnabertTokens, name);
    let esm: PendingEncode;
    try {
      esm = await this.esm.submitYielding(p.esmTokens, name);
    } catch (err) {
      drop(dnabert);
      throw err;
    }
    return { prepared: p, esm, dnabert, submittedAt: performance.now() };
  }

  /** Waits for both encoders of a part; embeddings in frame order. */
  collect(f: EncodingPart): EncodedPart {
    const t0 = performance.now();
    let dnabert: Float32Array;
    try {
      dnabert = f.dnabert.finish();
    } catch (err) {
      drop(f.esm);
      throw err;
    }
    const esm = f.esm.finish();
    const doneAt = performance.now();
    return {
      prepared: f.prepared,
      dnabert,
      esm,
      dnabertDim: this.dnabert.dim,
      esmDim: this.esm.dim,
      stats: {
        esm: f.esm.stats,
        dnabert: f.dnabert.stats,
        deviceSeconds: (doneAt - f.submittedAt) / 1000,
        hostWaitSeconds: (doneAt - t0) / 1000,
      },
    };
  }

  close() {
    this.esm.close();
    this.dnabert.close();
  }
}
