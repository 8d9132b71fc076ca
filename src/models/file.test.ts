import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, closeSync, constants, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { FileSource, OPEN_FLAGS } from "./file.ts";
import { readSafetensors, writeSafetensors } from "./safetensors.ts";
import { readTorch, writeTorch } from "./torch.ts";
import type { HostTensor } from "./tensor.ts";

const dir = mkdtempSync(join(tmpdir(), "virnuc-file-"));
// traversable by any user (the unprivileged check below), like a shared cache's parents
chmodSync(dir, 0o755);
const ro = join(dir, "readonly");
mkdirSync(ro);
afterAll(() => {
  chmodSync(ro, 0o755);
  rmSync(dir, { recursive: true, force: true });
});

const t = (values: number[]): HostTensor => ({ dtype: "f32", shape: [values.length], data: new Uint8Array(new Float32Array(values).buffer) });
writeSafetensors(join(ro, "model.safetensors"), new Map([["w", t([1, 2, 3])], ["b", t([4])]]));
writeTorch(join(ro, "model.pth"), new Map([["w", t([5, 6, 7])]]));
chmodSync(join(ro, "model.safetensors"), 0o444);
chmodSync(join(ro, "model.pth"), 0o444);
chmodSync(ro, 0o555);

/** Open descriptors of this process on `path`, with their flags from /proc/self/fdinfo. */
function descriptorsOf(path: string): { fd: number; flags: number }[] {
  const out: { fd: number; flags: number }[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    let target = "";
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== resolve(path)) continue;
    const info = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
    out.push({ fd: Number(fd), flags: Number.parseInt(/flags:\s*([0-7]+)/.exec(info)![1], 8) });
  }
  return out;
}

function mappingsOf(path: string): string[] {
  return readFileSync("/proc/self/maps", "utf8")
    .split("\n")
    .filter((l) => l.endsWith(` ${resolve(path)}`))
    .map((l) => l.split(/\s+/)[1]);
}

const linux = process.platform === "linux";

describe("model files are opened read-only", () => {
  test("the open flags ask for reading only", () => {
    expect(OPEN_FLAGS & 3).toBe(constants.O_RDONLY);
  });

  test.if(linux)("the descriptor is O_RDONLY and tensor views are private mappings of it, unmapped once dropped", () => {
    const path = join(ro, "model.safetensors");
    // in a function of its own, so that no reference to the view stays on the test's stack
    const useAndDrop = () => {
      const src = FileSource.open(path);
      const fds = descriptorsOf(path);
      expect(fds.length).toBe(1);
      expect(fds[0].flags & 3).toBe(constants.O_RDONLY);
      const view = src.view(8, 16);
      expect(view.byteLength).toBe(16);
      // private (copy-on-write) mappings only: "p", never "s" (shared, written back)
      const maps = mappingsOf(path);
      expect(maps.length).toBeGreaterThan(0);
      for (const m of maps) expect(m).toMatch(/^r.-p$/);
      src.close();
      expect(descriptorsOf(path)).toEqual([]);
      // the mapping outlives the descriptor and the FileSource, for as long as a view holds it
      expect(view[0]).toBe(readFileSync(path)[8]);
    };
    useAndDrop();
    for (let i = 0; i < 20 && mappingsOf(path).length > 0; i++) Bun.gc(true);
    expect(mappingsOf(path)).toEqual([]);
  });

  test("a 0444 file in a 0555 directory loads (safetensors and torch zip)", () => {
    const st = readSafetensors(join(ro, "model.safetensors")).tensors;
    expect(Array.from(new Float32Array(st.get("w")!.data.slice().buffer))).toEqual([1, 2, 3]);
    const pth = readTorch(join(ro, "model.pth")) as Map<string, HostTensor>;
    expect(Array.from(new Float32Array(pth.get("w")!.data.slice().buffer))).toEqual([5, 6, 7]);
  });

  test("a view is a private copy: writing to it never reaches the file", () => {
    const path = join(dir, "writable.safetensors");
    writeSafetensors(path, new Map([["w", t([1, 2])]]));
    const before = readFileSync(path);
    const w = readSafetensors(path).tensors.get("w")!;
    w.data[0] ^= 0xff;
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  test("files past 2 GiB map one region per view, at any offset (a sparse file)", () => {
    const path = join(dir, "big.bin");
    const size = 2 ** 31 + 10_000;
    const fd = openSync(path, "w");
    try {
      ftruncateSync(fd, size);
      writeSync(fd, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 0, 8, 2 ** 31 + 4_999);
      writeSync(fd, Uint8Array.from([9, 10]), 0, 2, 3);
    } finally {
      closeSync(fd);
    }
    const src = FileSource.open(path);
    try {
      expect(src.size).toBe(size);
      expect(Array.from(src.view(2 ** 31 + 4_999, 8))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(Array.from(src.view(3, 3))).toEqual([9, 10, 0]);
      expect(Array.from(src.read(2 ** 31 + 5_000, 2))).toEqual([2, 3]);
      expect(() => src.view(size - 2, 4)).toThrow(/big\.bin: truncated or corrupt/);
    } finally {
      src.close();
      rmSync(path);
    }
  });

  // Root may open any file for writing, so as root the check runs again as an unprivileged user.
  test.if(linux)("an unprivileged user can load files it may only read", () => {
    if (process.getuid?.() !== 0) {
      // not root: the test above already ran without write permission
      expect(() => writeFileSync(join(ro, "model.pth"), "x")).toThrow(/EACCES/);
      return;
    }
    const setpriv = Bun.which("setpriv");
    if (!setpriv) throw new Error("running as root and setpriv (util-linux) is missing: cannot check loading as an unprivileged user");
    const script = join(dir, "load.ts");
    writeFileSync(
      script,
      `import { readSafetensors } from ${JSON.stringify(resolve(import.meta.dir, "safetensors.ts"))};
import { readTorch } from ${JSON.stringify(resolve(import.meta.dir, "torch.ts"))};
const st = readSafetensors(${JSON.stringify(join(ro, "model.safetensors"))}).tensors.get("w");
const pt = readTorch(${JSON.stringify(join(ro, "model.pth"))}).get("w");
console.log(JSON.stringify([...new Float32Array(st.data.slice().buffer), ...new Float32Array(pt.data.slice().buffer)]));
`,
    );
    chmodSync(script, 0o444);
    const run = (args: string[]) =>
      Bun.spawnSync([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", ...args], {
        env: { ...process.env, HOME: dir },
        stdout: "pipe",
        stderr: "pipe",
      });
    // the unprivileged user really cannot write the file
    const write = run(["sh", "-c", `echo x >> ${join(ro, "model.pth")}`]);
    expect(write.exitCode).not.toBe(0);
    const p = run([process.execPath, script]);
    expect(p.stderr.toString()).toBe("");
    expect(p.exitCode).toBe(0);
    expect(JSON.parse(p.stdout.toString())).toEqual([1, 2, 3, 5, 6, 7]);
  });
});
