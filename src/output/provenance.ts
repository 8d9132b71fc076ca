/**
 * Provenance for run.json: which virnuc (version, git commit when run from a checkout), how it
 * was called (the full argv), on which inputs (each input's sha256 when the reader computed it
 * while streaming), with which libvirnuc build (backends, CUDA architecture, compilers, the
 * library's sha256), on which machine (host name, OS, CPU, cores, memory, GPUs).
 *
 * Everything here is best effort and never fails a run: a fact that cannot be read is left out.
 * Nothing is spawned except `git rev-parse` (2 s limit) when .git cannot be read directly, and
 * `nvidia-smi` (3 s limit) when the NVIDIA driver is present.
 */
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { availableParallelism, cpus, hostname, release, totalmem, arch, platform } from "node:os";
import { sha256File } from "./arrowfile.ts";
import { VIRNUC_VERSION } from "./filemeta.ts";
import { libraryPath } from "../engine/ffi.ts";
import { backendAvailable } from "../engine/engine.ts";

/** The repository root of this checkout (src/output -> ../..). */
export const REPO_ROOT = resolve(import.meta.dir, "..", "..");

export interface InputProvenance {
  path: string;
  bytes: number;
  /**
   * sha256 of the input's bytes as given (a .gz file's compressed bytes), computed by the reader
   * while streaming. Absent when the reader did not provide it.
   */
  sha256?: string;
}

export interface LibvirnucBuild {
  path: string;
  bytes?: number;
  sha256?: string;
  /** backends this library offers (vn_backend_available) */
  backends?: { cpu: boolean; cuda: boolean };
  /** the build's own summary line (build/native/backends.txt), e.g. "cpu, cuda (sm_90); cpu tuning native" */
  build?: string;
  /** CUDA architecture compiled for, e.g. "sm_90" */
  cudaArch?: string;
  cxxCompiler?: string;
  cudaCompiler?: string;
}

export interface GpuInfo {
  index?: number;
  name: string;
  memoryBytes?: number;
  driver?: string;
  bus?: string;
}

export interface MachineInfo {
  hostname: string;
  os: { platform: string; release: string; arch: string; name?: string };
  cpu: { model?: string; cores: number; available: number };
  memoryBytes: number;
  gpus?: GpuInfo[];
}

export interface Provenance {
  virnuc: { version: string; commit?: string };
  bun: string;
  argv: string[];
  inputs: InputProvenance[];
  libvirnuc?: LibvirnucBuild;
  machine: MachineInfo;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

const HEX_ID = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/**
 * The commit checked out at `root`, read from .git (plain repositories, worktrees, loose and
 * packed refs, detached HEAD); `git rev-parse HEAD` (2 s limit) when .git exists but cannot be
 * read that way. Undefined when `root` is not a checkout.
 */
export function gitCommit(root: string = REPO_ROOT, opts: { spawn?: boolean } = {}): string | undefined {
  const dotGit = join(root, ".git");
  if (!existsSync(dotGit)) return undefined;
  const direct = readCommit(root, dotGit);
  if (direct) return direct;
  if (opts.spawn === false) return undefined;
  try {
    const p = Bun.spawnSync(["git", "-C", root, "rev-parse", "HEAD"], { stdout: "pipe", stderr: "ignore", timeout: 2000 });
    const out = p.stdout.toString().trim();
    return p.exitCode === 0 && HEX_ID.test(out) ? out : undefined;
  } catch {
    return undefined;
  }
}

function readCommit(root: string, dotGit: string): string | undefined {
  let gitDir = dotGit;
  try {
    if (statSync(dotGit).isFile()) {
      const m = /^gitdir:\s*(.+?)\s*$/m.exec(readText(dotGit) ?? "");
      if (!m) return undefined;
      gitDir = resolve(root, m[1]);
    }
  } catch {
    return undefined;
  }
  const commonRel = readText(join(gitDir, "commondir"))?.trim();
  const common = commonRel ? resolve(gitDir, commonRel) : gitDir;
  const head = readText(join(gitDir, "HEAD"))?.trim();
  if (!head) return undefined;
  if (HEX_ID.test(head)) return head;
  const ref = /^ref:\s*(refs\/\S+)$/.exec(head)?.[1];
  if (!ref || ref.includes("..")) return undefined;
  for (const d of [gitDir, common]) {
    const loose = readText(join(d, ref))?.trim();
    if (loose && HEX_ID.test(loose)) return loose;
  }
  for (const line of (readText(join(common, "packed-refs")) ?? "").split("\n")) {
    const [sha, name] = line.trim().split(/\s+/);
    if (name === ref && HEX_ID.test(sha)) return sha;
  }
  return undefined;
}

/** `set(NAME "value")` from a CMake-generated file. */
function cmakeSet(text: string | undefined, name: string): string | undefined {
  if (!text) return undefined;
  return new RegExp(`^set\\(${name} "([^"]*)"\\)`, "m").exec(text)?.[1] || undefined;
}

function compilerOf(buildDir: string, lang: "CXX" | "CUDA"): string | undefined {
  const files = join(buildDir, "CMakeFiles");
  let versions: string[] = [];
  try {
    versions = readdirSync(files).filter((d) => /^\d+\.\d+/.test(d));
  } catch {
    return undefined;
  }
  for (const v of versions.sort().reverse()) {
    const text = readText(join(files, v, `CMake${lang}Compiler.cmake`));
    const id = cmakeSet(text, `CMAKE_${lang}_COMPILER_ID`);
    const version = cmakeSet(text, `CMAKE_${lang}_COMPILER_VERSION`);
    if (id || version) return [id, version].filter(Boolean).join(" ");
  }
  return undefined;
}

/**
 * What is known about the libvirnuc at `libPath`: its size and sha256, and, when the CMake build
 * directory that made it is found (build/native beside build/libvirnuc.so, holding the same
 * library), the build's backends line, CUDA architecture and compilers.
 */
export function libvirnucBuild(libPath: string, backends?: { cpu: boolean; cuda: boolean }): LibvirnucBuild {
  const out: LibvirnucBuild = { path: libPath, backends };
  if (!existsSync(libPath)) return out;
  try {
    out.bytes = statSync(libPath).size;
    out.sha256 = sha256File(libPath);
  } catch {
    return out;
  }
  const dir = dirname(libPath);
  for (const buildDir of [join(dir, "native"), dir]) {
    const summary = readText(join(buildDir, "backends.txt"))?.trim();
    if (!summary) continue;
    // Only a build directory whose library is this one describes it.
    const built = join(buildDir, "libvirnuc.so");
    if (resolve(built) !== resolve(libPath)) {
      try {
        if (!existsSync(built) || sha256File(built) !== out.sha256) continue;
      } catch {
        continue;
      }
    }
    out.build = summary;
    const arch = /sm_(\d+[a-z]?)/.exec(summary)?.[1];
    if (arch) out.cudaArch = `sm_${arch}`;
    out.cxxCompiler = compilerOf(buildDir, "CXX");
    if (/cuda \(sm_/.test(summary)) out.cudaCompiler = compilerOf(buildDir, "CUDA");
    break;
  }
  return out;
}

/** GPUs from the NVIDIA driver: nvidia-smi when it answers, else /proc/driver/nvidia. */
export function nvidiaGpus(procRoot = "/proc", opts: { spawn?: boolean } = {}): GpuInfo[] | undefined {
  const driverDir = join(procRoot, "driver", "nvidia");
  if (!existsSync(driverDir)) return undefined;
  if (opts.spawn !== false) {
    try {
      const p = Bun.spawnSync(
        ["nvidia-smi", "--query-gpu=index,name,memory.total,driver_version,pci.bus_id", "--format=csv,noheader,nounits"],
        { stdout: "pipe", stderr: "ignore", timeout: 3000 },
      );
      if (p.exitCode === 0) {
        const gpus = parseNvidiaSmi(p.stdout.toString());
        if (gpus.length) return gpus;
      }
    } catch {
      // no nvidia-smi: read /proc below
    }
  }
  const driver = /Kernel Module\s+([\d.]+)/.exec(readText(join(driverDir, "version")) ?? "")?.[1];
  const gpus: GpuInfo[] = [];
  let buses: string[] = [];
  try {
    buses = readdirSync(join(driverDir, "gpus")).sort();
  } catch {
    return undefined;
  }
  for (const bus of buses) {
    const info = readText(join(driverDir, "gpus", bus, "information")) ?? "";
    const name = /^Model:\s*(.+?)\s*$/m.exec(info)?.[1];
    if (name) gpus.push({ name, bus, ...(driver ? { driver } : {}) });
  }
  return gpus.length ? gpus : undefined;
}

/** Lines of `nvidia-smi --query-gpu=index,name,memory.total,driver_version,pci.bus_id --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(text: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(",").map((s) => s.trim());
    if (f.length < 2 || !/^\d+$/.test(f[0])) continue;
    const mib = Number(f[2]);
    gpus.push({
      index: Number(f[0]),
      name: f[1],
      ...(Number.isFinite(mib) && f[2] !== "" ? { memoryBytes: mib * 1024 * 1024 } : {}),
      ...(f[3] ? { driver: f[3] } : {}),
      ...(f[4] ? { bus: f[4] } : {}),
    });
  }
  return gpus;
}

export function machineInfo(opts: { procRoot?: string; spawn?: boolean } = {}): MachineInfo {
  const c = cpus();
  const osName = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readText("/etc/os-release") ?? "")?.[1];
  const gpus = nvidiaGpus(opts.procRoot, { spawn: opts.spawn });
  return {
    hostname: hostname(),
    os: { platform: platform(), release: release(), arch: arch(), ...(osName ? { name: osName } : {}) },
    cpu: { model: c[0]?.model?.trim() || undefined, cores: c.length, available: availableParallelism() },
    memoryBytes: totalmem(),
    ...(gpus ? { gpus } : {}),
  };
}

/** The libvirnuc this process uses and its backends (backends left out if it cannot be loaded). */
export function libvirnucInUse(): { path: string; backends?: { cpu: boolean; cuda: boolean } } {
  const path = libraryPath();
  try {
    return { path, backends: { cpu: backendAvailable("cpu"), cuda: backendAvailable("cuda") } };
  } catch {
    return { path };
  }
}

export interface ProvenanceInput {
  argv?: readonly string[];
  inputs: readonly { path: string; bytes: number }[];
  /** sha256 of each input by path, from the reader's streaming hash when it has one */
  inputSha256?: ReadonlyMap<string, string>;
  /** the library in use and its backends (omit to leave libvirnuc out, e.g. without a build) */
  libvirnuc?: { path: string; backends?: { cpu: boolean; cuda: boolean } };
  root?: string;
}

export function collectProvenance(p: ProvenanceInput): Provenance {
  const commit = gitCommit(p.root ?? REPO_ROOT);
  return {
    virnuc: { version: VIRNUC_VERSION, ...(commit ? { commit } : {}) },
    bun: Bun.version,
    argv: [...(p.argv ?? process.argv)],
    inputs: p.inputs.map((i) => {
      const sha256 = p.inputSha256?.get(i.path);
      return { path: i.path, bytes: i.bytes, ...(sha256 ? { sha256 } : {}) };
    }),
    ...(p.libvirnuc ? { libvirnuc: libvirnucBuild(p.libvirnuc.path, p.libvirnuc.backends) } : {}),
    machine: machineInfo(),
  };
}
