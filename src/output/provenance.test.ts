import { afterEach, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT, collectProvenance, gitCommit, libvirnucBuild, machineInfo, nvidiaGpus, parseNvidiaSmi } from "./provenance.ts";
import { sha256File } from "./arrowfile.ts";
import { toStableJson } from "./runjson.ts";
import pkg from "../../package.json" with { type: "json" };

const dirs: string[] = [];
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), "virnuc-prov-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const A = "a".repeat(40);
const B = "b".repeat(40);
const C = "c".repeat(40);

function put(path: string, text: string) {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, text);
}

describe("git commit", () => {
  test("loose ref, packed ref, detached HEAD, worktree; absent when not a checkout", () => {
    const repo = temp();
    put(join(repo, ".git/HEAD"), "ref: refs/heads/main\n");
    put(join(repo, ".git/refs/heads/main"), `${A}\n`);
    expect(gitCommit(repo, { spawn: false })).toBe(A);
    // packed
    rmSync(join(repo, ".git/refs/heads/main"));
    put(join(repo, ".git/packed-refs"), `# pack-refs with: peeled fully-peeled sorted\n${C} refs/heads/other\n${B} refs/heads/main\n`);
    expect(gitCommit(repo, { spawn: false })).toBe(B);
    // a worktree: .git is a file; its HEAD names a branch whose ref lives in the common dir
    const wt = temp();
    put(join(repo, ".git/worktrees/wt/HEAD"), "ref: refs/heads/other\n");
    put(join(repo, ".git/worktrees/wt/commondir"), "../..\n");
    writeFileSync(join(wt, ".git"), `gitdir: ${join(repo, ".git/worktrees/wt")}\n`);
    expect(gitCommit(wt, { spawn: false })).toBe(C);
    // detached
    put(join(repo, ".git/HEAD"), `${A}\n`);
    expect(gitCommit(repo, { spawn: false })).toBe(A);
    // unreadable HEAD: nothing (no spawn asked)
    put(join(repo, ".git/HEAD"), "ref: refs/heads/missing\n");
    expect(gitCommit(repo, { spawn: false })).toBeUndefined();
    // not a checkout
    expect(gitCommit(temp())).toBeUndefined();
  });

  test("this checkout's commit matches git rev-parse HEAD", () => {
    const p = Bun.spawnSync(["git", "-C", REPO_ROOT, "rev-parse", "HEAD"], { stdout: "pipe", stderr: "ignore" });
    if (p.exitCode !== 0) {
      // an exported tree (no .git): nothing to report
      expect(gitCommit(REPO_ROOT)).toBeUndefined();
      return;
    }
    expect(gitCommit(REPO_ROOT, { spawn: false })).toBe(p.stdout.toString().trim());
  });
});

describe("libvirnuc build", () => {
  test("sha256 always; backends line, CUDA arch and compilers from the build directory that made it", () => {
    const dir = temp();
    const lib = join(dir, "libvirnuc.so");
    writeFileSync(lib, "not really a library");
    put(join(dir, "native/backends.txt"), "cpu, cuda (sm_90); cpu tuning native\n");
    copyFileSync(lib, join(dir, "native/libvirnuc.so"));
    put(join(dir, "native/CMakeFiles/3.25.1/CMakeCXXCompiler.cmake"), 'set(CMAKE_CXX_COMPILER "/usr/bin/c++")\nset(CMAKE_CXX_COMPILER_ID "GNU")\nset(CMAKE_CXX_COMPILER_VERSION "12.2.0")\n');
    put(join(dir, "native/CMakeFiles/3.25.1/CMakeCUDACompiler.cmake"), 'set(CMAKE_CUDA_COMPILER_ID "NVIDIA")\nset(CMAKE_CUDA_COMPILER_VERSION "12.4.131")\n');
    const b = libvirnucBuild(lib, { cpu: true, cuda: true });
    expect(b).toEqual({
      path: lib,
      bytes: 20,
      sha256: sha256File(lib),
      backends: { cpu: true, cuda: true },
      build: "cpu, cuda (sm_90); cpu tuning native",
      cudaArch: "sm_90",
      cxxCompiler: "GNU 12.2.0",
      cudaCompiler: "NVIDIA 12.4.131",
    });
    // a build directory holding another library does not describe this one
    writeFileSync(join(dir, "native/libvirnuc.so"), "another build");
    const other = libvirnucBuild(lib);
    expect(other.sha256).toBe(sha256File(lib));
    expect(other.build).toBeUndefined();
    expect(other.cxxCompiler).toBeUndefined();
    // missing library: the path only
    expect(libvirnucBuild(join(dir, "nope.so"))).toEqual({ path: join(dir, "nope.so"), backends: undefined });
  });

  test("the repository's own build is described (CPU-only here: no CUDA arch)", () => {
    const lib = join(REPO_ROOT, "build", "libvirnuc.so");
    const b = libvirnucBuild(lib);
    expect(b.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(b.build).toStartWith("cpu");
    expect(b.cxxCompiler).toMatch(/\S+ \d+\./);
    if (!/cuda \(sm_/.test(b.build!)) expect(b.cudaArch).toBeUndefined();
  });
});

describe("machine", () => {
  test("host, OS, CPU, memory; GPUs only where the NVIDIA driver is", () => {
    const m = machineInfo({ procRoot: temp() });
    expect(m.hostname.length).toBeGreaterThan(0);
    expect(m.os.platform).toBe(process.platform);
    expect(m.cpu.cores).toBeGreaterThan(0);
    expect(m.cpu.available).toBeGreaterThan(0);
    expect(m.memoryBytes).toBeGreaterThan(1 << 20);
    expect(m.gpus).toBeUndefined();
  });

  test("GPUs from /proc/driver/nvidia, and nvidia-smi's CSV", () => {
    const proc = temp();
    put(join(proc, "driver/nvidia/version"), "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 2024\n");
    put(join(proc, "driver/nvidia/gpus/0000:1b:00.0/information"), "Model: \t\t NVIDIA H200\nIRQ:   \t\t 42\n");
    put(join(proc, "driver/nvidia/gpus/0000:0a:00.0/information"), "Model: \t\t NVIDIA H100 80GB HBM3\n");
    expect(nvidiaGpus(proc, { spawn: false })).toEqual([
      { name: "NVIDIA H100 80GB HBM3", bus: "0000:0a:00.0", driver: "550.54.15" },
      { name: "NVIDIA H200", bus: "0000:1b:00.0", driver: "550.54.15" },
    ]);
    expect(parseNvidiaSmi("0, NVIDIA H200, 143771, 550.54.15, 00000000:1B:00.0\n1, NVIDIA H200, 143771, 550.54.15, 00000000:2A:00.0\n")).toEqual([
      { index: 0, name: "NVIDIA H200", memoryBytes: 143771 * 1048576, driver: "550.54.15", bus: "00000000:1B:00.0" },
      { index: 1, name: "NVIDIA H200", memoryBytes: 143771 * 1048576, driver: "550.54.15", bus: "00000000:2A:00.0" },
    ]);
    expect(parseNvidiaSmi("No devices were found\n")).toEqual([]);
  });
});

describe("collectProvenance", () => {
  test("version, commit, argv, inputs (sha256 when the reader gave one), libvirnuc, machine: JSON-ready", () => {
    const p = collectProvenance({
      argv: ["/usr/bin/bun", "src/cli.ts", "predict", "a.fa", "b.fa.gz", "-o", "out"],
      inputs: [
        { path: "/d/a.fa", bytes: 10 },
        { path: "/d/b.fa.gz", bytes: 20 },
      ],
      inputSha256: new Map([["/d/a.fa", "e".repeat(64)]]),
      libvirnuc: { path: join(REPO_ROOT, "build", "libvirnuc.so"), backends: { cpu: true, cuda: false } },
    });
    expect(p.virnuc.version).toBe(pkg.version);
    expect(p.bun).toBe(Bun.version);
    expect(p.argv).toEqual(["/usr/bin/bun", "src/cli.ts", "predict", "a.fa", "b.fa.gz", "-o", "out"]);
    expect(p.inputs).toEqual([
      { path: "/d/a.fa", bytes: 10, sha256: "e".repeat(64) },
      { path: "/d/b.fa.gz", bytes: 20 },
    ]);
    expect(p.libvirnuc!.backends).toEqual({ cpu: true, cuda: false });
    expect(p.libvirnuc!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(p.machine.cpu.cores).toBeGreaterThan(0);
    // survives run.json's JSON form
    const json = JSON.parse(JSON.stringify(toStableJson(p)));
    expect(json.inputs[1].sha256).toBeUndefined();
    expect(json.virnuc.version).toBe(pkg.version);
    // default argv is this process's
    expect(collectProvenance({ inputs: [] }).argv).toEqual(process.argv);
  });
});
