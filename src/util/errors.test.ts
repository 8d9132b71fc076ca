import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { modelArgs } from "../../test/helpers.ts";
import { fileError, isSystemError, oneLine, systemErrorMessage, UserError } from "./errors.ts";

// subprocesses and heavy checks on a busy machine take longer than the 5 s default (bunfig has no such key)
setDefaultTimeout(120_000);

const dir = mkdtempSync(join(tmpdir(), "virnuc-errors-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The error a call throws. */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("did not throw");
}

describe("system errors become one line naming the file and what to do", () => {
  test("ENOENT, EISDIR, EEXIST, ENOTDIR from real calls", () => {
    const missing = join(dir, "missing.fa");
    expect(oneLine(thrown(() => readFileSync(missing)))).toBe(`${missing}: no such file or directory (ENOENT, open): check the path`);
    // a read of a descriptor does not say which file: the caller names it
    expect(oneLine(thrown(() => readFileSync(dir)))).toBe("is a directory, a file was expected (EISDIR, read): give the path of a file");
    expect(oneLine(fileError(thrown(() => readFileSync(dir)), dir))).toBe(`${dir}: is a directory, a file was expected (EISDIR, read): give the path of a file`);
    expect(oneLine(thrown(() => mkdirSync(dir)))).toBe(`${dir}: already exists (EEXIST, mkdir): remove it or choose another name`);
    const file = join(dir, "f");
    writeFileSync(file, "x");
    expect(oneLine(thrown(() => mkdirSync(join(file, "sub"))))).toBe(`${join(file, "sub")}: a part of the path is not a directory (ENOTDIR, mkdir): check the path`);
  });

  test("a rename names both paths", () => {
    const e = thrown(() => renameSync(join(dir, "nope"), join(dir, "dest")));
    expect(oneLine(e)).toBe(`${join(dir, "nope")} -> ${join(dir, "dest")}: no such file or directory (ENOENT, rename): check the path`);
  });

  test("ESPIPE (positioned read of a FIFO) and ENOSPC (/dev/full) get the file from the caller", () => {
    const fifo = join(dir, "fifo");
    expect(Bun.spawnSync(["mkfifo", fifo], { env: process.env }).exitCode).toBe(0);
    const fd = openSync(fifo, "r+");
    try {
      const e = thrown(() => readSync(fd, new Uint8Array(4), 0, 4, 0));
      expect(isSystemError(e)).toBe(true);
      const u = fileError(e, fifo, "reading a model file");
      expect(u).toBeInstanceOf(UserError);
      expect((u as Error).message).toBe(
        `${fifo}: cannot seek: a pipe, socket or terminal, not a regular file (ESPIPE, read) while reading a model file: save the data to a regular file and give that path`,
      );
    } finally {
      closeSync(fd);
    }
    const full = openSync("/dev/full", "w");
    try {
      const e = thrown(() => writeSync(full, new Uint8Array(10)));
      expect(oneLine(fileError(e, "out/part-3.arrow"))).toMatch(
        /^out\/part-3\.arrow: no space left on the device \(ENOSPC, write\): free space \(df -h shows how much is left\) or write to another disk/,
      );
    } finally {
      closeSync(full);
    }
  });

  test("EACCES, and codes without advice of their own", () => {
    const e = Object.assign(new Error("EACCES: permission denied, open '/m/model.bin'"), { code: "EACCES", syscall: "open", path: "/m/model.bin" });
    expect(oneLine(e)).toBe("/m/model.bin: permission denied (EACCES, open): check the permissions of the file and of the folders above it (ls -l), or use a path you may use");
    const odd = Object.assign(new Error("EWHATEVER: something odd happened, open '/x'"), { code: "EWHATEVER", syscall: "open", path: "/x" });
    expect(systemErrorMessage(odd)).toBe("/x: something odd happened (EWHATEVER, open): check the file and retry");
  });

  test("a user error quoting a hostile name stays one line", () => {
    expect(new UserError("tensor 'a\nb\r\x1b[31mc\u2028' is bad\tfor x").message).toBe("tensor 'a\\nb\\r\\x1b[31mc\\u2028' is bad\tfor x");
  });

  test("other values pass through: user errors unchanged, plain errors and strings as one line", () => {
    const u = new UserError("a.fa: record 3 has no sequence");
    expect(fileError(u, "b")).toBe(u);
    const plain = new Error("first\n  second");
    expect(fileError(plain, "x")).toBe(plain);
    expect(oneLine(plain)).toBe("first second");
    expect(oneLine("text")).toBe("text");
    expect(isSystemError(Object.assign(new Error("x"), { code: "ERR_INVALID_ARG_TYPE" }))).toBe(false);
  });
});

describe("the CLI's top-level handler", () => {
  test("a raw errno reaches the user as one line naming the file and what to do, exit 1", () => {
    const reads = join(dir, "reads.fa");
    writeFileSync(reads, ">r1\nACGTACGTACGTACGTACGTACGTACGTACGTACGTACGT\n");
    const p = Bun.spawnSync([process.execPath, join(import.meta.dir, "..", "cli.ts"), "predict", reads, "-o", "/dev/full/out", ...modelArgs()], {
      env: process.env,
      stdout: "pipe",
      stderr: "pipe",
    });
    const lines = p.stderr.toString().trimEnd().split("\n");
    expect(lines).toEqual([expect.stringMatching(/^virnuc: error: .*\/dev\/full\/out.*: .*check the path$/)]);
    expect(lines[0]).not.toMatch(/E[A-Z]+: [a-z ]+, [a-z]+ '/); // not the raw "ENOTDIR: not a directory, mkdir '...'"
    expect(p.exitCode).toBe(1);
  });

  test.if(process.platform === "linux")("a model file the user may not read: one line naming it, EACCES and what to do", () => {
    const sub = join(dir, "private");
    mkdirSync(sub);
    chmodSync(dir, 0o755);
    chmodSync(sub, 0o755);
    const model = join(sub, "model.pth");
    writeFileSync(model, "PK");
    chmodSync(model, 0o000);
    const cli = [process.execPath, join(import.meta.dir, "..", "cli.ts"), "models", "inspect", model];
    // root reads any file: check as an unprivileged user
    const asRoot = process.getuid?.() === 0;
    const setpriv = Bun.which("setpriv");
    if (asRoot && !setpriv) throw new Error("running as root and setpriv (util-linux) is missing: cannot check EACCES as an unprivileged user");
    const cmd = asRoot ? [setpriv!, "--reuid=65534", "--regid=65534", "--clear-groups", ...cli] : cli;
    const p = Bun.spawnSync(cmd, { env: { ...process.env, HOME: dir }, stdout: "pipe", stderr: "pipe" });
    expect(p.stderr.toString()).toBe(
      `virnuc: error: ${model}: permission denied (EACCES, open) while opening a model file: check the permissions of the file and of the folders above it (ls -l), or use a path you may use\n`,
    );
    expect(p.exitCode).toBe(1);
  });
});
