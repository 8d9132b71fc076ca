/**
 * What this virnuc is: its version and git commit, the libvirnuc build it loads (from
 * build/libvirnuc.json, which scripts/build-native.ts writes beside the library), and the Bun
 * actually running. `virnuc --version` prints it; run.json can record it.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import pkg from "../package.json" with { type: "json" };

const ROOT = resolve(import.meta.dir, "..");

export interface LibvirnucBuild {
  /** the library file virnuc loads ($VIRNUC_LIB, else build/libvirnuc.so) */
  path: string;
  present: boolean;
  /** e.g. "cpu, cuda (sm_90); cpu tuning native"; null when unknown */
  backends: string | null;
  cudaArch: string | null;
  compiler: string | null;
  cudaCompiler: string | null;
  built: string | null;
}

export interface VersionInfo {
  virnuc: string;
  /** git commit of the checkout, when it is one */
  commit: string | null;
  libvirnuc: LibvirnucBuild;
  bun: string;
  bunRevision: string;
  platform: string;
}

export function libvirnucBuild(): LibvirnucBuild {
  const path = process.env.VIRNUC_LIB ? resolve(process.env.VIRNUC_LIB) : join(ROOT, "build", "libvirnuc.so");
  const out: LibvirnucBuild = { path, present: existsSync(path), backends: null, cudaArch: null, compiler: null, cudaCompiler: null, built: null };
  const infoPath = path.replace(/\.(so|dylib|dll)$/, "") + ".json";
  try {
    const j = JSON.parse(readFileSync(infoPath, "utf8"));
    for (const k of ["backends", "cudaArch", "compiler", "cudaCompiler", "built"] as const) if (typeof j[k] === "string") out[k] = j[k];
  } catch {
    // built before build info was written, or elsewhere: unknown
  }
  return out;
}

export function gitCommit(): string | null {
  if (!existsSync(join(ROOT, ".git"))) return null;
  try {
    const p = Bun.spawnSync(["git", "-C", ROOT, "rev-parse", "HEAD"], { stdout: "pipe", stderr: "ignore" });
    const s = p.stdout.toString().trim();
    return p.exitCode === 0 && /^[0-9a-f]{40}$/.test(s) ? s : null;
  } catch {
    return null;
  }
}

export function versionInfo(): VersionInfo {
  return {
    virnuc: pkg.version,
    commit: gitCommit(),
    libvirnuc: libvirnucBuild(),
    bun: Bun.version,
    bunRevision: Bun.revision,
    platform: `${process.platform}-${process.arch}`,
  };
}

export function versionText(v = versionInfo()): string {
  const lib = v.libvirnuc;
  const libLine = !lib.present
    ? `libvirnuc: not built (${lib.path} is missing): run bun install, or bun run build:native`
    : lib.backends === null
      ? `libvirnuc: ${lib.path} (build details unknown: rebuild with bun run build:native)`
      : `libvirnuc: ${lib.backends}; ${[lib.compiler, lib.cudaCompiler].filter(Boolean).join("; ")}${lib.built ? `; built ${lib.built}` : ""}`;
  return [
    `virnuc ${v.virnuc}${v.commit ? ` (git ${v.commit.slice(0, 12)})` : ""}`,
    libLine,
    `bun ${v.bun} (${v.bunRevision.slice(0, 9)}, ${v.platform})`,
  ].join("\n");
}
