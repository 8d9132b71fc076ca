/**
 * Drives one encoder over a part's sequences: balanced packing into token-budget
 * batches, token ids and cu_seqlens written straight into native host buffers, asynchronous
 * submission, and pooled embeddings gathered back into input order.
 */
import { packBatches, fillBatch, type PackedBatch } from "../pack/ffd.ts";
import type { Engine, EncoderHandle, HostBuffer, Ticket } from "../engine/engine.ts";
import { NonFiniteError, OutOfMemoryError } from "../engine/engine.ts";
import { UserError } from "../util/errors.ts";

export interface EncodeStats {
  sequences: number;
  tokens: number;
  batches: number;
  /** real tokens / sum over batches of max(capacity, batch tokens) (src/pack/ffd.ts) */
  efficiency: number;
  budget: number;
  /** the largest batch made (<= budget unless one sequence is longer) */
  capacity: number;
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
    let redo: number[] = [];
    for (const slot of this.slots) {
      try {
        if (redo.length > 0) throw new OutOfMemoryError("earlier batch failed");
        slot.ticket.wait();
        const out = slot.out.f32();
        const idx = slot.batch.indices;
        for (let j = 0; j < idx.length; j++) {
          result.set(out.subarray(j * dim, (j + 1) * dim), idx[j] * dim);
        }
      } catch (err) {
        if (err instanceof NonFiniteError) {
          const seq = slot.batch.indices[err.row];
          throw new UserError(
            `${this.runner.label} produced NaN/Inf for ${this.names(seq)}: check the model weights (--precision fp32 to compare)`,
          );
        }
        if (!(err instanceof OutOfMemoryError)) throw err;
        for (const i of slot.batch.indices) redo.push(i);
      } finally {
        this.runner.release(slot);
      }
    }
    this.slots = [];
    if (redo.length > 0) {
      const budget = Math.floor(this.runner.budget / 2);
      if (budget < 64) throw new UserError(`${this.runner.label}: out of device memory even at a tiny token budget`);
      this.runner.budget = budget;
      console.error(`virnuc: warning: ${this.runner.label} ran out of device memory; token budget now ${budget}`);
      const sub = redo.map((i) => this.seqs[i]);
      const again = this.runner.submit(sub, (i) => this.names(redo[i])).finish();
      for (let j = 0; j < redo.length; j++) result.set(again.subarray(j * dim, (j + 1) * dim), redo[j] * dim);
    }
    return result;
  }
}

export class EncoderRunner {
  readonly dim: number;
  private free: Slot[] = [];

  constructor(
    private readonly engine: Engine,
    private readonly handle: EncoderHandle,
    public budget: number,
    readonly label: string,
    private readonly maxSeqsPerBatch = 4096,
  ) {
    this.dim = handle.outputDim;
  }

  /** Packs and submits every batch of `seqs` (token id arrays); returns at once. */
  submit(seqs: Int32Array[], names: (i: number) => string): PendingEncode {
    const lengths = new Int32Array(seqs.length);
    let total = 0;
    for (let i = 0; i < seqs.length; i++) {
      lengths[i] = seqs[i].length;
      total += seqs[i].length;
    }
    const packing = packBatches(lengths, this.budget, { maxSeqs: this.maxSeqsPerBatch });
    const slots: Slot[] = [];
    for (const batch of packing.batches) {
      const slot = this.acquire(Math.max(batch.tokens, 1), batch.indices.length);
      slot.batch = batch;
      const { nSeqs } = fillBatch(batch, seqs, slot.tokens.i32(), slot.cu.i32());
      slot.ticket = this.handle.submitEmbed(slot.tokens, slot.cu, nSeqs, slot.out);
      slots.push(slot);
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
