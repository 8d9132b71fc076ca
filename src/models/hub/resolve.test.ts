import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../../util/errors.ts";
import { hfHubCache, isHubId, repoFolderName, repoIdFromFolder, torchCheckpoints, virnucHome } from "./paths.ts";
import { DEFAULTS, findHfSnapshot, resolveModel } from "./resolve.ts";

let dir: string;
let env: Record<string, string | undefined>;
const home = () => join(dir, "home");

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "virnuc-resolve-"));
  env = { HOME: home() };
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A snapshot the way huggingface_hub leaves it: files linked into blobs/. */
function makeSnapshot(cache: string, id: string, rev: string, files: string[], main: string | null = rev): string {
  const repo = join(cache, repoFolderName(id));
  const snap = join(repo, "snapshots", rev);
  mkdirSync(snap, { recursive: true });
  mkdirSync(join(repo, "blobs"), { recursive: true });
  for (const f of files) {
    const blob = join(repo, "blobs", `${rev}-${f}`);
    writeFileSync(blob, f);
    symlinkSync(`../../blobs/${rev}-${f}`, join(snap, f));
  }
  if (main !== null) {
    mkdirSync(join(repo, "refs"), { recursive: true });
    writeFileSync(join(repo, "refs", "main"), main);
  }
  return snap;
}

function touch(path: string, text = "x"): string {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, text);
  return path;
}

async function message(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error("expected a UserError");
}

describe("cache locations", () => {
  test("HF_HUB_CACHE, then HF_HOME/hub, then XDG_CACHE_HOME, then ~/.cache/huggingface/hub", () => {
    expect(hfHubCache({ HOME: "/h" })).toBe("/h/.cache/huggingface/hub");
    expect(hfHubCache({ HOME: "/h", XDG_CACHE_HOME: "/x" })).toBe("/x/huggingface/hub");
    expect(hfHubCache({ HOME: "/h", HF_HOME: "/hf", XDG_CACHE_HOME: "/x" })).toBe("/hf/hub");
    expect(hfHubCache({ HOME: "/h", HF_HOME: "/hf", HF_HUB_CACHE: "/c" })).toBe("/c");
    expect(hfHubCache({ HOME: "/h", HF_HOME: "~/hf" })).toBe("/h/hf/hub");
    expect(torchCheckpoints({ HOME: "/h" })).toBe("/h/.cache/torch/hub/checkpoints");
    expect(torchCheckpoints({ HOME: "/h", TORCH_HOME: "/t" })).toBe("/t/hub/checkpoints");
    expect(virnucHome({ HOME: "/h" })).toBe("/h/.cache/virnuc");
    expect(virnucHome({ HOME: "/h", VIRNUC_HOME: "/v" })).toBe("/v");
  });

  test("Hub ids and cache folder names", () => {
    expect(isHubId("facebook/esm2_t36_3B_UR50D")).toBe(true);
    expect(isHubId("zhihan1996/DNABERT-S")).toBe(true);
    expect(isHubId("./models/esm")).toBe(false);
    expect(isHubId("/abs/dir")).toBe(false);
    expect(isHubId("a/b/c")).toBe(false);
    expect(isHubId("weights/500_model.pth")).toBe(false);
    expect(repoFolderName("zhihan1996/DNABERT-S")).toBe("models--zhihan1996--DNABERT-S");
    expect(repoIdFromFolder("models--zhihan1996--DNABERT-S")).toBe("zhihan1996/DNABERT-S");
    expect(repoIdFromFolder("datasets--a--b")).toBeUndefined();
  });
});

describe("resolveModel: encoders", () => {
  test("the default DNABERT-S from ~/.cache/huggingface/hub via refs/main", async () => {
    const cache = join(home(), ".cache", "huggingface", "hub");
    makeSnapshot(cache, DEFAULTS.dnabert, "old1", ["config.json", "pytorch_model.bin"], null);
    const snap = makeSnapshot(cache, DEFAULTS.dnabert, "new2", ["config.json", "pytorch_model.bin", "tokenizer.json"]);
    expect(await resolveModel("dnabert", undefined, { env })).toBe(snap);
  });

  test("HF_HUB_CACHE overrides HF_HOME, which overrides HOME", async () => {
    const a = makeSnapshot(join(home(), ".cache", "huggingface", "hub"), "o/m", "r1", ["model.safetensors"]);
    const b = makeSnapshot(join(dir, "hfhome", "hub"), "o/m", "r2", ["model.safetensors"]);
    const c = makeSnapshot(join(dir, "hubcache"), "o/m", "r3", ["model.safetensors"]);
    expect(await resolveModel("dnabert", "o/m", { env })).toBe(a);
    expect(await resolveModel("dnabert", "o/m", { env: { ...env, HF_HOME: join(dir, "hfhome") } })).toBe(b);
    expect(await resolveModel("dnabert", "o/m", { env: { ...env, HF_HOME: join(dir, "hfhome"), HF_HUB_CACHE: join(dir, "hubcache") } })).toBe(c);
  });

  test("without refs/main a sole snapshot is used; several are an error naming the folder", async () => {
    const cache = join(dir, "c");
    const only = makeSnapshot(cache, "o/one", "rev1", ["model.safetensors"], null);
    expect(await resolveModel("esm", "o/one", { env: { ...env, HF_HUB_CACHE: cache } })).toBe(only);
    makeSnapshot(cache, "o/two", "revA", ["model.safetensors"], null);
    makeSnapshot(cache, "o/two", "revB", ["model.safetensors"], null);
    const msg = await message(resolveModel("dnabert", "o/two", { env: { ...env, HF_HUB_CACHE: cache } }));
    expect(msg).toContain("models--o--two: 2 snapshots and no refs/main");
    expect(msg).toContain("virnuc models pull o/two");
  });

  test("ESM-2: the torch hub .pt when the Hub cache lacks it; TORCH_HOME respected", async () => {
    const pt = touch(join(home(), ".cache", "torch", "hub", "checkpoints", "esm2_t36_3B_UR50D.pt"));
    expect(await resolveModel("esm", undefined, { env })).toBe(pt);
    const pt2 = touch(join(dir, "torch", "hub", "checkpoints", "esm2_t36_3B_UR50D.pt"));
    expect(await resolveModel("esm", undefined, { env: { ...env, TORCH_HOME: join(dir, "torch") } })).toBe(pt2);
    // a bare fair-esm name works too
    const small = touch(join(home(), ".cache", "torch", "hub", "checkpoints", "esm2_t6_8M_UR50D.pt"));
    expect(await resolveModel("esm", "esm2_t6_8M_UR50D", { env })).toBe(small);
  });

  test("ESM-2: a Hub snapshot with weights wins over the .pt; a weightless one (tokenizer only) loses", async () => {
    const cache = join(home(), ".cache", "huggingface", "hub");
    const pt = touch(join(home(), ".cache", "torch", "hub", "checkpoints", "esm2_t36_3B_UR50D.pt"));
    makeSnapshot(cache, DEFAULTS.esm, "tok", ["vocab.txt", "config.json"]);
    expect(await resolveModel("esm", undefined, { env })).toBe(pt);
    const full = makeSnapshot(cache, DEFAULTS.esm, "full", ["config.json", "pytorch_model-00001-of-00002.bin"]);
    expect(await resolveModel("esm", undefined, { env })).toBe(full);
  });

  test("paths are returned as they are", async () => {
    const d = join(dir, "my-esm");
    mkdirSync(d);
    expect(await resolveModel("esm", d, { env })).toBe(d);
    const f = touch(join(dir, "weights.pt"));
    expect(await resolveModel("esm", f, { env })).toBe(f);
    touch(join(home(), "w", "dnabert", "config.json"));
    expect(await resolveModel("dnabert", "~/w/dnabert", { env })).toBe(join(home(), "w", "dnabert"));
  });

  test("not found: one line with where it looked and the pull command", async () => {
    const msg = await message(resolveModel("esm", undefined, { env }));
    expect(msg).toBe(
      "ESM-2 model facebook/esm2_t36_3B_UR50D not found (looked in ~/.cache/huggingface/hub/models--facebook--esm2_t36_3B_UR50D " +
        "and ~/.cache/torch/hub/checkpoints/esm2_t36_3B_UR50D.pt): run `virnuc models pull facebook/esm2_t36_3B_UR50D` or pass --esm DIR|FILE",
    );
    expect(msg).not.toContain("\n");
    const d = await message(resolveModel("dnabert", undefined, { env: { ...env, HF_HUB_CACHE: "/nowhere/hub" } }));
    expect(d).toBe(
      "DNABERT-S model zhihan1996/DNABERT-S not found (looked in /nowhere/hub/models--zhihan1996--DNABERT-S): run `virnuc models pull zhihan1996/DNABERT-S` or pass --dnabert DIR|FILE",
    );
    expect(await message(resolveModel("dnabert", "./no/such/dir", { env }))).toBe(
      "--dnabert ./no/such/dir: no such file or directory (give a directory, a weights file or a Hub id org/name)",
    );
  });
});

describe("resolveModel: classifier", () => {
  test("by chunk size: the current directory first, then $VIRNUC_HOME/classifiers", async () => {
    const cwd = join(dir, "work");
    mkdirSync(cwd);
    const inHome = touch(join(home(), ".cache", "virnuc", "classifiers", "300_model.pth"));
    expect(await resolveModel("classifier", undefined, { chunkSize: 300, env, cwd })).toBe(inHome);
    const inCwd = touch(join(cwd, "300_model.pth"));
    expect(await resolveModel("classifier", undefined, { chunkSize: 300, env, cwd })).toBe(inCwd);
    const custom = touch(join(dir, "v", "classifiers", "500_model.pth"));
    expect(await resolveModel("classifier", undefined, { chunkSize: 500, env: { ...env, VIRNUC_HOME: join(dir, "v") }, cwd })).toBe(custom);
  });

  test("chunk size 500 is the default", async () => {
    const p = touch(join(home(), ".cache", "virnuc", "classifiers", "500_model.pth"));
    expect(await resolveModel("classifier", undefined, { env, cwd: dir })).toBe(p);
  });

  test("an explicit file; a bare name is also looked up in the classifier folder", async () => {
    const f = touch(join(dir, "mine.pth"));
    expect(await resolveModel("classifier", f, { env })).toBe(f);
    const inHome = touch(join(home(), ".cache", "virnuc", "classifiers", "retrained.pth"));
    expect(await resolveModel("classifier", "retrained.pth", { env, cwd: dir })).toBe(inHome);
  });

  test("errors: other chunk sizes, missing files, directories", async () => {
    expect(await message(resolveModel("classifier", undefined, { chunkSize: 400, env }))).toBe(
      "--chunk-size 400: VirNucPro ships classifiers for chunk sizes 300 and 500 only; pass --classifier FILE",
    );
    expect(await message(resolveModel("classifier", undefined, { chunkSize: 300, env, cwd: "/work/x" }))).toBe(
      "classifier 300_model.pth not found (looked in /work/x/300_model.pth and ~/.cache/virnuc/classifiers/300_model.pth): run `virnuc models pull 300_model.pth` or pass --classifier FILE",
    );
    expect(await message(resolveModel("classifier", "models/500_model.pth", { env, cwd: dir }))).toBe(
      "--classifier models/500_model.pth: no such file; `virnuc models pull 500_model.pth` fetches it",
    );
    expect(await message(resolveModel("classifier", dir, { env }))).toContain("is a directory");
  });
});

test("findHfSnapshot reports a refs/main that points at a missing snapshot", () => {
  const cache = join(dir, "c");
  makeSnapshot(cache, "o/m", "r1", ["model.safetensors"], "deadbeef");
  // a sole snapshot is still usable
  expect(findHfSnapshot("o/m", env, cache).revision).toBe("r1");
  makeSnapshot(cache, "o/m", "r2", ["model.safetensors"], "deadbeef");
  expect(findHfSnapshot("o/m", env, cache).problem).toBe("2 snapshots and refs/main (deadbeef) matches none");
});
