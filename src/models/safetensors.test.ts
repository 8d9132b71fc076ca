import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { fromFloat32, toFloat32 } from "./dtype.ts";
import { FUZZ_TEST_TIMEOUT, fuzz, mutate, mutations } from "./fuzzing.ts";
import { readSafetensors, writeSafetensors, writeSafetensorsStreaming } from "./safetensors.ts";
import type { HostTensor } from "./tensor.ts";

const dir = mkdtempSync(join(tmpdir(), "virnuc-st-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tensors = new Map<string, HostTensor>([
  ["z.half", fromFloat32(Float32Array.from([1, 2, 3]), [3], "f16")],
  ["a.weight", fromFloat32(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3])],
  ["m.double", { dtype: "f64", shape: [1], data: new Uint8Array(new Float64Array([0.125]).buffer) }],
  ["b.flag", { dtype: "bool", shape: [3], data: new Uint8Array([1, 0, 1]) }],
  ["c.ids", { dtype: "i64", shape: [2], data: new Uint8Array(new BigInt64Array([5n, -1n]).buffer) }],
  ["s.scalar", fromFloat32(Float32Array.from([7]), [])],
]);

function header(path: string): { len: number; json: Record<string, { dtype: string; data_offsets: [number, number] }> } {
  const b = readFileSync(path);
  const len = Number(b.readBigUInt64LE(0));
  return { len, json: JSON.parse(b.subarray(8, 8 + len).toString()) };
}

describe("safetensors", () => {
  test("round trip keeps names, dtypes, shapes and values", () => {
    const path = join(dir, "rt.safetensors");
    writeSafetensors(path, tensors, { format: "pt" });
    const back = readSafetensors(path);
    expect(back.metadata).toEqual({ format: "pt" });
    expect([...back.tensors.keys()].sort()).toEqual([...tensors.keys()].sort());
    for (const [name, t] of tensors) {
      const r = back.tensors.get(name)!;
      expect(r.dtype).toBe(t.dtype);
      expect(r.shape).toEqual(t.shape);
      expect(Array.from(r.data)).toEqual(Array.from(t.data));
    }
    expect(Array.from(toFloat32(back.tensors.get("z.half")!))).toEqual([1, 2, 3]);
  });

  test("layout: header padded to 8 bytes, wide dtypes first then by name, no holes, aligned", () => {
    const path = join(dir, "layout.safetensors");
    writeSafetensors(path, tensors);
    const { len, json } = header(path);
    expect(len % 8).toBe(0);
    expect("__metadata__" in json).toBe(false);
    const order = Object.entries(json).sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
    expect(order.map(([n]) => n)).toEqual(["c.ids", "m.double", "a.weight", "s.scalar", "z.half", "b.flag"]);
    let end = 0;
    for (const [, info] of order) {
      expect(info.data_offsets[0]).toBe(end);
      const size = { I64: 8, F64: 8, F32: 4, F16: 2, BOOL: 1 }[info.dtype]!;
      expect(info.data_offsets[0] % size).toBe(0);
      end = info.data_offsets[1];
    }
    expect(readFileSync(path).length).toBe(8 + len + end);
  });

  test("deterministic: the same tensors in any insertion order give the same bytes", () => {
    const a = join(dir, "a.safetensors");
    const b = join(dir, "b.safetensors");
    writeSafetensors(a, tensors);
    writeSafetensors(b, [...tensors].reverse());
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
  });

  test("streaming writer checks the byte count per tensor", () => {
    const path = join(dir, "stream.safetensors");
    const spec = [{ name: "x", dtype: "f32" as const, shape: [4] }];
    writeSafetensorsStreaming(path, spec, (_, write) => {
      write(new Uint8Array(new Float32Array([1, 2]).buffer));
      write(new Uint8Array(new Float32Array([3, 4]).buffer));
    });
    expect(Array.from(toFloat32(readSafetensors(path).tensors.get("x")!))).toEqual([1, 2, 3, 4]);
    expect(() => writeSafetensorsStreaming(join(dir, "short.safetensors"), spec, (_, w) => w(new Uint8Array(8)))).toThrow(
      /got 8 bytes, expected 16/,
    );
    expect(() => readFileSync(join(dir, "short.safetensors"))).toThrow();
  });

  test("corrupt files are user errors naming the file and the tensor", () => {
    const good = readFileSync(join(dir, "rt.safetensors"));
    const cut = join(dir, "cut.safetensors");
    writeFileSync(cut, good.subarray(0, good.length - 3));
    expect(() => readSafetensors(cut)).toThrow(/cut\.safetensors: invalid safetensors file: tensor '.*': data_offsets .* lie outside the data section/);

    const bad = join(dir, "bad.safetensors");
    const json = Buffer.from('{"x":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}');
    const buf = Buffer.alloc(8 + json.length + 1);
    buf.writeBigUInt64LE(BigInt(json.length));
    json.copy(buf, 8);
    writeFileSync(bad, buf);
    expect(() => readSafetensors(bad)).toThrow(/tensor 'x' has unsupported dtype F8_E4M3/);

    const junk = join(dir, "junk.safetensors");
    writeFileSync(junk, Buffer.from("\x05\x00\x00\x00\x00\x00\x00\x00{oops"));
    expect(() => readSafetensors(junk)).toThrow(/header is not valid UTF-8 JSON/);
    writeFileSync(junk, Buffer.from("\xff\xff\xff\x00\x00\x00\x00\x00{}"));
    expect(() => readSafetensors(junk)).toThrow(/does not fit the file/);
  });

  /** A file from a literal header and `dataLen` bytes of data (0, 1, 2, ...). */
  function craft(name: string, header: unknown, dataLen: number, rawHeader?: Uint8Array): string {
    const json = rawHeader ?? Buffer.from(JSON.stringify(header));
    const buf = Buffer.alloc(8 + json.length + dataLen);
    buf.writeBigUInt64LE(BigInt(json.length));
    Buffer.from(json).copy(buf, 8);
    for (let i = 0; i < dataLen; i++) buf[8 + json.length + i] = i & 0xff;
    const path = join(dir, name);
    writeFileSync(path, buf);
    return path;
  }
  const f32 = (a: number, b: number, n = (b - a) / 4) => ({ dtype: "F32", shape: [n], data_offsets: [a, b] });

  test("the data section must be covered exactly once: overlaps, gaps and trailing bytes are refused", () => {
    const ok = craft("tiles.safetensors", { a: f32(0, 8), b: f32(8, 16), e: { dtype: "F32", shape: [0], data_offsets: [8, 8] } }, 16);
    const r = readSafetensors(ok);
    expect([...r.tensors.keys()].sort()).toEqual(["a", "b", "e"]);
    expect(Array.from(r.tensors.get("b")!.data)).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
    expect(r.tensors.get("e")!.data.byteLength).toBe(0);

    const overlap = craft("overlap.safetensors", { a: f32(0, 8), b: f32(4, 12) }, 12);
    expect(() => readSafetensors(overlap)).toThrow(/overlap\.safetensors: invalid safetensors file: tensors 'a' and 'b' overlap \(bytes 4\.\.8\)/);
    const same = craft("same.safetensors", { a: f32(0, 8), b: f32(0, 8) }, 8);
    expect(() => readSafetensors(same)).toThrow(/tensors 'a' and 'b' overlap/);
    const gap = craft("gap.safetensors", { a: f32(0, 8), b: f32(12, 20) }, 20);
    expect(() => readSafetensors(gap)).toThrow(/gap\.safetensors: invalid safetensors file: bytes 8\.\.12 of the data section belong to no tensor \(before 'b'\)/);
    const lead = craft("lead.safetensors", { a: f32(4, 12) }, 12);
    expect(() => readSafetensors(lead)).toThrow(/bytes 0\.\.4 of the data section belong to no tensor/);
    const tail = craft("tail.safetensors", { a: f32(0, 8) }, 11);
    expect(() => readSafetensors(tail)).toThrow(/tail\.safetensors: invalid safetensors file: bytes 8\.\.11 at the end of the file belong to no tensor/);
  });

  test("every header field is checked: dtype, shape, offsets, byte size, metadata, the header itself", () => {
    const cases: [unknown, number, RegExp][] = [
      [{ a: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, 4, /tensor 'a': 4 bytes at 0\.\.4, but F32 \[2\] needs 8/],
      [{ a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, 4, /tensor 'a': shape \[-1\] is not a list of non-negative integers/],
      [{ a: { dtype: "F32", shape: [1.5], data_offsets: [0, 4] } }, 4, /shape \[1\.5\] is not a list/],
      [{ a: { dtype: "F32", shape: "4", data_offsets: [0, 4] } }, 4, /shape "4" is not a list/],
      [{ a: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, 4, /data_offsets 4\.\.0 lie outside the data section/],
      [{ a: { dtype: "F32", shape: [1], data_offsets: [0, 4, 8] } }, 8, /data_offsets \[0,4,8\] is not a pair/],
      [{ a: { dtype: "F32", shape: [1], data_offsets: [0, 2 ** 60] } }, 4, /is not a pair of non-negative integers/],
      [{ a: { dtype: "F32", shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }, 4, /needs/],
      [{ a: { dtype: 7, shape: [1], data_offsets: [0, 4] } }, 4, /tensor 'a' has unsupported dtype 7/],
      [{ a: { dtype: "toString", shape: [1], data_offsets: [0, 4] } }, 4, /unsupported dtype toString \(supported: F64, F32/],
      [{ a: [1, 2] }, 4, /tensor 'a': the entry is not an object/],
      [{ __metadata__: { format: 1 } }, 0, /__metadata__ is not a map of strings/],
      [[1, 2], 0, /the header is not a JSON object/],
      [null, 0, /the header is not a JSON object/],
    ];
    cases.forEach(([header, dataLen, message], i) => {
      const path = craft(`field-${i}.safetensors`, header, dataLen);
      expect(() => readSafetensors(path)).toThrow(message);
      expect(() => readSafetensors(path)).toThrow(new RegExp(`field-${i}\\.safetensors: invalid safetensors file: `));
    });
    const latin = craft("latin.safetensors", null, 0, Uint8Array.from([0x7b, 0x22, 0xe9, 0x22, 0x3a, 0x31, 0x7d]));
    expect(() => readSafetensors(latin)).toThrow(/the header is not valid UTF-8 JSON/);
    const nothing = craft("nothing.safetensors", {}, 0);
    expect(readSafetensors(nothing).tensors.size).toBe(0);
  });
});

describe("safetensors reader: fuzz", () => {
  const seedPath = join(dir, "seed.safetensors");
  writeSafetensors(seedPath, tensors, { format: "pt" });
  const seed = readFileSync(seedPath);
  const target = join(dir, "fuzz.safetensors");
  const load = (bytes: Uint8Array) => {
    writeFileSync(target, bytes);
    let sum = 0;
    for (const t of readSafetensors(target).tensors.values()) for (let i = 0; i < t.data.length; i++) sum += t.data[i];
    return sum;
  };

  test("mutated bytes: tensors or one line naming the file, quickly", () => {
    fuzz("safetensors bytes", mutations, target, (m) => void load(mutate(seed, m)));
  }, FUZZ_TEST_TIMEOUT);

  test("mutated header fields: offsets, shapes, dtypes and entries replaced by any JSON", () => {
    const len = Number(seed.readBigUInt64LE(0));
    const header = JSON.parse(seed.subarray(8, 8 + len).toString()) as Record<string, Record<string, unknown>>;
    const data = seed.subarray(8 + len);
    const names = Object.keys(header);
    const edit = fc.record({
      name: fc.constantFrom(...names),
      field: fc.constantFrom("dtype", "shape", "data_offsets", "*", "begin", "end"),
      value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.integer({ min: -2, max: 200 }), fc.constantFrom(2 ** 53, 2 ** 64, -0, 1.5, "F32", "BF16", "I64")),
      trim: fc.integer({ min: -4, max: 4 }),
    });
    fuzz("safetensors header", fc.array(edit, { minLength: 1, maxLength: 3 }), target, (edits) => {
      const h = structuredClone(header) as Record<string, unknown>;
      for (const e of edits) {
        const entry = h[e.name] as Record<string, unknown> | undefined;
        if (e.field === "*") h[e.name] = e.value;
        else if (typeof entry !== "object" || entry === null) continue;
        else if (e.field === "begin" || e.field === "end") {
          const offs = entry.data_offsets;
          if (Array.isArray(offs)) offs[e.field === "begin" ? 0 : 1] = typeof e.value === "number" ? e.value : offs[0];
        } else entry[e.field] = e.value;
      }
      const json = Buffer.from(JSON.stringify(h));
      const last = edits[edits.length - 1];
      const body = last.trim >= 0 ? Buffer.concat([data, Buffer.alloc(last.trim)]) : data.subarray(0, Math.max(0, data.length + last.trim));
      const out = Buffer.alloc(8 + json.length + body.length);
      out.writeBigUInt64LE(BigInt(json.length));
      json.copy(out, 8);
      body.copy(out, 8 + json.length);
      load(out);
    });
  }, FUZZ_TEST_TIMEOUT);
});
