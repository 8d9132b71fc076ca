// Builds libvirnuc (cuda/) with CMake into build/native and installs it as build/libvirnuc.so.
// Run by `bun install` (postinstall) and `bun run build:native`. Environment: VIRNUC_CUDA=OFF
// (CPU backend only), VIRNUC_CUDA_ARCH (default 90), CXX / CMAKE_GENERATOR as usual.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { checkLibrary } from "./check-isa.ts";

const root = resolve(import.meta.dir, "..");
const source = join(root, "cuda");
const buildDir = join(root, "build", "native");
const target = join(root, "build", "libvirnuc.so");

function die(message: string): never {
  console.error(`libvirnuc: ${message}`);
  process.exit(1);
}

function run(cmd: string[], quiet: boolean): void {
  const proc = Bun.spawnSync(cmd, { cwd: root, stdout: quiet ? "pipe" : "inherit", stderr: "pipe", env: process.env });
  if (proc.exitCode !== 0) {
    const out = `${proc.stdout?.toString() ?? ""}${proc.stderr.toString()}`.trim();
    if (out) console.error(out);
    die(`${cmd[0]} ${cmd[1]} failed (exit ${proc.exitCode}); see the messages above`);
  }
}

function main(): void {
  if (!existsSync(join(source, "CMakeLists.txt"))) die("cuda/CMakeLists.txt is missing");
  const cmake = Bun.which("cmake");
  if (!cmake) die("cmake not found: install cmake (>= 3.20) and a C++17 compiler, then run bun run build:native");
  const cxx = process.env.CXX ? Bun.which(process.env.CXX) : (Bun.which("c++") ?? Bun.which("g++") ?? Bun.which("clang++"));
  if (!cxx) die("no C++ compiler found (c++, g++ or clang++; or set CXX): install one, then run bun run build:native");

  mkdirSync(buildDir, { recursive: true });
  const cache = join(buildDir, "CMakeCache.txt");
  const args = [cmake, "-S", source, "-B", buildDir, "-DCMAKE_BUILD_TYPE=Release", `-DCMAKE_CXX_COMPILER=${cxx}`];
  // A generator can only be chosen for a fresh build directory; Ninja when present.
  if (!existsSync(cache) && !process.env.CMAKE_GENERATOR && Bun.which("ninja")) args.push("-G", "Ninja");
  if (process.env.VIRNUC_CUDA) args.push(`-DVIRNUC_CUDA=${process.env.VIRNUC_CUDA}`);
  else args.push("-UVIRNUC_CUDA");
  if (process.env.VIRNUC_CUDA_ARCH) args.push(`-DVIRNUC_CUDA_ARCH=${process.env.VIRNUC_CUDA_ARCH}`);
  else args.push("-UVIRNUC_CUDA_ARCH");
  run(args, true);
  run([cmake, "--build", buildDir, "--config", "Release", "--parallel"], true);

  const built = join(buildDir, "libvirnuc.so");
  if (!existsSync(built)) die(`the build finished but ${built} is missing`);
  // Copy then rename: a process that has the old library loaded keeps its (unlinked) file.
  // One build must run on any CPU of the architecture: no AVX/AVX-512 outside the kernel units
  // that are entered only after checking the CPU (scripts/check-isa.ts; skipped without objdump).
  // CXXFLAGS with target flags (-march=..., -mavx2) make the whole library target that CPU: the
  // builder's choice, so then only a warning.
  if (process.arch === "x64" && Bun.which("objdump")) {
    const r = checkLibrary(built);
    if (r.violations.length > 0) {
      const msg = `${r.violations.length} AVX/AVX-512 instructions outside the CPU kernel units (first in ${r.violations[0].fn}); see bun scripts/check-isa.ts ${built}`;
      if (/(^|\s)-m(arch|avx|fma)/.test(process.env.CXXFLAGS ?? ""))
        console.error(`libvirnuc: warning: ${msg}: CXXFLAGS targets a CPU, so this library may not run on older ones`);
      else die(msg);
    }
  }
  const tmp = `${target}.tmp-${process.pid}`;
  copyFileSync(built, tmp);
  renameSync(tmp, target);
  const backends = existsSync(join(buildDir, "backends.txt"))
    ? readFileSync(join(buildDir, "backends.txt"), "utf8").trim()
    : "unknown backends";
  writeBuildInfo(backends, cxx);
  console.log(`libvirnuc: built build/libvirnuc.so, backends: ${backends}`);
}

/** build/libvirnuc.json beside the library: what `virnuc --version` and run.json report. */
function writeBuildInfo(backends: string, cxx: string): void {
  const firstLine = (cmd: string[], pick = (l: string[]) => l[0]) => {
    const p = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
    const lines = p.stdout.toString().trim().split("\n").filter(Boolean);
    return p.exitCode === 0 && lines.length ? pick(lines).trim() : null;
  };
  const cache = existsSync(join(buildDir, "CMakeCache.txt")) ? readFileSync(join(buildDir, "CMakeCache.txt"), "utf8") : "";
  const nvcc = /^CMAKE_CUDA_COMPILER:\w+=(.+)$/m.exec(cache)?.[1];
  const arch = /cuda \(sm_([^)]+)\)/.exec(backends)?.[1] ?? null;
  const info = {
    backends,
    cudaArch: arch,
    compiler: firstLine([cxx, "--version"]),
    cudaCompiler: arch && nvcc ? firstLine([nvcc, "--version"], (l) => l.find((x) => x.includes("release")) ?? l[l.length - 1]) : null,
    built: new Date().toISOString(),
  };
  writeFileSync(join(root, "build", "libvirnuc.json"), JSON.stringify(info, null, 2) + "\n");
}

main();
