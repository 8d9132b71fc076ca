/**
 * Where weights live on disk: the Hugging Face hub cache, the torch hub cache (fair-esm .pt files)
 * and virnuc's own home (the VirNucPro classifiers). Every function takes the environment so that
 * tests and callers can point them elsewhere without touching process.env.
 */
import { homedir } from "node:os";
import { join } from "node:path";

export type Env = Record<string, string | undefined>;

function nonEmpty(v: string | undefined): string | undefined {
  return v !== undefined && v.trim() !== "" ? v : undefined;
}

export function homeDir(env: Env): string {
  return nonEmpty(env.HOME) ?? homedir();
}

/** `~/...` in a user-given path (shells expand it, config files and quoted arguments do not). */
export function expandHome(p: string, env: Env): string {
  if (p === "~") return homeDir(env);
  if (p.startsWith("~/")) return join(homeDir(env), p.slice(2));
  return p;
}

function xdgCache(env: Env): string {
  return nonEmpty(env.XDG_CACHE_HOME) ?? join(homeDir(env), ".cache");
}

/** `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface` (as huggingface_hub does). */
export function hfHome(env: Env): string {
  const h = nonEmpty(env.HF_HOME);
  return h ? expandHome(h, env) : join(xdgCache(env), "huggingface");
}

/** `$HF_HUB_CACHE`, else `$HF_HOME/hub`. */
export function hfHubCache(env: Env): string {
  const c = nonEmpty(env.HF_HUB_CACHE) ?? nonEmpty(env.HUGGINGFACE_HUB_CACHE);
  return c ? expandHome(c, env) : join(hfHome(env), "hub");
}

/** `$TORCH_HOME/hub/checkpoints`, TORCH_HOME defaulting to `$XDG_CACHE_HOME/torch` or `~/.cache/torch`. */
export function torchCheckpoints(env: Env): string {
  const t = nonEmpty(env.TORCH_HOME);
  return join(t ? expandHome(t, env) : join(xdgCache(env), "torch"), "hub", "checkpoints");
}

/** `$VIRNUC_HOME`, else `~/.cache/virnuc`. */
export function virnucHome(env: Env): string {
  const v = nonEmpty(env.VIRNUC_HOME);
  return v ? expandHome(v, env) : join(homeDir(env), ".cache", "virnuc");
}

export function classifiersDir(env: Env): string {
  return join(virnucHome(env), "classifiers");
}

/** A Hub id is `org/name` (letters, digits, `-`, `_`, `.`), never a path with more parts. */
export function isHubId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(s) && !s.includes("..") && !s.endsWith(".pt") && !s.endsWith(".pth");
}

/** `org/name` -> `models--org--name` (the hub cache folder of a model repository). */
export function repoFolderName(id: string): string {
  return `models--${id.split("/").join("--")}`;
}

/** `models--org--name` -> `org/name`, or undefined for other folders (datasets, spaces, locks). */
export function repoIdFromFolder(folder: string): string | undefined {
  if (!folder.startsWith("models--")) return undefined;
  const parts = folder.slice("models--".length).split("--");
  return parts.length >= 2 ? parts.join("/") : parts[0] || undefined;
}

/** Shorten the home directory to `~` for messages. */
export function tildify(p: string, env: Env): string {
  const h = homeDir(env);
  return p === h ? "~" : p.startsWith(h + "/") ? "~" + p.slice(h.length) : p;
}
