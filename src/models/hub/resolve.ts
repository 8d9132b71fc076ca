/**
 * Turning `--esm`, `--dnabert` and `--classifier` values into files on disk: a path is taken as
 * it is, a Hub id `org/name` is looked up in the Hugging Face cache (and, for ESM-2, the torch hub
 * cache of fair-esm), and the classifier defaults to VirNucPro's file for the chunk size.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { UserError } from "../../util/errors.ts";
import { classifierByFile, classifierForChunkSize } from "./classifiers.ts";
import {
  classifiersDir,
  expandHome,
  hfHubCache,
  isHubId,
  repoFolderName,
  tildify,
  torchCheckpoints,
  type Env,
} from "./paths.ts";

export type ModelKind = "esm" | "dnabert" | "classifier";

export const DEFAULTS = {
  esm: "facebook/esm2_t36_3B_UR50D",
  dnabert: "zhihan1996/DNABERT-S",
  classifier300: "300_model.pth",
  classifier500: "500_model.pth",
} as const satisfies {
  esm: "facebook/esm2_t36_3B_UR50D";
  dnabert: "zhihan1996/DNABERT-S";
  classifier300: "300_model.pth";
  classifier500: "500_model.pth";
};

export interface ResolveOptions {
  chunkSize?: number;
  env?: Record<string, string | undefined>;
  /** where a bare classifier name is looked for first (default: the current directory) */
  cwd?: string;
}

const LABEL: Record<ModelKind, string> = { esm: "ESM-2 model", dnabert: "DNABERT-S model", classifier: "classifier" };

/** What the hub cache holds for one repository. */
export interface SnapshotLookup {
  repoDir: string;
  /** snapshots/<revision>, when one could be chosen */
  snapshot?: string;
  revision?: string;
  /** why no snapshot was chosen although the repository folder exists */
  problem?: string;
}

/** `models--org--name/refs/main` -> `snapshots/<rev>/`; with no usable refs/main, a sole snapshot. */
export function findHfSnapshot(id: string, env: Env, cacheDir = hfHubCache(env)): SnapshotLookup {
  const repoDir = join(cacheDir, repoFolderName(id));
  if (!existsSync(repoDir)) return { repoDir };
  const snapshotsDir = join(repoDir, "snapshots");
  let revs: string[] = [];
  try {
    revs = readdirSync(snapshotsDir).filter((r) => statSync(join(snapshotsDir, r)).isDirectory());
  } catch {
    return { repoDir, problem: "no snapshots/ folder" };
  }
  let main: string | undefined;
  try {
    main = readFileSync(join(repoDir, "refs", "main"), "utf8").trim();
  } catch {
    main = undefined;
  }
  if (main && revs.includes(main)) return { repoDir, snapshot: join(snapshotsDir, main), revision: main };
  if (revs.length === 1) return { repoDir, snapshot: join(snapshotsDir, revs[0]), revision: revs[0] };
  if (revs.length === 0) return { repoDir, problem: "no snapshot" };
  return { repoDir, problem: `${revs.length} snapshots and ${main ? `refs/main (${main.slice(0, 12)}) matches none` : "no refs/main"}` };
}

const WEIGHT_FILE = /\.(safetensors|bin|pt|pth)$/;

/** Whether a model directory holds weights (a cache snapshot may hold only a tokenizer). */
export function hasWeights(dir: string): boolean {
  try {
    return readdirSync(dir).some((f) => WEIGHT_FILE.test(f) && existsSync(join(dir, f)));
  } catch {
    return false;
  }
}

/** The torch hub file fair-esm would use for a Hub id or a bare model name (`<last part>.pt`). */
export function torchHubCheckpoint(idOrName: string, env: Env): string {
  const last = idOrName.split("/").pop() ?? idOrName;
  return join(torchCheckpoints(env), last.endsWith(".pt") ? last : `${last}.pt`);
}

export async function resolveModel(kind: ModelKind, spec: string | undefined, opts: ResolveOptions): Promise<string> {
  const env = opts.env ?? process.env;
  // A user's path comes back as they wrote it; with an explicit cwd it is made absolute against it.
  const asPath = (s: string) => (opts.cwd !== undefined ? resolve(opts.cwd, expandHome(s, env)) : expandHome(s, env));
  if (kind === "classifier") return resolveClassifier(spec, opts.chunkSize ?? 500, env, opts.cwd ?? process.cwd(), asPath);
  return resolveEncoder(kind, spec ?? (kind === "esm" ? DEFAULTS.esm : DEFAULTS.dnabert), env, asPath);
}

function resolveEncoder(kind: "esm" | "dnabert", spec: string, env: Env, pathOf: (s: string) => string): string {
  const flag = `--${kind}`;
  const asPath = pathOf(spec);
  if (existsSync(asPath)) return asPath;

  const looked: string[] = [];
  const notes: string[] = [];
  let weightless: string | undefined;
  if (isHubId(spec)) {
    const found = findHfSnapshot(spec, env);
    looked.push(tildify(found.repoDir, env));
    if (found.snapshot && hasWeights(found.snapshot)) return found.snapshot;
    if (found.snapshot) {
      weightless = found.snapshot;
      notes.push(`its snapshot ${found.revision?.slice(0, 12)} has no weights`);
    } else if (found.problem) notes.push(`${repoFolderName(spec)}: ${found.problem}`);
  }
  // fair-esm keeps whole checkpoints as <name>.pt; accept a Hub id or a bare name like esm2_t33_650M_UR50D
  if (kind === "esm" && (isHubId(spec) || !spec.includes("/"))) {
    const pt = torchHubCheckpoint(spec, env);
    looked.push(tildify(pt, env));
    if (existsSync(pt)) return pt;
  }
  if (weightless) return weightless;

  const what = `${LABEL[kind]} ${spec}`;
  if (!isHubId(spec) && looked.length === 0)
    throw new UserError(`${flag} ${spec}: no such file or directory (give a directory, a weights file or a Hub id org/name)`);
  const pull = isHubId(spec) ? `run \`virnuc models pull ${spec}\` or pass ${flag} DIR|FILE` : `pass ${flag} DIR|FILE`;
  const why = notes.length ? `; ${notes.join("; ")}` : "";
  throw new UserError(`${what} not found (looked in ${looked.join(" and ")}${why}): ${pull}`);
}

function resolveClassifier(
  spec: string | undefined,
  chunkSize: number,
  env: Env,
  cwd: string,
  pathOf: (s: string) => string,
): string {
  let name: string;
  if (spec !== undefined) {
    const asPath = pathOf(spec);
    if (existsSync(asPath)) {
      if (statSync(asPath).isDirectory())
        throw new UserError(`--classifier ${spec}: is a directory; give the .pth file (e.g. ${join(spec, "500_model.pth")})`);
      return asPath;
    }
    if (spec.includes("/")) {
      const hint = classifierByFile(basename(spec)) ? `; \`virnuc models pull ${basename(spec)}\` fetches it` : "";
      throw new UserError(`--classifier ${spec}: no such file${hint}`);
    }
    name = spec;
  } else {
    const release = classifierForChunkSize(chunkSize);
    if (!release)
      throw new UserError(
        `--chunk-size ${chunkSize}: VirNucPro ships classifiers for chunk sizes 300 and 500 only; pass --classifier FILE`,
      );
    name = release.file;
  }
  const candidates = [resolve(cwd, name), join(classifiersDir(env), name)];
  for (const c of candidates) if (existsSync(c) && statSync(c).isFile()) return c;
  const looked = candidates.map((c) => tildify(c, env)).join(" and ");
  const fix = classifierByFile(name)
    ? `run \`virnuc models pull ${name}\` or pass --classifier FILE`
    : "pass --classifier with the path of the .pth file";
  throw new UserError(`classifier ${name} not found (looked in ${looked}): ${fix}`);
}
