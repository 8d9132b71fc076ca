import { describe, expect, test } from "bun:test";
import { UserError } from "../util/errors.ts";
import fc from "fast-check";
import { collectTensors, stateDictFrom } from "./checkpoint.ts";
import { FUZZ_TEST_TIMEOUT, fuzz, mutate, mutations } from "./fuzzing.ts";
import { Float, NewObj, OrderedDict, PersistentId, PyGlobal, PyObject, pickle, Reduce, Tuple, unpickle } from "./pickle.ts";

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((h) => Number.parseInt(h, 16)));
const read = (b: Uint8Array) => unpickle(b, { source: "test.pkl" });

/**
 * CPython's pickle.dumps of one value at protocols 0, 2, 4 and 5:
 * {'a': [1, 2.5, True, False, None, b'xy', (1, 2), (7,), (), (1, 2, 3, 4)], 'big': 2**70, 'neg': -5,
 *  'i32': -100000, 'u': 'h\u00e9llo\u4e16', 's': {3}, 'fs': frozenset([4]), 'od': OrderedDict(k=1),
 *  'ns': argparse.Namespace(x=1), 'ba': bytearray(b'z'), 'long': 'x' * 260, 'shared': (lst, lst)} with lst = [9]
 */
const CPYTHON: Record<number, string> = {
  0: "286470300a56610a70310a286c70320a49310a6146322e350a614930310a614930300a614e61635f636f646563730a656e636f64650a70330a285678790a70340a566c6174696e310a70350a7470360a5270370a612849310a49320a7470380a612849370a7470390a612874612849310a49320a49330a49340a747031300a6173566269670a7031310a4c313138303539313632303731373431313330333432344c0a73566e65670a7031320a492d350a73566933320a7031330a492d3130303030300a7356750a7031340a5668e96c6c6f5c75346531360a7031350a7356730a7031360a635f5f6275696c74696e5f5f0a7365740a7031370a28286c7031380a49330a61747031390a527032300a735666730a7032310a635f5f6275696c74696e5f5f0a66726f7a656e7365740a7032320a28286c7032330a49340a61747032340a527032350a73566f640a7032360a63636f6c6c656374696f6e730a4f726465726564446963740a7032370a2874527032380a566b0a7032390a49310a7373566e730a7033300a63636f70795f7265670a5f7265636f6e7374727563746f720a7033310a286361726770617273650a4e616d6573706163650a7033320a635f5f6275696c74696e5f5f0a6f626a6563740a7033330a4e747033340a527033350a28647033360a56780a7033370a49310a7362735662610a7033380a635f5f6275696c74696e5f5f0a6279746561727261790a7033390a2867330a28567a0a7034300a67350a747034310a527034320a747034330a527034340a73566c6f6e670a7034350a5678787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878780a7034360a73567368617265640a7034370a28286c7034380a49390a616734380a747034390a732e",
  2: "80027d71002858010000006171015d7102284b0147400400000000000088894e635f636f646563730a656e636f64650a710358020000007879710458060000006c6174696e3171058671065271074b014b028671084b0785710929284b014b024b034b0474710a655803000000626967710b8a0900000000000000004058030000006e6567710c4afbffffff5803000000693332710d4a6079feff580100000075710e580900000068c3a96c6c6fe4b896710f5801000000737110635f5f6275696c74696e5f5f0a7365740a71115d71124b0361857113527114580200000066737115635f5f6275696c74696e5f5f0a66726f7a656e7365740a71165d71174b046185711852711958020000006f64711a63636f6c6c656374696f6e730a4f726465726564446963740a711b2952711c58010000006b711d4b017358020000006e73711e6361726770617273650a4e616d6573706163650a711f298171207d712158010000007871224b017362580200000062617123635f5f6275696c74696e5f5f0a6279746561727261790a7124680358010000007a7125680586712652712785712852712958040000006c6f6e67712a58040100007878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878712b5806000000736861726564712c5d712d4b0961682d86712e752e",
  4: "80049522020000000000007d94288c0161945d94284b0147400400000000000088894e43027879944b014b0286944b07859429284b014b024b034b047494658c03626967948a090000000000000000408c036e6567944afbffffff8c03693332944a6079feff8c0175948c0968c3a96c6c6fe4b896948c0173948f94284b03908c02667394284b0491948c026f64948c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493942952948c016b944b01738c026e73948c086172677061727365948c094e616d6573706163659493942981947d948c0178944b0173628c026261948c086275696c74696e73948c0962797465617272617994939443017a94859452948c046c6f6e679458040100007878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878948c06736861726564945d944b096168278694752e",
  5: "8005950c020000000000007d94288c0161945d94284b0147400400000000000088894e43027879944b014b0286944b07859429284b014b024b034b047494658c03626967948a090000000000000000408c036e6567944afbffffff8c03693332944a6079feff8c0175948c0968c3a96c6c6fe4b896948c0173948f94284b03908c02667394284b0491948c026f64948c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493942952948c016b944b01738c026e73948c086172677061727365948c094e616d6573706163659493942981947d948c0178944b0173628c026261949601000000000000007a948c046c6f6e679458040100007878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878948c06736861726564945d944b096168228694752e",
};

describe("unpickle: CPython pickles", () => {
  for (const [proto, h] of Object.entries(CPYTHON)) {
    test(`protocol ${proto}`, () => {
      const v = read(hex(h)) as Map<string, unknown>;
      expect(v).toBeInstanceOf(Map);
      const a = v.get("a") as unknown[];
      expect(a.slice(0, 5)).toEqual([1, 2.5, true, false, null]);
      expect(a[5]).toEqual(new Uint8Array([0x78, 0x79]));
      expect(a.slice(6)).toEqual([[1, 2], [7], [], [1, 2, 3, 4]]);
      expect(v.get("big")).toBe(2n ** 70n);
      expect(v.get("neg")).toBe(-5);
      expect(v.get("i32")).toBe(-100000);
      expect(v.get("u")).toBe("h\u00e9llo\u4e16");
      expect(v.get("s")).toEqual(new Set([3]));
      expect(v.get("fs")).toEqual(new Set([4]));
      expect(v.get("od")).toEqual(new Map([["k", 1]]));
      const ns = v.get("ns") as PyObject;
      expect(ns).toBeInstanceOf(PyObject);
      expect(ns.__class__).toBe("argparse.Namespace");
      expect(ns.get("x")).toBe(1);
      expect(v.get("ba")).toEqual(new Uint8Array([0x7a]));
      expect(v.get("long")).toBe("x".repeat(260));
      const shared = v.get("shared") as unknown[][];
      expect(shared[0]).toBe(shared[1]); // memo keeps identity
      expect(shared[0]).toEqual([9]);
    });
  }
});

describe("unpickle: safety and errors", () => {
  test("unknown callables become inert records, never called", () => {
    // os.system("echo hi") as protocol 2: GLOBAL os system, then REDUCE
    const b = hex("8002636f730a73797374656d0a710058070000006563686f206869710185710252710"+"32e");
    const v = read(b) as PyObject;
    expect(v).toBeInstanceOf(PyObject);
    expect(v.__class__).toBe("os.system");
    expect(v.__args__).toEqual(["echo hi"]);
  });

  test("unsupported opcode names the file and the opcode", () => {
    // protocol 2, then EXT1 (0x82), which is not allowed
    expect(() => read(hex("8002820100"))).toThrow(/test\.pkl: cannot read pickle: unsupported opcode 0x82/);
    expect(() => read(hex("8002820100"))).toThrow(UserError);
  });

  test("truncated and malformed pickles are user errors", () => {
    expect(() => read(hex("80025801000000"))).toThrow(/truncated/);
    expect(() => read(hex("80022e"))).toThrow(/STOP with 0 values/);
    expect(() => read(hex("800268052e"))).toThrow(/memo key 5 missing/);
    expect(() => read(hex("8002612e"))).toThrow(/stack underflow/);
  });

  test("persistent ids go to the loader; without one they are refused", () => {
    const b = pickle(new PersistentId(new Tuple(["storage", 3])));
    expect(unpickle(b, { source: "x", persistentLoad: (pid) => ({ got: pid }) })).toEqual({ got: ["storage", 3] });
    expect(() => read(b)).toThrow(/persistent id without a loader/);
  });

  test("BUILD with (dict, slots) state merges both", () => {
    const obj = new NewObj(new PyGlobal("m", "C"), [], new Tuple([new Map([["a", 1]]), new Map([["b", 2]])]));
    const v = read(pickle(obj)) as PyObject;
    expect(v.__class__).toBe("m.C");
    expect(v.get("a")).toBe(1);
    expect(v.get("b")).toBe(2);
  });
});

describe("pickle writer round trip", () => {
  test("plain values", () => {
    const value = new Map<unknown, unknown>([
      ["ints", [0, 255, 256, 65535, 65536, -1, -(2 ** 31), 2 ** 31, 2 ** 40, -(2 ** 40), 2n ** 80n, -(2n ** 80n)]],
      ["floats", [1.5, -0.25, new Float(3), 1e-5]],
      ["text", ["", "é", "x".repeat(300)]],
      ["tuple", new Tuple([1, new Tuple([]), new Tuple([1, 2, 3, 4, 5])])],
      ["bytes", new Uint8Array([0, 200, 255])],
      ["set", new Set([1, 2])],
      ["od", new OrderedDict(new Map([["z", 1], ["a", 2]]))],
      ["flags", [true, false, null]],
    ]);
    const v = read(pickle(value)) as Map<string, unknown>;
    expect(v.get("ints")).toEqual([0, 255, 256, 65535, 65536, -1, -(2 ** 31), 2 ** 31, 2 ** 40, -(2 ** 40), 2n ** 80n, -(2n ** 80n)]);
    expect(v.get("floats")).toEqual([1.5, -0.25, 3, 1e-5]);
    expect(v.get("text")).toEqual(["", "é", "x".repeat(300)]);
    expect(v.get("tuple")).toEqual([1, [], [1, 2, 3, 4, 5]]);
    expect(v.get("bytes")).toEqual(new Uint8Array([0, 200, 255]));
    expect(v.get("set")).toEqual(new Set([1, 2]));
    expect([...(v.get("od") as Map<string, number>).keys()]).toEqual(["z", "a"]);
    expect(v.get("flags")).toEqual([true, false, null]);
  });

  test("a repeated object is written once and read back as the same object", () => {
    const shared = [1, 2];
    const v = read(pickle([shared, shared])) as unknown[][];
    expect(v[0]).toBe(v[1]);
  });

  test("many memo entries use LONG_BINPUT/LONG_BINGET", () => {
    const lists = Array.from({ length: 300 }, (_, i) => [i]);
    const v = read(pickle([...lists, lists[299]])) as number[][];
    expect(v.length).toBe(301);
    expect(v[300]).toBe(v[299]);
    expect(v[300]).toEqual([299]);
  });

  test("Reduce of an allow-listed callable is applied", () => {
    const v = read(pickle(new Reduce(new PyGlobal("collections", "OrderedDict"), [])));
    expect(v).toEqual(new Map());
  });
});

describe("unpickle: hostile input is bounded in time, memory and nesting", () => {
  const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
  const cat = (...parts: (Uint8Array | number[])[]) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  };

  test("a list holding itself unpickles, and walking it for tensors ends", () => {
    // EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP: l = []; l.append(l)
    const v = read(hex("80025d71006800612e")) as unknown[];
    expect(v[0]).toBe(v);
    expect(collectTensors(v).size).toBe(0);
    expect(() => stateDictFrom(new Map([["model", v]]), "self.pt")).toThrow(/self\.pt: no tensors found/);
    // a dict that wraps itself as its own "model"
    const m = new Map<string, unknown>();
    m.set("model", m);
    expect(() => stateDictFrom(m, "loop.pt")).toThrow(/loop\.pt: no tensors found/);
  });

  test("shared containers nested 60 deep (2^60 paths) are walked once each", () => {
    // x0 = []; x(k+1) = [xk, xk]: EMPTY_LIST BINPUT k ... built with MARK, BINGET k twice, LIST, BINPUT k+1
    const parts: number[] = [0x80, 2, 0x5d, 0x71, 0];
    for (let k = 0; k < 60; k++) parts.push(0x30, 0x28, 0x68, k, 0x68, k, 0x6c, 0x71, k + 1);
    parts.push(0x2e);
    const t0 = performance.now();
    const v = read(Uint8Array.from(parts));
    expect(collectTensors(v).size).toBe(0);
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  test("300000 nested lists: the machine is not recursive, the walk stops at a depth limit", () => {
    const depth = 300_000;
    const b = new Uint8Array(2 + 2 * depth + 1);
    b.set([0x80, 2]);
    b.fill(0x28, 2, 2 + depth); // MARK x depth
    b.fill(0x6c, 2 + depth, 2 + 2 * depth); // LIST x depth
    b[b.length - 1] = 0x2e;
    const v = read(b) as unknown[];
    expect(Array.isArray(v)).toBe(true);
    expect(() => stateDictFrom(new Map([["x", v]]), "deep.pt")).toThrow(/deep\.pt: the checkpoint's values nest more than 200 levels deep/);
  });

  test("copies through dict()/list() on a shared value are budgeted (no memory bomb)", () => {
    // big = list of 4096 ints; then 30000 x list(big) via BINGET + TUPLE1 + REDUCE, each popped again
    const parts: number[] = [0x80, 2, 0x63, ...ascii("__builtin__\nlist\n"), 0x71, 0, 0x5d, 0x71, 1, 0x28];
    for (let i = 0; i < 4096; i++) parts.push(0x4b, i & 0xff);
    parts.push(0x65, 0x30); // APPENDS, POP
    for (let i = 0; i < 30_000; i++) parts.push(0x68, 0, 0x68, 1, 0x85, 0x52, 0x30);
    parts.push(0x4e, 0x2e);
    const t0 = performance.now();
    expect(() => read(Uint8Array.from(parts))).toThrow(/test\.pkl: cannot read pickle: the pickle builds far more data than it holds/);
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  test("oversized integers are refused at once", () => {
    const long4 = new Uint8Array(3 + 4 + (1 << 20) + 1);
    long4.set([0x80, 2, 0x8b]);
    new DataView(long4.buffer).setInt32(3, 1 << 20, true);
    long4[long4.length - 1] = 0x2e;
    expect(() => read(long4)).toThrow(/test\.pkl: cannot read pickle: integer of 1048576 bytes/);
    const digits = cat([0x49], ascii("9".repeat(100_000) + "\n"), [0x2e]);
    expect(() => read(digits)).toThrow(/bad integer "9999/);
    expect(() => read(cat([0x49], ascii("12x\n"), [0x2e]))).toThrow(/bad integer "12x"/);
    expect(() => read(cat([0x46], ascii("zz\n"), [0x2e]))).toThrow(/bad float "zz"/);
    expect(read(cat([0x4c], ascii("-123456789012345678901234567890L\n"), [0x2e]))).toBe(-123456789012345678901234567890n);
    expect(read(cat([0x46], ascii("nan\n"), [0x2e]))).toBeNaN();
    expect(() => read(cat([0x67], ascii("x\n"), [0x2e]))).toThrow(/bad memo key "x"/);
  });

  test("long lists append item by item (no spread of 200000 arguments)", () => {
    const parts: number[] = [0x80, 2, 0x5d, 0x28];
    for (let i = 0; i < 200_000; i++) parts.push(0x4e);
    parts.push(0x65, 0x2e);
    expect((read(Uint8Array.from(parts)) as unknown[]).length).toBe(200_000);
  });

  test("errors from inside allow-listed callables stay one line naming the file", () => {
    // builtins.dict("ab"): not key/value pairs
    const b = cat([0x80, 2, 0x63], ascii("__builtin__\ndict\n"), [0x58, 2, 0, 0, 0], ascii("ab"), [0x85, 0x52, 0x2e]);
    expect(() => read(b)).toThrow(/^test\.pkl: cannot read pickle: builtins\.dict: dict\(\) needs key\/value pairs \(byte \d+\)$/);
  });
});

describe("unpickle: fuzz", () => {
  const torchLike = pickle(
    new OrderedDict(
      new Map<unknown, unknown>([
        [
          "w",
          new Reduce(new PyGlobal("torch._utils", "_rebuild_tensor_v2"), [
            new PersistentId(new Tuple(["storage", new PyGlobal("torch", "FloatStorage"), "0", "cpu", 6])),
            0,
            new Tuple([2, 3]),
            new Tuple([3, 1]),
            false,
            new OrderedDict(new Map()),
          ]),
        ],
        ["cfg", new NewObj(new PyGlobal("argparse", "Namespace"), [], new Map<unknown, unknown>([["layers", 6], ["eps", new Float(1e-5)], ["name", "x"]]))],
        ["list", [1, 2.5, "s", new Uint8Array([1, 2]), new Set([3]), new Tuple([null, true])]],
      ]),
    ),
  );
  const seeds = [...Object.values(CPYTHON).map(hex), torchLike];
  const opts = {
    source: "fuzz.pkl",
    persistentLoad: (pid: unknown) => ({ pid }),
  };
  const check = (b: Uint8Array) => {
    const v = unpickle(b, opts);
    try {
      stateDictFrom(v, "fuzz.pkl");
    } catch (e) {
      if (!(e instanceof UserError && /no tensors found/.test(e.message))) throw e;
    }
  };

  test("mutated CPython and torch-style pickles: a value or one line naming the file, quickly", () => {
    fuzz("pickle", fc.tuple(fc.constantFrom(...seeds), mutations), "fuzz.pkl", ([seed, m]) => check(mutate(seed, m)));
  }, FUZZ_TEST_TIMEOUT);

  test("random opcode streams", () => {
    const ops = [0x28, 0x29, 0x2e, 0x30, 0x31, 0x32, 0x4e, 0x5d, 0x61, 0x62, 0x64, 0x65, 0x6c, 0x73, 0x74, 0x75, 0x7d, 0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x51, 0x52];
    const withArg = [0x4b, 0x68, 0x71, 0x8c, 0x43, 0x55, 0x8a];
    const chunk = fc.oneof(
      fc.constantFrom(...ops).map((o) => [o]),
      fc.tuple(fc.constantFrom(...withArg), fc.integer({ min: 0, max: 8 })).map(([o, a]) => (o === 0x8c || o === 0x43 || o === 0x55 ? [o, a, ...Array(a).fill(0x61)] : [o, a])),
      fc.constant([0x63, ...Array.from("collections\nOrderedDict\n", (c) => c.charCodeAt(0))]),
      fc.constant([0x63, ...Array.from("__builtin__\nlist\n", (c) => c.charCodeAt(0))]),
    );
    fuzz("pickle opcodes", fc.array(chunk, { maxLength: 60 }), "fuzz.pkl", (chunks) => check(Uint8Array.from([0x80, 2, ...chunks.flat(), 0x2e])));
  }, FUZZ_TEST_TIMEOUT);
});
