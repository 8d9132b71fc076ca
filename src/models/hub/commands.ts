/** `virnuc models list | resolve | verify | pull`. */
import { existsSync } from "node:fs";
import { join, resolve as resolvePath } from "node:path";
import { UserError, oneLine } from "../../util/errors.ts";
import { scanClassifiers, scanHubCache, scanTorchHub } from "./cache.ts";
import { CLASSIFIER_RELEASES, classifierByFile } from "./classifiers.ts";
import { classifiersDir, hfHubCache, isHubId, repoFolderName, tildify, torchCheckpoints, type Env } from "./paths.ts";
import { defaultProgress, formatBytes, type ProgressSink } from "./progress.ts";
import { pullModels, expandPullIds } from "./pull.ts";
import { DEFAULTS, resolveModel, type ModelKind } from "./resolve.ts";
import { failed, verifyClassifier, verifyPath, verifyRepo, type VerifyResult } from "./verify.ts";

/** Where a command reads its environment and writes its output (tests pass their own). */
export interface CommandContext {
  env: Env;
  cwd: string;
  out: (line: string) => void;
  err: (line: string) => void;
  progress: ProgressSink;
  /** extra pull options for tests (retry delays, injected classifier ids) */
  pull?: Parameters<typeof pullModels>[1];
}

export function processContext(): CommandContext {
  return {
    env: process.env,
    cwd: process.cwd(),
    out: (l) => process.stdout.write(l + "\n"),
    err: (l) => process.stderr.write(l + "\n"),
    progress: defaultProgress(),
  };
}

function chunkSizeOf(opts: Record<string, unknown>): number {
  const raw = opts.chunkSize ?? 500;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new UserError(`--chunk-size ${String(raw)}: expected a positive integer (300 or 500)`);
  return n;
}

const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);

interface DefaultResolution {
  flag: string;
  spec: string;
  path?: string;
  error?: string;
}

async function resolveDefaults(ctx: CommandContext): Promise<DefaultResolution[]> {
  const entries: Array<[string, ModelKind, string, number | undefined]> = [
    ["--esm", "esm", DEFAULTS.esm, undefined],
    ["--dnabert", "dnabert", DEFAULTS.dnabert, undefined],
    ...CLASSIFIER_RELEASES.map((c) => ["--classifier", "classifier", `${c.file} (--chunk-size ${c.chunkSize})`, c.chunkSize] as [string, ModelKind, string, number]),
  ];
  const out: DefaultResolution[] = [];
  for (const [flag, kind, spec, chunkSize] of entries) {
    try {
      out.push({ flag, spec, path: await resolveModel(kind, undefined, { chunkSize, env: ctx.env, cwd: ctx.cwd }) });
    } catch (err) {
      out.push({ flag, spec, error: oneLine(err) });
    }
  }
  return out;
}

export async function listCommand(args: string[], opts: Record<string, unknown>, ctx = processContext()): Promise<void> {
  if (args.length > 0) throw new UserError(`models list takes no arguments (got '${args[0]}')`);
  const { env, out } = ctx;
  const t = (p: string) => tildify(p, env);
  const defaults = await resolveDefaults(ctx);
  const defaultOf = (p: string) => defaults.filter((d) => d.path !== undefined && resolvePath(d.path) === resolvePath(p));
  const mark = (p: string) => {
    const ds = defaultOf(p);
    return ds.length ? `  <- default ${ds.map((d) => (d.flag === "--classifier" ? d.spec.replace(/^\S+ /, "") : d.flag)).join(", ")}` : "";
  };

  out("Defaults");
  for (const d of defaults)
    out(`  ${d.flag.padEnd(13)} ${d.spec}: ${d.path ? t(d.path) : `not found (${pullHint(d.spec)})`}`);

  const hub = hfHubCache(env);
  const repos = scanHubCache(hub);
  out("");
  out(`Hugging Face cache  ${t(hub)}${repos.length ? "" : "  (no models)"}`);
  for (const repo of repos) {
    out(`  ${repo.id}`);
    for (const snap of repo.snapshots) {
      const bytes = snap.files.reduce((s, f) => s + (f.size ?? 0), 0);
      const refs = snap.refs.length ? ` (${snap.refs.join(", ")})` : "";
      out(`    snapshot ${snap.revision.slice(0, 12)}${refs}  ${snap.files.length} files, ${formatBytes(bytes)}${mark(snap.dir)}`);
      const width = Math.max(...snap.files.map((f) => f.path.length), 0);
      for (const f of snap.files)
        out(`      ${f.path.padEnd(width)}  ${f.size === undefined ? "MISSING (broken link)" : formatBytes(f.size)}`);
    }
    if (repo.incomplete.length) {
      const bytes = repo.incomplete.reduce((s, f) => s + f.size, 0);
      out(`    ${repo.incomplete.length} interrupted download(s), ${formatBytes(bytes)} so far: \`virnuc models pull ${repo.id}\` resumes`);
    }
  }

  const torch = scanTorchHub(env);
  out("");
  out(`Torch hub  ${t(torchCheckpoints(env))}${torch.length ? "" : "  (no checkpoints)"}`);
  for (const f of torch) out(`  ${f.path.split("/").pop()}  ${formatBytes(f.size)}${mark(f.path)}`);

  const cls = scanClassifiers(env, ctx.cwd);
  out("");
  out(`Classifiers  ${t(classifiersDir(env))}${cls.length ? "" : "  (none)"}`);
  for (const f of cls) out(`  ${t(f.path)}  ${formatBytes(f.size)}${mark(f.path)}`);
}

function pullHint(spec: string): string {
  const id = spec.split(" ")[0];
  return `\`virnuc models pull ${id}\``;
}

const KINDS: readonly ModelKind[] = ["esm", "dnabert", "classifier"];

export async function resolveCommand(args: string[], opts: Record<string, unknown>, ctx = processContext()): Promise<void> {
  const chunkSize = chunkSizeOf(opts);
  const ropts = { chunkSize, env: ctx.env, cwd: ctx.cwd };
  if (args.length === 0) {
    const failures: string[] = [];
    for (const kind of KINDS) {
      try {
        ctx.out(`${kind}\t${await resolveModel(kind, undefined, ropts)}`);
      } catch (err) {
        failures.push(oneLine(err));
      }
    }
    if (failures.length) {
      for (const f of failures.slice(1)) ctx.err(`virnuc: ${f}`);
      throw new UserError(failures[0]);
    }
    return;
  }
  const [first, spec, ...rest] = args;
  if (rest.length) throw new UserError(`models resolve takes [esm|dnabert|classifier] [SPEC] (got ${args.length} arguments)`);
  const kind = KINDS.find((k) => k === first);
  if (!kind) throw new UserError(`models resolve ${first}: expected esm, dnabert or classifier, then optionally a Hub id or path`);
  ctx.out(await resolveModel(kind, spec, ropts));
}

export async function verifyCommand(args: string[], opts: Record<string, unknown>, ctx = processContext()): Promise<void> {
  const { env } = ctx;
  const vopts = { progress: ctx.progress, classifierIds: ctx.pull?.classifierIds };
  const results: VerifyResult[] = [];
  const hub = hfHubCache(env);
  if (args.length === 0) {
    // The models a default run uses; the rest of a shared cache (other people's LLMs) is not ours to hash.
    for (const id of [DEFAULTS.esm, DEFAULTS.dnabert]) {
      const dir = join(hub, repoFolderName(id));
      if (existsSync(dir)) results.push(...verifyRepo(dir, id, vopts));
      else ctx.out(`-         ${id}: not downloaded`);
    }
    for (const c of CLASSIFIER_RELEASES) {
      const p = [resolvePath(ctx.cwd, c.file), join(classifiersDir(env), c.file)].find((x) => existsSync(x));
      if (p) results.push(verifyClassifier(p, vopts));
      else ctx.out(`-         ${c.file}: not downloaded`);
    }
  } else {
    for (const arg of args) results.push(...verifyTarget(arg, ctx, vopts));
  }
  for (const r of results) {
    const how = r.algorithm ? ` (${r.algorithm})` : "";
    const detail = r.status === "MISMATCH" ? `: expected ${r.expected}, got ${r.actual}` : r.note ? `: ${r.note}` : "";
    ctx.out(`${r.status.padEnd(10)}${tildify(r.file, env)}${how}${detail}`);
  }
  const bad = results.filter(failed);
  const counts = (["OK", "MISMATCH", "MISSING", "UNVERIFIED"] as const)
    .map((s) => [s, results.filter((r) => r.status === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`);
  ctx.out(`${results.length} file(s) checked${counts.length ? `: ${counts.join(", ")}` : ""}`);
  if (bad.length)
    throw new UserError(
      `${bad.length} file(s) failed verification (first: ${tildify(bad[0].file, env)}): delete the damaged blob and rerun \`virnuc models pull\` for that model`,
    );
}

function verifyTarget(arg: string, ctx: CommandContext, vopts: Parameters<typeof verifyPath>[1]): VerifyResult[] {
  const { env } = ctx;
  const asPath = resolvePath(ctx.cwd, arg);
  if (existsSync(asPath)) return verifyPath(asPath, vopts);
  const ids = (() => {
    try {
      return expandPullIds([arg]);
    } catch {
      return [];
    }
  })();
  if (ids.length === 0) throw new UserError(`models verify ${arg}: no such file, and not a Hub id (org/name) or classifier name`);
  const out: VerifyResult[] = [];
  for (const id of ids) {
    if (classifierByFile(id)) {
      const p = join(classifiersDir(env), id);
      if (!existsSync(p)) throw new UserError(`${id}: not in ${tildify(classifiersDir(env), env)}: run \`virnuc models pull ${id}\``);
      out.push(verifyClassifier(p, vopts));
    } else if (isHubId(id)) {
      const dir = join(hfHubCache(env), repoFolderName(id));
      if (!existsSync(dir)) throw new UserError(`${id}: not in the Hugging Face cache ${tildify(hfHubCache(env), env)}: run \`virnuc models pull ${id}\``);
      out.push(...verifyRepo(dir, id, vopts));
    }
  }
  return out;
}

export async function pullCommand(args: string[], opts: Record<string, unknown>, ctx = processContext()): Promise<void> {
  const output = str(opts.output) ?? str(opts.o);
  const dir = output ? resolvePath(ctx.cwd, output) : undefined;
  const results = await pullModels(args, {
    env: ctx.env,
    endpoint: str(opts.endpoint),
    githubBase: str(opts.github),
    cacheDir: dir,
    classifierDir: dir,
    progress: ctx.progress,
    log: ctx.err,
    ...ctx.pull,
  });
  for (const r of results) {
    const bytes = r.files.reduce((s, f) => s + f.size, 0);
    const fetched = r.files.filter((f) => f.downloaded).length;
    const unverified = r.files.filter((f) => f.verified === "none").length;
    const state = fetched === 0 ? "already present, verified" : `${fetched} downloaded and verified`;
    ctx.out(
      `${r.id} -> ${tildify(r.path, ctx.env)}  (${r.files.length} file(s), ${formatBytes(bytes)}; ${state}${unverified ? `; ${unverified} without a published hash` : ""})`,
    );
  }
  if (dir && results.some((r) => !classifierByFile(r.id)))
    ctx.out(`Hub models are in ${dir} in the Hugging Face cache layout: set HF_HUB_CACHE=${dir} for virnuc to find them`);
}
