/**
 * Typed wrapper over libvirnuc: owns the engine, model handles and native host buffers, and
 * keeps every buffer a pending ticket uses alive (and unfreed) until the ticket completes.
 */
import { ptr as addressOf, toArrayBuffer, type Pointer } from "bun:ffi";
import { UserError } from "../util/errors.ts";
import { DTYPE_BYTES, numel, type ClassifierConfig, type EncoderConfig, type HostTensor } from "../models/tensor.ts";
import { ArchCode, BackendCode, DTypeCode, PrecisionCode, Status, lastError, lib } from "./ffi.ts";

export type Backend = "cpu" | "cuda";
export type Precision = "fp32" | "fp16" | "fp8";

/** A failure reported by libvirnuc; status is the vn_status code. */
export class EngineError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "EngineError";
  }
}

/** A batch produced NaN or Inf; row is the index of the first bad sequence/row in that batch. */
export class NonFiniteError extends EngineError {
  constructor(
    readonly row: number,
    message = `NaN or Inf in output row ${row}`,
  ) {
    super(message, Status.NONFINITE);
    this.name = "NonFiniteError";
  }
}

/** The engine ran out of (device or host) memory: shrink the batch and retry. */
export class OutOfMemoryError extends EngineError {
  constructor(message = "out of memory") {
    super(message, Status.OOM);
    this.name = "OutOfMemoryError";
  }
}

/** The engine was cancelled (Ctrl-C): the work was not done. */
export class CancelledError extends EngineError {
  constructor(message = "cancelled") {
    super(message, Status.CANCELLED);
    this.name = "CancelledError";
  }
}

export function backendAvailable(b: Backend): boolean {
  return lib().vn_backend_available(BackendCode[b]) === 1;
}

export function cudaDeviceCount(): number {
  return lib().vn_cuda_device_count();
}

function toPointer(p: Pointer | bigint | null): Pointer | null {
  if (p === null) return null;
  const n = typeof p === "bigint" ? Number(p) : p;
  return n === 0 ? null : (n as Pointer);
}

function errorFor(status: number, message: string, row = -1): EngineError {
  if (status === Status.NONFINITE) return new NonFiniteError(row, message);
  if (status === Status.OOM) return new OutOfMemoryError(message);
  if (status === Status.CANCELLED) return new CancelledError(message);
  return new EngineError(`libvirnuc: ${message}`, status);
}

/** Native memory from vn_host_alloc (pinned on CUDA), viewed through toArrayBuffer. */
export class HostBuffer {
  private view: ArrayBuffer | null;
  private freed = false;
  private freeWhenIdle = false;
  /** @internal Pending tickets that read or write this buffer. */
  pending = 0;

  constructor(
    private readonly engine: Engine,
    readonly ptr: number,
    readonly bytes: number,
  ) {
    this.view = bytes > 0 ? toArrayBuffer(ptr as Pointer, 0, bytes) : new ArrayBuffer(0);
  }

  get isFreed(): boolean {
    return this.freed || this.freeWhenIdle;
  }

  private buffer(): ArrayBuffer {
    if (this.freed || !this.view) throw new Error("HostBuffer used after free()");
    return this.view;
  }

  u8(): Uint8Array {
    return new Uint8Array(this.buffer());
  }
  i32(): Int32Array {
    return new Int32Array(this.buffer(), 0, this.bytes >>> 2);
  }
  f32(): Float32Array {
    return new Float32Array(this.buffer(), 0, this.bytes >>> 2);
  }

  /** Returns the memory to the engine; deferred while a pending ticket still uses it. */
  free(): void {
    if (this.freed) return;
    if (this.pending > 0) {
      this.freeWhenIdle = true;
      return;
    }
    this.release();
  }

  /** Called by tickets as they complete. */
  settled(): void {
    this.pending--;
    if (this.pending === 0 && this.freeWhenIdle) this.release();
  }

  private release(): void {
    this.freed = true;
    // Detach the array buffer before the memory goes back: typed arrays still held on it become
    // empty, so a late write is lost instead of landing in freed native memory (heap corruption).
    const view = this.view;
    this.view = null;
    if (view && view.byteLength > 0) view.transfer(0);
    this.engine.releaseBuffer(this);
  }
}

/** One submitted batch; completes in submission order per engine. */
export class Ticket {
  private done = false;
  private status: number = Status.OK;
  private message = "";
  private row = -1;

  constructor(
    private readonly engine: Engine,
    readonly id: bigint,
    private refs: HostBuffer[],
  ) {
    for (const b of refs) b.pending++;
    engine.track(this);
  }

  /** Blocks until the work is done; throws NonFiniteError, OutOfMemoryError or EngineError. */
  wait(): void {
    if (!this.done) this.complete(this.engine.native().vn_wait(this.engine.handle(), this.id));
    this.raise();
  }

  /** True when finished (wait() then returns or throws at once). */
  poll(): boolean {
    if (this.done) return true;
    const st = this.engine.native().vn_poll(this.engine.handle(), this.id);
    if (st === Status.PENDING) return false;
    this.complete(st);
    return true;
  }

  private complete(status: number): void {
    this.status = status;
    if (status !== Status.OK) {
      this.message = lastError();
      if (status === Status.NONFINITE) this.row = this.engine.native().vn_ticket_bad_row(this.engine.handle(), this.id);
    }
    this.done = true;
    for (const b of this.refs) b.settled();
    this.refs = [];
    this.engine.untrack(this);
  }

  private raise(): void {
    if (this.status !== Status.OK) throw errorFor(this.status, this.message, this.row);
  }
}

interface ModelOwner {
  closeModel(m: ModelHandle): void;
}

abstract class ModelHandle {
  protected ptr: Pointer | null;
  constructor(
    protected readonly engine: Engine & ModelOwner,
    ptr: Pointer,
  ) {
    this.ptr = ptr;
  }
  /** The native handle; throws once closed. */
  handle(): Pointer {
    if (!this.ptr) throw new Error("model used after close()");
    return this.ptr;
  }
  /** Waits for pending work, then frees the model. */
  close(): void {
    if (!this.ptr) return;
    this.engine.closeModel(this);
  }
  /** @internal */
  destroyNative(): void {
    if (!this.ptr) return;
    this.engine.native().vn_model_destroy(this.ptr);
    this.ptr = null;
  }
}

function checkBuffer(b: HostBuffer, engine: Engine, what: string, minBytes: number): void {
  if (b.isFreed) throw new Error(`${what}: buffer was freed`);
  if (!engine.owns(b)) throw new Error(`${what}: buffer belongs to another engine`);
  if (b.bytes < minBytes) throw new Error(`${what}: buffer holds ${b.bytes} bytes, ${minBytes} needed`);
}

export class EncoderHandle extends ModelHandle {
  readonly outputDim: number;
  constructor(engine: Engine & ModelOwner, ptr: Pointer, readonly config: EncoderConfig) {
    super(engine, ptr);
    this.outputDim = engine.native().vn_model_output_dim(ptr);
  }

  /**
   * Embeds one packed batch: tokens[cu[i] .. cu[i+1]) is sequence i; out gets nSeqs x outputDim
   * float32. The three buffers must not be changed until the ticket completes.
   */
  submitEmbed(tokens: HostBuffer, cuSeqlens: HostBuffer, nSeqs: number, out: HostBuffer): Ticket {
    if (!Number.isInteger(nSeqs) || nSeqs < 0) throw new Error(`submitEmbed: bad sequence count ${nSeqs}`);
    checkBuffer(cuSeqlens, this.engine, "submitEmbed cu_seqlens", (nSeqs + 1) * 4);
    const nTokens = nSeqs > 0 ? cuSeqlens.i32()[nSeqs] : 0;
    checkBuffer(tokens, this.engine, "submitEmbed tokens", nTokens * 4);
    checkBuffer(out, this.engine, "submitEmbed out", nSeqs * this.outputDim * 4);
    const ticket = new BigInt64Array(1);
    const st = this.engine
      .native()
      .vn_submit_embed(this.handle(), tokens.ptr as Pointer, cuSeqlens.ptr as Pointer, nSeqs, out.ptr as Pointer, ticket);
    if (st !== Status.OK) throw errorFor(st, lastError());
    return new Ticket(this.engine, ticket[0], [tokens, cuSeqlens, out]);
  }

  /** Tokens per packed batch that fit the engine's memory for this model. */
  suggestTokenBudget(): number {
    return Number(this.engine.native().vn_model_suggest_token_budget(this.handle()));
  }
}

export class ClassifierHandle extends ModelHandle {
  readonly nClasses: number;
  constructor(engine: Engine & ModelOwner, ptr: Pointer, readonly config: ClassifierConfig) {
    super(engine, ptr);
    this.nClasses = engine.native().vn_model_output_dim(ptr);
  }

  /** features: nRows x inFeatures float32 -> out: nRows x nClasses softmax probabilities. */
  submitClassify(features: HostBuffer, nRows: number, out: HostBuffer): Ticket {
    if (!Number.isInteger(nRows) || nRows < 0) throw new Error(`submitClassify: bad row count ${nRows}`);
    checkBuffer(features, this.engine, "submitClassify features", nRows * this.config.inFeatures * 4);
    checkBuffer(out, this.engine, "submitClassify out", nRows * this.nClasses * 4);
    const ticket = new BigInt64Array(1);
    const st = this.engine
      .native()
      .vn_submit_classify(this.handle(), features.ptr as Pointer, nRows, out.ptr as Pointer, ticket);
    if (st !== Status.OK) throw errorFor(st, lastError());
    return new Ticket(this.engine, ticket[0], [features, out]);
  }
}

const VN_TENSOR_BYTES = 56; // name ptr, dtype i32, ndim i32, shape i64[4], data ptr
const VN_CONFIG_BYTES = 72; // 11 scalar fields + reserved[7]

interface ConfigFields {
  arch: number;
  nLayers: number;
  hidden: number;
  nHeads: number;
  intermediate: number;
  vocab: number;
  eps: number;
  maskTokenId: number;
  tokenDropout: number;
  nClasses: number;
  maxPoolPositions: number;
}

function packConfig(c: ConfigFields): Uint8Array {
  const bytes = new Uint8Array(VN_CONFIG_BYTES);
  const dv = new DataView(bytes.buffer);
  const ints: [number, number][] = [
    [0, c.arch],
    [4, c.nLayers],
    [8, c.hidden],
    [12, c.nHeads],
    [16, c.intermediate],
    [20, c.vocab],
    [28, c.maskTokenId],
    [32, c.tokenDropout],
    [36, c.nClasses],
    [40, c.maxPoolPositions],
  ];
  for (const [off, v] of ints) dv.setInt32(off, v, true);
  dv.setFloat32(24, c.eps, true);
  return bytes;
}

/** Float data the library accepts as is (f32/f16/bf16); anything else becomes f32 here. */
function loadableData(name: string, t: HostTensor): { dtype: number; data: Uint8Array } {
  const n = numel(t.shape);
  const want = n * DTYPE_BYTES[t.dtype];
  if (t.data.byteLength !== want)
    throw new UserError(`tensor ${name}: ${t.data.byteLength} bytes of data, ${want} expected for ${t.dtype} [${t.shape.join(", ")}]`);
  if (t.dtype === "f32" || t.dtype === "f16" || t.dtype === "bf16") return { dtype: DTypeCode[t.dtype], data: t.data };
  const out = new Float32Array(n);
  const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  for (let i = 0; i < n; i++) {
    switch (t.dtype) {
      case "f64": out[i] = dv.getFloat64(i * 8, true); break;
      case "i64": out[i] = Number(dv.getBigInt64(i * 8, true)); break;
      case "i32": out[i] = dv.getInt32(i * 4, true); break;
      case "i16": out[i] = dv.getInt16(i * 2, true); break;
      case "i8": out[i] = dv.getInt8(i); break;
      case "u8": case "bool": out[i] = dv.getUint8(i); break;
    }
  }
  return { dtype: DTypeCode.f32, data: new Uint8Array(out.buffer) };
}

export class Engine implements ModelOwner {
  private ptr: Pointer | null;
  private readonly buffers = new Set<HostBuffer>();
  private readonly models = new Set<ModelHandle>();
  private readonly pending = new Set<Ticket>();

  private constructor(
    ptr: Pointer,
    readonly backend: Backend,
  ) {
    this.ptr = ptr;
  }

  /** threads: CPU threads (0 or absent = all cores); device: CUDA device index. */
  static create(backend: Backend, opts: { device?: number; threads?: number } = {}): Engine {
    const L = lib();
    const out = new BigUint64Array(1);
    const st = L.vn_engine_create(BackendCode[backend], opts.device ?? 0, opts.threads ?? 0, out);
    if (st !== Status.OK) {
      const msg = lastError();
      if (st === Status.UNSUPPORTED || st === Status.INVALID) throw new UserError(`cannot use the ${backend} backend: ${msg}`);
      throw errorFor(st, `cannot create the ${backend} engine: ${msg}`);
    }
    return new Engine(Number(out[0]) as Pointer, backend);
  }

  /** @internal */
  native() {
    return lib();
  }

  /** @internal The native engine handle; throws once closed. */
  handle(): Pointer {
    if (!this.ptr) throw new Error("engine used after close()");
    return this.ptr;
  }

  describe(): string {
    const buf = new Uint8Array(512);
    const st = lib().vn_engine_describe(this.handle(), buf, buf.length);
    if (st !== Status.OK) throw errorFor(st, lastError());
    const end = buf.indexOf(0);
    return new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end));
  }

  /** Free and total bytes of the engine's memory (device memory on CUDA, physical memory on CPU). */
  memory(): { free: number; total: number } {
    const free = new BigInt64Array(1);
    const total = new BigInt64Array(1);
    const st = lib().vn_engine_memory(this.handle(), free, total);
    if (st !== Status.OK) throw errorFor(st, lastError());
    return { free: Number(free[0]), total: Number(total[0]) };
  }

  /**
   * Stops the engine's work for good (safe from a signal handler): later submissions throw
   * CancelledError, queued work the backend has not started completes as cancelled.
   */
  cancel(): void {
    if (!this.ptr) return;
    this.cancelled = true;
    lib().vn_engine_cancel(this.ptr);
  }

  /** True once cancel() was called. */
  cancelled = false;

  alloc(bytes: number): HostBuffer {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new Error(`alloc: bad size ${bytes}`);
    const p = toPointer(lib().vn_host_alloc(this.handle(), bytes));
    if (!p) throw new OutOfMemoryError(`host allocation of ${bytes} bytes failed: ${lastError()}`);
    const b = new HostBuffer(this, p, bytes);
    this.buffers.add(b);
    return b;
  }

  loadEncoder(config: EncoderConfig, tensors: Map<string, HostTensor>, precision: Precision): EncoderHandle {
    const esm = config.arch === "esm2";
    const fields: ConfigFields = {
      arch: ArchCode[config.arch],
      nLayers: config.nLayers,
      hidden: config.hidden,
      nHeads: config.nHeads,
      intermediate: config.intermediate,
      vocab: config.vocab,
      eps: config.lnEps,
      maskTokenId: esm ? (config.maskTokenId ?? 32) : -1,
      tokenDropout: esm && (config.tokenDropout ?? true) ? 1 : 0,
      nClasses: 0,
      maxPoolPositions: esm ? (config.maxPoolPositions ?? 1024) : 0,
    };
    const label = esm ? "ESM-2" : "DNABERT-S";
    const p = this.load(label, fields, tensors, precision);
    const h = new EncoderHandle(this, p, config);
    this.models.add(h);
    return h;
  }

  loadClassifier(config: ClassifierConfig, tensors: Map<string, HostTensor>): ClassifierHandle {
    const fields: ConfigFields = {
      arch: ArchCode.mlp,
      nLayers: 1,
      hidden: config.inFeatures,
      nHeads: 1,
      intermediate: config.hidden,
      vocab: 0,
      eps: config.bnEps,
      maskTokenId: -1,
      tokenDropout: 0,
      nClasses: config.nClasses,
      maxPoolPositions: 0,
    };
    const p = this.load("classifier", fields, tensors, "fp32");
    const h = new ClassifierHandle(this, p, config);
    this.models.add(h);
    return h;
  }

  private load(label: string, fields: ConfigFields, tensors: Map<string, HostTensor>, precision: Precision): Pointer {
    const entries = [...tensors.entries()];
    const keep: Uint8Array[] = []; // data views that must stay referenced during the call
    const enc = new TextEncoder();
    const names = entries.map(([name]) => enc.encode(name));
    const nameBytes = names.reduce((s, n) => s + n.length + 1, 0);
    const table = this.alloc(Math.max(1, entries.length) * VN_TENSOR_BYTES + nameBytes);
    try {
      const dv = new DataView(table.u8().buffer);
      const u8 = table.u8();
      let nameAt = entries.length * VN_TENSOR_BYTES;
      entries.forEach(([name, t], i) => {
        if (t.shape.length > 4) throw new UserError(`tensor ${name}: ${t.shape.length} dimensions, at most 4 supported`);
        const { dtype, data } = loadableData(name, t);
        keep.push(data);
        const base = i * VN_TENSOR_BYTES;
        u8.set(names[i], nameAt);
        u8[nameAt + names[i].length] = 0;
        dv.setBigUint64(base, BigInt(table.ptr + nameAt), true);
        nameAt += names[i].length + 1;
        dv.setInt32(base + 8, dtype, true);
        dv.setInt32(base + 12, t.shape.length, true);
        for (let d = 0; d < 4; d++) dv.setBigInt64(base + 16 + d * 8, BigInt(t.shape[d] ?? 0), true);
        dv.setBigUint64(base + 48, BigInt(data.byteLength > 0 ? addressOf(data) : 0), true);
      });
      const out = new BigUint64Array(1);
      const st = lib().vn_model_load(
        this.handle(),
        packConfig(fields),
        table.ptr as Pointer,
        entries.length,
        PrecisionCode[precision],
        out,
      );
      if (st !== Status.OK) {
        const msg = lastError();
        if (st === Status.BACKEND) throw errorFor(st, `loading the ${label} model: ${msg}`);
        throw new UserError(`cannot load the ${label} model: ${msg}`);
      }
      return Number(out[0]) as Pointer;
    } finally {
      table.free();
      keep.length = 0;
    }
  }

  /** @internal */
  owns(b: HostBuffer): boolean {
    return this.buffers.has(b);
  }
  /** @internal */
  releaseBuffer(b: HostBuffer): void {
    if (!this.buffers.delete(b)) return;
    if (this.ptr) lib().vn_host_free(this.ptr, b.ptr as Pointer);
  }
  /** @internal */
  track(t: Ticket): void {
    this.pending.add(t);
  }
  /** @internal */
  untrack(t: Ticket): void {
    this.pending.delete(t);
  }
  /** @internal Completes every pending ticket, ignoring their errors (their owners have gone). */
  drain(): void {
    for (const t of [...this.pending]) {
      try {
        t.wait();
      } catch {
        // reported to whoever waits on the ticket; here only completion matters
      }
    }
  }
  /** @internal */
  closeModel(m: ModelHandle): void {
    this.drain();
    m.destroyNative();
    this.models.delete(m);
  }

  /** Waits for pending work, frees models and buffers, destroys the engine. Idempotent. */
  close(): void {
    if (!this.ptr) return;
    this.drain();
    for (const m of [...this.models]) this.closeModel(m);
    for (const b of [...this.buffers]) b.free();
    lib().vn_engine_destroy(this.ptr);
    this.ptr = null;
  }
}
