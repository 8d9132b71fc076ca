/**
 * Loaded before every test file (bunfig.toml [test] preload). A test run works in a temporary
 * root of its own: TMPDIR (so every tmpdir() of the tests and of the CLI subprocesses they start),
 * VIRNUC_HOME, HF_HOME and TORCH_HOME point inside it, so nothing lands in the user's caches.
 * At the end the root is removed; anything a test left in TMPDIR is reported as a failure first.
 * Subprocesses see these settings only when spawned with `env: process.env` (Bun.spawn without
 * `env` passes the environment Bun started with): runCli does; the end check catches the others.
 */
import { afterAll } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

if (!process.env.VIRNUC_TEST_ROOT) {
  // the user's own cache, to check at the end that no subprocess wrote there
  const userHashes = join(process.env.VIRNUC_HOME || join(homedir(), ".cache", "virnuc"), "file-hashes.json");
  const root = mkdtempSync(join(tmpdir(), "virnuc-test-run-"));
  // traversable (not listable) by other users: a test checks loading as an unprivileged user
  chmodSync(root, 0o711);
  const tmp = join(root, "tmp");
  mkdirSync(tmp, { mode: 0o711 });
  process.env.VIRNUC_TEST_ROOT = root;
  process.env.TMPDIR = tmp;
  process.env.VIRNUC_HOME = join(root, "virnuc-home");
  process.env.HF_HOME = join(root, "hf-home");
  process.env.TORCH_HOME = join(root, "torch-home");
  for (const k of ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HF_TOKEN_PATH"]) delete process.env[k];

  afterAll(() => {
    let left: string[] = [];
    try {
      left = readdirSync(tmp);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    if (left.length > 0 && process.env.VIRNUC_TEST_ALLOW_LEFTOVERS !== "1") {
      throw new Error(`tests left ${left.length} temporary entries behind (remove them in afterAll): ${left.sort().join(", ")}`);
    }
    // Bun.spawn without `env` passes the environment Bun started with, not these settings
    let leaked = "";
    try {
      leaked = readFileSync(userHashes, "utf8");
    } catch {}
    if (leaked.includes(root)) {
      throw new Error(`a subprocess of the tests wrote to ${userHashes}: give every Bun.spawn/spawnSync env: process.env (or runCli)`);
    }
  });
}
