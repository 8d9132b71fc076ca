/**
 * A pickle virtual machine that builds plain values and never runs code.
 * Only callables on an allow-list are applied (OrderedDict, set, torch tensor rebuilders passed in);
 * any other class or function becomes an inert PyObject that records its arguments and BUILD state.
 *
 * Values: None -> null, bool, int -> number (bigint past 2^53), float -> number, str -> string,
 * bytes -> Uint8Array, list and tuple -> array, dict -> Map, set -> Set.
 */
import { oneLine, UserError } from "../util/errors.ts";

/** An instance of a class the reader does not construct: its constructor arguments and state, recorded. */
export class PyObject {
  __state__: unknown = undefined;
  /** dict-like items set on the object (a dict subclass), and list-like items appended. */
  __items__?: Map<unknown, unknown>;
  __list__?: unknown[];
  constructor(
    readonly __class__: string,
    readonly __args__: unknown[],
  ) {}

  /** A field of the recorded state (`obj.__dict__[key]`), if the state is a dict. */
  get(key: string): unknown {
    const s = this.__state__;
    return s instanceof Map ? s.get(key) : undefined;
  }
}

/** A reference to a module-level name (a class, function or torch dtype) as it appears in GLOBAL. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}

export type Callable = (args: unknown[]) => unknown;

export interface UnpickleOptions {
  /** Names the errors point at (the file, and the entry inside it). */
  source: string;
  persistentLoad?: (pid: unknown) => unknown;
  /** Allow-listed callables by qualified name, on top of the built-in ones. */
  callables?: Record<string, Callable>;
}

/** Python 2 module names that protocol-2 pickles write for builtins. */
const MODULE_ALIASES: Record<string, string> = { __builtin__: "builtins", copy_reg: "copyreg" };

const BUILTIN_CALLABLES: Record<string, Callable> = {
  "collections.OrderedDict": (args) => dictFrom(args[0]),
  "builtins.dict": (args) => dictFrom(args[0]),
  "builtins.set": (args) => new Set(args.length ? iterable(args[0]) : []),
  "builtins.frozenset": (args) => new Set(args.length ? iterable(args[0]) : []),
  "builtins.list": (args) => (args.length ? [...iterable(args[0])] : []),
  "builtins.tuple": (args) => (args.length ? [...iterable(args[0])] : []),
  "builtins.bytearray": (args) => bytesFrom(args[0]),
  "builtins.bytes": (args) => bytesFrom(args[0]),
  // protocol 2 writes bytes as _codecs.encode(str, "latin1")
  "_codecs.encode": (args) => bytesFrom(args[0]),
  "copyreg._reconstructor": (args) => {
    const cls = args[0];
    return new PyObject(cls instanceof PyGlobal ? cls.qualname : String(cls), []);
  },
};

function iterable(v: unknown): Iterable<unknown> {
  if (Array.isArray(v) || v instanceof Set) return v;
  if (v instanceof Map) return v.keys();
  if (typeof v === "string") return v;
  throw new Error("not iterable");
}

function dictFrom(v: unknown): Map<unknown, unknown> {
  if (v === undefined || v === null) return new Map();
  if (v instanceof Map) return new Map(v);
  const m = new Map<unknown, unknown>();
  for (const kv of iterable(v)) {
    if (!Array.isArray(kv) || kv.length !== 2) throw new Error("dict() needs key/value pairs");
    m.set(kv[0], kv[1]);
  }
  return m;
}

function bytesFrom(v: unknown): Uint8Array {
  if (v === undefined) return new Uint8Array(0);
  if (v instanceof Uint8Array) return v.slice();
  if (typeof v === "string") {
    const out = new Uint8Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = v.charCodeAt(i) & 0xff;
    return out;
  }
  if (Array.isArray(v)) return Uint8Array.from(v as number[]);
  throw new Error("cannot make bytes");
}

/** Python's limit on the digits of a text integer (sys.int_info.default_max_str_digits). */
const MAX_INT_DIGITS = 4300;
/** Longest binary integer accepted (LONG1/LONG4), in bytes; state dicts hold small ints only. */
const MAX_LONG_BYTES = 1 << 12;

/** The size of a value made by a callable, for the work budget. */
function sizeOf(v: unknown): number {
  if (Array.isArray(v) || typeof v === "string") return v.length;
  if (v instanceof Map || v instanceof Set) return v.size;
  if (v instanceof Uint8Array) return v.byteLength >>> 3;
  return 1;
}

/**
 * Run a pickle (protocols 0-5, the opcodes torch and numpy-free checkpoints use) and return its value.
 * Hostile input gets a one-line error, in time and memory linear in its size: the machine has no
 * recursion, integers are bounded, and what allow-listed callables copy (dict(x), list(x), ...)
 * counts against a budget proportional to the pickle's length.
 */
export function unpickle(data: Uint8Array, opts: UnpickleOptions): unknown {
  let opPos = 0;
  try {
    return run(data, opts, (p) => (opPos = p));
  } catch (e) {
    if (e instanceof UserError) throw e;
    const why = e instanceof RangeError ? "too large or too deeply nested" : oneLine(e);
    throw new UserError(`${opts.source}: cannot read pickle: ${why} (byte ${opPos})`);
  }
}

function run(data: Uint8Array, opts: UnpickleOptions, at: (p: number) => void): unknown {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const callables: Record<string, Callable> = { ...BUILTIN_CALLABLES, ...opts.callables };
  const dec = new TextDecoder();
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();
  let p = 0;
  let opPos = 0;
  // elements that callables and BUILD may copy, in all: bounded by the pickle's own size
  let work = 16 * data.length + (1 << 20);
  const spend = (n: number) => {
    work -= n;
    if (work < 0) fail("the pickle builds far more data than it holds (a decompression bomb?)");
  };

  const fail = (why: string): never => {
    throw new UserError(`${opts.source}: cannot read pickle: ${why} (byte ${opPos})`);
  };
  const need = (n: number) => {
    if (p + n > data.length) fail("truncated");
  };
  const u8 = () => (need(1), data[p++]);
  const u16 = () => (need(2), (p += 2), dv.getUint16(p - 2, true));
  const i32 = () => (need(4), (p += 4), dv.getInt32(p - 4, true));
  const u32 = () => (need(4), (p += 4), dv.getUint32(p - 4, true));
  const u64 = () => {
    need(8);
    p += 8;
    const v = dv.getBigUint64(p - 8, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail("length too large");
    return Number(v);
  };
  const bytes = (n: number) => (need(n), (p += n), data.subarray(p - n, p));
  const rawLine = () => {
    const end = data.indexOf(0x0a, p);
    if (end < 0) fail("unterminated text argument");
    const b = data.subarray(p, end);
    p = end + 1;
    return b;
  };
  const line = () => dec.decode(rawLine());
  const pop = () => {
    if (stack.length === 0) fail("stack underflow");
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) fail("stack underflow");
    return stack[stack.length - 1];
  };
  const popMark = () => {
    const items = stack;
    const prev = marks.pop();
    if (!prev) fail("MARK missing");
    stack = prev!;
    return items;
  };
  const global = (module: string, name: string) => new PyGlobal(MODULE_ALIASES[module] ?? module, name);
  const call = (fn: unknown, args: unknown[]): unknown => {
    if (!(fn instanceof PyGlobal)) {
      if (fn instanceof PyObject) return new PyObject(fn.__class__, args);
      return fail("call of a value that is not a class or function");
    }
    const f = callables[fn.qualname];
    if (!f) return new PyObject(fn.qualname, args);
    // what a call may copy: its arguments' contents
    for (const a of args) spend(sizeOf(a));
    let out: unknown;
    try {
      out = f(args);
    } catch (e) {
      if (e instanceof UserError) throw e;
      return fail(`${fn.qualname}: ${(e as Error).message}`);
    }
    spend(sizeOf(out));
    return out;
  };
  const long = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    if (b.length > MAX_LONG_BYTES) fail(`integer of ${b.length} bytes`);
    let hex = "";
    for (let i = b.length - 1; i >= 0; i--) hex += b[i].toString(16).padStart(2, "0");
    let v = BigInt(`0x${hex}`);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const textInt = (s: string): number | bigint => {
    const t = s.trim();
    if (!/^[+-]?\d+$/.test(t) || t.replace(/^[+-]?0*/, "").length > MAX_INT_DIGITS) fail(`bad integer ${JSON.stringify(s.slice(0, 40))}`);
    const v = BigInt(t);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
  };
  const memoKey = (s: string): number => {
    const k = Number(s.trim());
    if (!Number.isSafeInteger(k) || k < 0) fail(`bad memo key ${JSON.stringify(s.slice(0, 40))}`);
    return k;
  };
  const setItems = (target: unknown, kv: unknown[]) => {
    if (kv.length % 2) fail("odd number of dict items");
    let m: Map<unknown, unknown>;
    if (target instanceof Map) m = target;
    else if (target instanceof PyObject) m = target.__items__ ??= new Map();
    else return fail("SETITEM on a value that is not a dict");
    for (let i = 0; i < kv.length; i += 2) m.set(kv[i], kv[i + 1]);
  };
  const appendItems = (target: unknown, items: unknown[]) => {
    // one at a time: push(...items) overflows the call stack for long lists
    if (Array.isArray(target)) for (const x of items) target.push(x);
    else if (target instanceof PyObject) {
      const list = (target.__list__ ??= []);
      for (const x of items) list.push(x);
    } else if (target instanceof Set) for (const x of items) target.add(x);
    else fail("APPEND on a value that is not a list");
  };

  for (;;) {
    opPos = p;
    at(p);
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        u8();
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack`);
        return stack[0];
      case 0x28: // MARK
        marks.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length === 0 && marks.length > 0) popMark();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(long(bytes(u8())));
        break;
      case 0x8b: {
        // LONG4
        const n = i32();
        if (n < 0) fail("negative LONG4 length");
        stack.push(long(bytes(n)));
        break;
      }
      case 0x49: {
        // INT (text): also protocol 0's True/False
        const s = line();
        if (s === "01") stack.push(true);
        else if (s === "00") stack.push(false);
        else stack.push(textInt(s));
        break;
      }
      case 0x4c: // LONG (text)
        stack.push(textInt(line().replace(/L$/, "")));
        break;
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        stack.push(dv.getFloat64(p, false));
        p += 8;
        break;
      case 0x46: {
        // FLOAT (text)
        const s = line().trim();
        const v = /^[+-]?nan$/i.test(s) ? NaN : /^[+-]?inf$/i.test(s) ? (s.startsWith("-") ? -Infinity : Infinity) : Number(s);
        if (s === "" || (Number.isNaN(v) && !/nan/i.test(s))) fail(`bad float ${JSON.stringify(s.slice(0, 40))}`);
        stack.push(v);
        break;
      }
      case 0x58: // BINUNICODE
        stack.push(dec.decode(bytes(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(dec.decode(bytes(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(dec.decode(bytes(u64())));
        break;
      case 0x56: // UNICODE (text, raw-unicode-escape)
        stack.push(rawUnicodeEscape(latin1(rawLine())));
        break;
      case 0x54: // BINSTRING (py2 str, bytes read as latin-1 text)
        stack.push(latin1(bytes(i32())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1(bytes(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(bytes(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(bytes(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(bytes(u64()).slice());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x6c: // LIST
      case 0x74: {
        // TUPLE (pop the mark before touching `stack`: it is a different array afterwards)
        const items = popMark();
        stack.push(items);
        break;
      }
      case 0x64: {
        // DICT
        const m = new Map();
        setItems(m, popMark());
        stack.push(m);
        break;
      }
      case 0x91: {
        // FROZENSET
        const items = popMark();
        stack.push(new Set(items));
        break;
      }
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL needs two strings");
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        if (!Array.isArray(args)) fail("REDUCE arguments are not a tuple");
        stack.push(call(fn, args as unknown[]));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        const cls = pop();
        if (!Array.isArray(args)) fail("NEWOBJ arguments are not a tuple");
        stack.push(call(cls, args as unknown[]));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!Array.isArray(args)) fail("NEWOBJ_EX arguments are not a tuple");
        const all = kwargs instanceof Map && kwargs.size > 0 ? [...(args as unknown[]), kwargs] : (args as unknown[]);
        stack.push(call(cls, all));
        break;
      }
      case 0x62: {
        // BUILD: record the state; objects we construct ourselves ignore it
        const state = pop();
        const obj = top();
        if (obj instanceof PyObject) {
          spend(sizeOf(state) + sizeOf(obj.__state__) + (Array.isArray(state) ? state.reduce((n: number, x) => n + sizeOf(x), 0) : 0));
          build(obj, state);
        }
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail("persistent id without a loader");
        stack.push(opts.persistentLoad!(pid));
        break;
      }
      case 0x50: {
        // PERSID (text)
        const pid = line();
        if (!opts.persistentLoad) fail("persistent id without a loader");
        stack.push(opts.persistentLoad!(pid));
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x70: // PUT (text)
        memo.set(memoKey(line()), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: // LONG_BINGET
      case 0x67: {
        // GET (text)
        const k = op === 0x68 ? u8() : op === 0x6a ? u32() : memoKey(line());
        if (!memo.has(k)) fail(`memo key ${k} missing`);
        stack.push(memo.get(k));
        break;
      }
      default:
        fail(`unsupported opcode 0x${op.toString(16).padStart(2, "0")}${op >= 0x21 && op < 0x7f ? ` ('${String.fromCharCode(op)}')` : ""}`);
    }
  }
}

/** Protocol 0 text: \uXXXX and \UXXXXXXXX escapes; every other byte is a latin-1 character. */
function rawUnicodeEscape(s: string): string {
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, u4, u8) =>
    String.fromCodePoint(Number.parseInt(u4 ?? u8, 16)),
  );
}

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

function build(obj: PyObject, state: unknown): void {
  // (dict_state, slot_state) pairs come from classes with __slots__
  if (Array.isArray(state) && state.length === 2 && (state[0] instanceof Map || state[0] === null)) {
    const merged = new Map<unknown, unknown>();
    if (state[0] instanceof Map) for (const [k, v] of state[0]) merged.set(k, v);
    if (state[1] instanceof Map) for (const [k, v] of state[1]) merged.set(k, v);
    state = merged;
  }
  if (obj.__state__ instanceof Map && state instanceof Map) {
    for (const [k, v] of state) obj.__state__.set(k, v);
  } else {
    obj.__state__ = state;
  }
}

// ---------------------------------------------------------------------------------------------
// Writer: protocol 2, the protocol torch.save uses, for the values the reader understands.

export class Tuple {
  constructor(readonly items: unknown[]) {}
}
/** Forces a float where a JS number would otherwise be written as an int. */
export class Float {
  constructor(readonly value: number) {}
}
/** `callable(*args)`, optionally followed by BUILD(state). */
export class Reduce {
  constructor(
    readonly callable: PyGlobal,
    readonly args: unknown[],
    readonly state?: unknown,
  ) {}
}
/** `cls.__new__(cls, *args)` then BUILD(state): how protocol 2 writes ordinary instances. */
export class NewObj {
  constructor(
    readonly cls: PyGlobal,
    readonly args: unknown[],
    readonly state?: unknown,
  ) {}
}
/** A value written through BINPERSID (torch storages). */
export class PersistentId {
  constructor(readonly pid: unknown) {}
}
/** A dict written as collections.OrderedDict, as torch does for state dicts and module fields. */
export class OrderedDict {
  constructor(readonly map: Map<unknown, unknown>) {}
}

const PY2_MODULES: Record<string, string> = { builtins: "__builtin__", copyreg: "copy_reg" };

export class PickleWriter {
  private out: Uint8Array = new Uint8Array(1 << 16);
  private n = 0;
  private memo = new Map<unknown, number>();
  private globals = new Map<string, number>();
  private enc = new TextEncoder();

  constructor(
    /** Hook for values the writer does not know (torch tensors); return a replacement value. */
    private replace?: (v: unknown) => unknown,
  ) {}

  dump(value: unknown): Uint8Array {
    this.byte(0x80, 2);
    this.value(value);
    this.byte(0x2e);
    return this.out.slice(0, this.n);
  }

  private grow(k: number) {
    if (this.n + k <= this.out.length) return;
    let cap = this.out.length * 2;
    while (cap < this.n + k) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.out.subarray(0, this.n));
    this.out = next;
  }
  private byte(...bs: number[]) {
    this.grow(bs.length);
    for (const b of bs) this.out[this.n++] = b;
  }
  private raw(b: Uint8Array) {
    this.grow(b.length);
    this.out.set(b, this.n);
    this.n += b.length;
  }
  private u32(v: number) {
    this.grow(4);
    new DataView(this.out.buffer).setUint32(this.n, v, true);
    this.n += 4;
  }
  private put(key: unknown) {
    const id = this.memo.size + this.globals.size;
    if (id < 256) this.byte(0x71, id);
    else {
      this.byte(0x72);
      this.u32(id);
    }
    if (key !== undefined) this.memo.set(key, id);
    return id;
  }
  private get(id: number) {
    if (id < 256) this.byte(0x68, id);
    else {
      this.byte(0x6a);
      this.u32(id);
    }
  }

  private global(g: PyGlobal) {
    const module = PY2_MODULES[g.module] ?? g.module;
    const key = `${module}\n${g.name}`;
    const seen = this.globals.get(key);
    if (seen !== undefined) return this.get(seen);
    this.byte(0x63);
    this.raw(this.enc.encode(`${key}\n`));
    const id = this.memo.size + this.globals.size;
    this.put(undefined);
    this.globals.set(key, id);
  }

  private str(s: string) {
    const b = this.enc.encode(s);
    this.byte(0x58);
    this.u32(b.length);
    this.raw(b);
  }

  private int(v: number | bigint) {
    if (typeof v === "number" && v >= 0 && v < 256) return this.byte(0x4b, v);
    if (typeof v === "number" && v >= 0 && v < 65536) return this.byte(0x4d, v & 0xff, v >> 8);
    if (typeof v === "number" && v >= -(2 ** 31) && v < 2 ** 31) {
      this.byte(0x4a);
      this.grow(4);
      new DataView(this.out.buffer).setInt32(this.n, v, true);
      this.n += 4;
      return;
    }
    // LONG1: little-endian two's complement, as few bytes as hold the sign
    let b = BigInt(v);
    const bytes: number[] = [];
    for (;;) {
      bytes.push(Number(b & 0xffn));
      b >>= 8n;
      const signBit = bytes[bytes.length - 1] & 0x80;
      if ((b === 0n && !signBit) || (b === -1n && signBit)) break;
    }
    this.byte(0x8a, bytes.length, ...bytes);
  }

  private float(x: number) {
    this.byte(0x47);
    this.grow(8);
    new DataView(this.out.buffer).setFloat64(this.n, x, false);
    this.n += 8;
  }

  private tuple(items: unknown[]) {
    if (items.length === 0) return this.byte(0x29);
    if (items.length <= 3) {
      for (const x of items) this.value(x);
      return this.byte(0x84 + items.length);
    }
    this.byte(0x28);
    for (const x of items) this.value(x);
    this.byte(0x74);
  }

  private dictItems(m: Map<unknown, unknown>) {
    if (m.size === 0) return;
    this.byte(0x28);
    for (const [k, v] of m) {
      this.value(k);
      this.value(v);
    }
    this.byte(0x75);
  }

  value(v: unknown): void {
    if (this.replace) {
      const r = this.replace(v);
      if (r !== v) return this.value(r);
    }
    if (v === null || v === undefined) return this.byte(0x4e);
    if (v === true) return this.byte(0x88);
    if (v === false) return this.byte(0x89);
    if (typeof v === "number") return Number.isInteger(v) ? this.int(v) : this.float(v);
    if (typeof v === "bigint") return this.int(v);
    if (typeof v === "string") return this.str(v);
    if (v instanceof Float) return this.float(v.value);
    if (v instanceof PyGlobal) return this.global(v);
    const seen = this.memo.get(v);
    if (seen !== undefined) return this.get(seen);
    if (v instanceof Tuple) {
      this.tuple(v.items);
      this.put(v);
    } else if (Array.isArray(v)) {
      this.byte(0x5d);
      this.put(v);
      if (v.length > 0) {
        this.byte(0x28);
        for (const x of v) this.value(x);
        this.byte(0x65);
      }
    } else if (v instanceof Map) {
      this.byte(0x7d);
      this.put(v);
      this.dictItems(v);
    } else if (v instanceof OrderedDict) {
      this.global(new PyGlobal("collections", "OrderedDict"));
      this.byte(0x29, 0x52);
      this.put(v);
      this.dictItems(v.map);
    } else if (v instanceof Set) {
      this.global(new PyGlobal("builtins", "set"));
      this.value([...v]);
      this.byte(0x85, 0x52);
      this.put(v);
    } else if (v instanceof Uint8Array) {
      // protocol 2 has no bytes opcode for Python 3: _codecs.encode(latin1 text, "latin1")
      this.global(new PyGlobal("_codecs", "encode"));
      this.str(latin1(v));
      this.str("latin1");
      this.byte(0x86, 0x52);
      this.put(v);
    } else if (v instanceof Reduce) {
      this.global(v.callable);
      this.tuple(v.args);
      this.byte(0x52);
      this.put(v);
      if (v.state !== undefined) {
        this.value(v.state);
        this.byte(0x62);
      }
    } else if (v instanceof NewObj) {
      this.global(v.cls);
      this.tuple(v.args);
      this.byte(0x81);
      this.put(v);
      if (v.state !== undefined) {
        this.value(v.state);
        this.byte(0x62);
      }
    } else if (v instanceof PersistentId) {
      this.value(v.pid);
      this.byte(0x51);
      this.put(v);
    } else {
      throw new Error(`PickleWriter: cannot write ${Object.prototype.toString.call(v)}`);
    }
  }
}

/** Pickle a value (protocol 2). */
export function pickle(value: unknown, replace?: (v: unknown) => unknown): Uint8Array {
  return new PickleWriter(replace).dump(value);
}
