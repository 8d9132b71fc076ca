import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import fc from "fast-check";
import { openCheckpoint } from "./checkpoint.ts";
import { FileSource } from "./file.ts";
import { FUZZ_TEST_TIMEOUT, fuzz, type Mutation, mutate, mutations } from "./fuzzing.ts";
import { readTorch, writeTorch } from "./torch.ts";
import { entryBytes, readZipEntries, ZipWriter } from "./zip.ts";

const dir = mkdtempSync(join(tmpdir(), "virnuc-zip-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((h) => Number.parseInt(h, 16)));
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function entries(path: string) {
  const src = FileSource.open(path);
  const list = readZipEntries(src);
  return { src, list, bytes: (name: string) => entryBytes(src, list.get(name)!) };
}

describe("zip reader", () => {
  test("a zip from Python's zipfile, with an archive comment", () => {
    const path = join(dir, "py.zip");
    writeFileSync(
      path,
      hex(
        "504b03041400000000007a827c5d86a61036050000000500000005000000612e74787468656c6c6f504b03041400000000007a827c5d46d76c450a0000000a000000090000006469722f622e62696e00010203040506070809504b010214031400000000007a827c5d86a610360500000005000000050000000000000000000000800100000000612e747874504b010214031400000000007a827c5d46d76c450a0000000a0000000900000000000000000000008001280000006469722f622e62696e504b050600000000020002006a0000005900000009006120636f6d6d656e74",
      ),
    );
    const z = entries(path);
    expect([...z.list.keys()]).toEqual(["a.txt", "dir/b.bin"]);
    expect(text(z.bytes("a.txt"))).toBe("hello");
    expect(Array.from(z.bytes("dir/b.bin"))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test("compressed entries are refused with a clear message", () => {
    const path = join(dir, "deflated.pt");
    writeFileSync(
      path,
      hex(
        "504b03041400000008007a827c5df65e813d0b0000003c00000010000000617263686976652f646174612e706b6c6b60aa2d64d06b208b0400504b010214031400000008007a827c5df65e813d0b0000003c000000100000000000000000000000800100000000617263686976652f646174612e706b6c504b050600000000010001003e000000390000000000",
      ),
    );
    expect(() => readTorch(path)).toThrow(/zip entry archive\/data\.pkl is compressed \(method 8\)/);
  });

  test("truncated archives are user errors", () => {
    const path = join(dir, "cut.zip");
    const w = new ZipWriter(path);
    w.add("x", new Uint8Array(100));
    w.close();
    writeFileSync(path, readFileSync(path).subarray(0, 120));
    expect(() => readZipEntries(FileSource.open(path))).toThrow(/not a valid zip archive/);
  });
});

describe("zip writer", () => {
  test("entry data is 64-byte aligned and CRCs are right", () => {
    const path = join(dir, "aligned.zip");
    const w = new ZipWriter(path);
    const payloads: [string, Uint8Array][] = [
      ["root/data.pkl", new Uint8Array([1, 2, 3])],
      ["root/data/0", Uint8Array.from({ length: 1000 }, (_, i) => i & 255)],
      ["root/x", new Uint8Array(0)],
      ["a-name-of-odd-length/q", new Uint8Array([7])],
    ];
    for (const [n, b] of payloads) w.add(n, b);
    w.close();
    const z = entries(path);
    const raw = readFileSync(path);
    for (const [n, b] of payloads) {
      const e = z.list.get(n)!;
      expect(e.dataOffset % 64).toBe(0);
      expect(Array.from(z.bytes(n))).toEqual(Array.from(b));
    }
    // central-directory CRCs, checked without our reader
    let at = raw.indexOf(Buffer.from([0x50, 0x4b, 1, 2]));
    for (const [, b] of payloads) {
      expect(raw.readUInt32LE(at + 16)).toBe(crc32(b) >>> 0);
      at = raw.indexOf(Buffer.from([0x50, 0x4b, 1, 2]), at + 4);
    }
  });

  test("streamed entries and forced zip64 records", () => {
    const path = join(dir, "z64.zip");
    const w = new ZipWriter(path, { zip64: true });
    w.addStream("big", 10, (write) => {
      write(new Uint8Array([0, 1, 2, 3]));
      write(new Uint8Array([4, 5, 6, 7, 8, 9]));
    });
    w.close();
    const raw = readFileSync(path);
    expect(raw.indexOf(Buffer.from([0x50, 0x4b, 6, 6]))).toBeGreaterThan(0); // zip64 end record
    expect(Array.from(entries(path).bytes("big"))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test("a stream that writes the wrong number of bytes fails and leaves no file", () => {
    const path = join(dir, "short.zip");
    const w = new ZipWriter(path);
    expect(() => w.addStream("x", 5, (write) => write(new Uint8Array(3)))).toThrow(/got 3 bytes, expected 5/);
    w.abort();
    expect(() => readFileSync(path)).toThrow();
  });
});

describe("zip reader: damaged archives", () => {
  /** A two-entry archive (data.pkl-like header bytes, then a 1000-byte storage) as a Buffer. */
  function sample(): Buffer {
    const path = join(dir, "sample.zip");
    const w = new ZipWriter(path);
    w.add("root/a", new Uint8Array([1, 2, 3, 4, 5]));
    w.add("root/data/0", Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 255));
    w.close();
    return readFileSync(path);
  }
  function open(name: string, bytes: Uint8Array) {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    const src = FileSource.open(path);
    try {
      const list = readZipEntries(src);
      for (const e of list.values()) entryBytes(src, e);
      return list;
    } finally {
      src.close();
    }
  }

  test("a flipped bit in any entry's data fails its CRC-32, naming the file and the entry", () => {
    const good = sample();
    expect([...open("good.zip", good).keys()]).toEqual(["root/a", "root/data/0"]);
    const src = FileSource.open(join(dir, "good.zip"));
    const e = readZipEntries(src).get("root/data/0")!;
    src.close();
    for (const at of [0, 1, 500, 999]) {
      const b = Buffer.from(good);
      b[e.dataOffset + at] ^= 0x10;
      expect(() => open("flipped.zip", b)).toThrow(
        /flipped\.zip: zip entry root\/data\/0 is corrupt \(CRC-32 [0-9a-f]{8}, expected [0-9a-f]{8}\): the checkpoint is damaged/,
      );
    }
  });

  test("a torch checkpoint with a damaged storage is an error, not different weights", () => {
    const path = join(dir, "w.pt");
    writeTorch(path, new Map([["w", { dtype: "f32", shape: [4], data: new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer) }]]));
    const b = readFileSync(path);
    const at = b.indexOf(Buffer.from(new Float32Array([3]).buffer));
    b[at] ^= 1;
    writeFileSync(path, b);
    expect(() => readTorch(path)).toThrow(/w\.pt: zip entry archive\/data\/0 is corrupt/);
  });

  test("every header field is bounded: damaged directories and local headers are clear errors", () => {
    const good = sample();
    const eocd = good.lastIndexOf(Buffer.from([0x50, 0x4b, 5, 6]));
    const cd = good.readUInt32LE(eocd + 16);
    const cd2 = good.indexOf(Buffer.from([0x50, 0x4b, 1, 2]), cd + 4);
    const local2 = good.readUInt32LE(cd2 + 42);
    const edit = (f: (b: Buffer) => void) => {
      const b = Buffer.from(good);
      f(b);
      return b;
    };
    const cases: [string, Buffer, RegExp][] = [
      ["directory offset past the end", edit((b) => b.writeUInt32LE(good.length, eocd + 16)), /central directory .* runs past its end records/],
      ["directory size too large", edit((b) => b.writeUInt32LE(0xfffffff0, eocd + 12)), /runs past its end records/],
      ["entry count too large", edit((b) => (b.writeUInt16LE(900, eocd + 10), b.writeUInt16LE(900, eocd + 8))), /900 entries cannot fit/],
      ["no end record", edit((b) => b.writeUInt32LE(0, eocd)), /no end of central directory record/],
      ["name runs past the directory", edit((b) => b.writeUInt16LE(0xffff, cd2 + 28)), /entry 1 runs past the directory/],
      ["extra field runs past the directory", edit((b) => b.writeUInt16LE(0x8000, cd2 + 30)), /runs past the directory/],
      ["local header offset past the entries", edit((b) => b.writeUInt32LE(cd - 10, cd2 + 42)), /local header of root\/data\/0 lies outside/],
      ["local header offset into another entry", edit((b) => b.writeUInt32LE(64, cd2 + 42)), /bad local header for root\/data\/0/],
      ["size runs into the directory", edit((b) => (b.writeUInt32LE(5000, cd2 + 20), b.writeUInt32LE(5000, cd2 + 24))), /entry root\/data\/0 runs into the central directory/],
      ["two sizes for a stored entry", edit((b) => b.writeUInt32LE(999, cd2 + 24)), /stored entry root\/data\/0 has two different sizes/],
      ["local name length changed", edit((b) => b.writeUInt16LE(3, local2 + 26)), /local header of root\/data\/0 names another entry/],
      ["local name changed", edit((b) => (b[local2 + 30] = 0x78)), /names another entry/],
      ["encrypted", edit((b) => b.writeUInt16LE(1, cd2 + 8)), /entry root\/data\/0 is encrypted/],
      ["zip64 size without its field", edit((b) => b.writeUInt32LE(0xffffffff, cd2 + 24)), /has two different sizes|short zip64 field/],
      ["duplicate name", edit((b) => b.write("root/a\0\0\0\0\0", cd2 + 46, "latin1")), /names another entry|appears twice/],
    ];
    for (const [what, bytes, message] of cases) {
      let err: unknown;
      try {
        open("damaged.zip", bytes);
      } catch (e) {
        err = e;
      }
      expect({ what, message: String(err) }).toEqual({ what, message: expect.stringMatching(message) });
      expect(String(err)).toMatch(/damaged\.zip: /);
    }
  });

  test("the zip64 extra field must hold the values it stands for", () => {
    const path = join(dir, "z64-short.zip");
    const w = new ZipWriter(path, { zip64: true });
    w.add("x", new Uint8Array([9, 8, 7]));
    w.close();
    const b = readFileSync(path);
    const cdAt = b.indexOf(Buffer.from([0x50, 0x4b, 1, 2]));
    expect(b.readUInt16LE(cdAt + 46 + 1)).toBe(1); // the zip64 field follows the 1-byte name
    b.writeUInt16LE(8, cdAt + 46 + 1 + 2); // holds one value, three are needed
    expect(() => open("z64-short.zip", b)).toThrow(/z64-short\.zip: not a valid zip archive \(entry x has a short zip64 field\)/);
  });
});

describe("zip and torch readers: fuzz", () => {
  const testdata = join(import.meta.dir, "testdata");
  const z64 = join(dir, "seed-z64.pt");
  writeTorch(z64, new Map([["a", { dtype: "f16", shape: [2, 2], data: new Uint8Array(8).fill(0x3c) }]]), { zip64: true });
  const seeds = ["fair_esm_tiny.pt", "mixed.pt", "mlp_module.pth"].map((f) => readFileSync(join(testdata, f))).concat([readFileSync(z64)]);
  const target = join(dir, "fuzz.pt");

  /** Load as the pipeline does, then touch every tensor byte (views must lie inside the file). */
  const load = (bytes: Uint8Array) => {
    writeFileSync(target, bytes);
    let sum = 0;
    for (const t of openCheckpoint(target).tensors.values()) for (let i = 0; i < t.data.length; i += 1) sum += t.data[i];
    return sum;
  };

  test("seeds load", () => {
    for (const s of seeds) expect(Number.isFinite(load(s))).toBe(true);
  });

  test("mutated torch zips: a state dict or one line naming the file, quickly", () => {
    fuzz("zip", fc.tuple(fc.constantFrom(...seeds), mutations), target, ([seed, m]) => void load(mutate(seed, m)));
  }, FUZZ_TEST_TIMEOUT);

  test("valid zips around a mutated data.pkl exercise the torch unpickler (storages, strides)", () => {
    // every seed's entries, to be re-zipped with a mutated pickle and correct CRCs
    const unpacked = seeds.map((s) => {
      writeFileSync(target, s);
      const src = FileSource.open(target);
      const list = [...readZipEntries(src).values()].map((e) => [e.name, entryBytes(src, e).slice()] as const);
      src.close();
      return list;
    });
    const rezip = (entries: (readonly [string, Uint8Array])[], m: Mutation[]) => {
      const w = new ZipWriter(target);
      for (const [name, data] of entries) w.add(name, name.endsWith("data.pkl") ? mutate(data, m) : data);
      w.close();
    };
    fuzz("torch pickle", fc.tuple(fc.constantFrom(...unpacked), mutations), target, ([entries, m]) => {
      rezip(entries, m);
      let sum = 0;
      for (const t of openCheckpoint(target).tensors.values()) for (let i = 0; i < t.data.length; i++) sum += t.data[i];
    });
  }, FUZZ_TEST_TIMEOUT);
});
