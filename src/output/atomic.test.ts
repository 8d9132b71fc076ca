import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../util/errors.ts";
import { AtomicFile, isTempName, removeStaleTemps, tempPathFor, writeFileAtomic } from "./atomic.ts";

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "virnuc-atomic-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("writeFileAtomic", () => {
  test("writes text and bytes, replaces an existing file, leaves no temporary", () => {
    const dir = tempDir();
    const p = join(dir, "a.txt");
    writeFileAtomic(p, "first\n");
    expect(readFileSync(p, "utf8")).toBe("first\n");
    writeFileAtomic(p, new Uint8Array([104, 105]));
    expect(readFileSync(p, "utf8")).toBe("hi");
    expect(readdirSync(dir)).toEqual(["a.txt"]);
  });

  test("a missing directory is a one-line UserError naming the file", () => {
    const p = join(tempDir(), "no", "such", "x.json");
    expect(() => writeFileAtomic(p, "x")).toThrow(UserError);
    try {
      writeFileAtomic(p, "x");
    } catch (err) {
      expect((err as Error).message).toContain(p);
      expect((err as Error).message).not.toContain("\n");
    }
  });
});

describe("AtomicFile", () => {
  test("the target only changes at commit", () => {
    const dir = tempDir();
    const p = join(dir, "out.bin");
    writeFileSync(p, "old");
    const f = new AtomicFile(p);
    f.write("new ");
    f.write(new TextEncoder().encode("content"));
    expect(f.size).toBe(11);
    expect(readFileSync(p, "utf8")).toBe("old");
    expect(readdirSync(dir).filter(isTempName).length).toBe(1);
    f.commit();
    expect(readFileSync(p, "utf8")).toBe("new content");
    expect(readdirSync(dir)).toEqual(["out.bin"]);
    expect(() => f.write("more")).toThrow();
  });

  test("abort keeps the old file and removes the temporary", () => {
    const dir = tempDir();
    const p = join(dir, "out.bin");
    writeFileSync(p, "old");
    const f = new AtomicFile(p);
    f.write("partial");
    f.abort();
    f.abort();
    expect(readFileSync(p, "utf8")).toBe("old");
    expect(readdirSync(dir)).toEqual(["out.bin"]);
  });

  test("temporary names are recognised and stale ones removed", () => {
    const dir = tempDir();
    const t1 = tempPathFor(join(dir, "x.parquet"));
    const t2 = tempPathFor(join(dir, "x.parquet"));
    expect(t1).not.toBe(t2);
    writeFileSync(t1, "");
    writeFileSync(t2, "");
    writeFileSync(join(dir, "keep.txt"), "");
    writeFileSync(join(dir, ".hidden"), "");
    expect(removeStaleTemps(dir).length).toBe(2);
    expect(readdirSync(dir).sort()).toEqual([".hidden", "keep.txt"]);
  });
});

describe("file errors", () => {
  test("a raw errno becomes one line naming the file and what to do", async () => {
    const { fileError, onFile } = await import("./atomic.ts");
    const enospc = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    expect(fileError("write", "/out/x.arrow", enospc).message).toBe(
      "cannot write /out/x.arrow: no space left on the device (ENOSPC): free space (df -h shows how much is left) or write to another disk, then run again (predict: --resume keeps the finished parts)",
    );
    const eacces = Object.assign(new Error("EACCES: permission denied, open '/ro/y'"), { code: "EACCES" });
    expect(fileError("read", "/ro/y", eacces).message).toMatch(/^cannot read \/ro\/y: permission denied \(EACCES\): check the permissions/);
    expect(() => onFile("list", "/nonexistent-dir-for-test", () => require("node:fs").readdirSync("/nonexistent-dir-for-test"))).toThrow(
      /^cannot list \/nonexistent-dir-for-test: no such file or directory \(ENOENT, scandir\)/,
    );
    expect(fileError("write", "/x", new Error("a\nb")).message.includes("\n")).toBe(false);
  });
});
