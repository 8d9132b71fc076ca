import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { FileSource } from "./file.ts";
import { readTorch } from "./torch.ts";
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
