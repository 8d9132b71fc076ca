/**
 * Failures, signals and the output directory, with real subprocesses and real signals on the CPU
 * backend: every run either ends with byte-identical outputs to one uninterrupted run (after
 * --resume) or fails within seconds with one clear line, and no process is left behind.
 */
import { afterAll, describe, expect, test, beforeAll } from "bun:test";
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { CLI, OUTPUT_FILES, ROOT, modelArgs, outputsOf, runCli, syntheticFasta, tempDir as newTempDir, tinyModels } from "./helpers.ts";

const made: string[] = [];
/** A temporary directory of this file, removed when it is done. */
function tempDir(name: string): string {
  const d = newTempDir(name);
  made.push(d);
  return d;
}
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

let reads: string;
let baseline: Record<string, Buffer>;
/** Parts slowed down (a test seam), so that a signal always lands mid-run. */
const SLOW = { VIRNUC_TEST_PART_DELAY_MS: "300" };
const common = () => ["--chunk-size", "300", "--window-reads", "40", "--no-progress", ...modelArgs()];

beforeAll(() => {
  tinyModels();
  reads = join(tempDir("fail"), "reads.fa");
  syntheticFasta(reads, 400, 150, 21);
  const d = tempDir("fail-baseline");
  const r = runCli(["predict", reads, "-o", d, ...common()]);
  expect(r.code).toBe(0);
  baseline = outputsOf(d);
}, 120_000);

/** A CLI run in the background whose processes (workers included) carry a unique tag. */
function start(args: string[], env: Record<string, string> = {}) {
  const tag = `t${process.pid}-${Math.random().toString(36).slice(2)}`;
  const proc = Bun.spawn([process.execPath, CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, VIRNUC_TEST_TAG: tag, ...env },
    stdout: "ignore",
    stderr: "pipe",
  });
  const lines: { at: number; text: string }[] = [];
  const reading = (async () => {
    let rest = "";
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
      rest += new TextDecoder().decode(chunk);
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const text of parts) lines.push({ at: performance.now(), text });
    }
    if (rest) lines.push({ at: performance.now(), text: rest });
  })();
  return {
    proc,
    tag,
    lines,
    /** exit code (or 128 + signal) and when it came */
    async end(): Promise<{ code: number; at: number; stderr: string }> {
      await proc.exited;
      const at = performance.now();
      await reading;
      const code = proc.exitCode ?? 128 + (proc.signalCode === "SIGKILL" ? 9 : 0);
      return { code, at, stderr: lines.map((l) => l.text).join("\n") };
    },
  };
}

/** Processes still running with this tag in their environment (workers included). */
function tagged(tag: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, "latin1").includes(`VIRNUC_TEST_TAG=${tag}\0`)) out.push(Number(d));
    } catch {
      // gone meanwhile, or not ours
    }
  }
  return out;
}

async function noneLeft(tag: string, withinMs = 5000): Promise<number[]> {
  const until = performance.now() + withinMs;
  let left = tagged(tag);
  while (left.length > 0 && performance.now() < until) {
    await Bun.sleep(100);
    left = tagged(tag);
  }
  return left;
}

const finishedParts = (d: string) => {
  try {
    return readdirSync(join(d, ".virnuc", "parts")).filter((f) => f.endsWith(".json")).length;
  } catch {
    return 0;
  }
};

async function waitParts(d: string, n: number, p: { exitCode: number | null }) {
  while (p.exitCode === null && finishedParts(d) < n) await Bun.sleep(20);
}

const finalOutputs = (d: string) => OUTPUT_FILES.filter((f) => existsSync(join(d, f))).concat(existsSync(join(d, "run.json")) ? ["run.json"] : []);

describe("signals", () => {
  test("Ctrl-C on a CPU run: exit 130 within seconds, no final outputs, --resume matches an uninterrupted run byte for byte", async () => {
    const d = tempDir("sigint");
    const run = start(["predict", reads, "-o", d, ...common()], SLOW);
    await waitParts(d, 1, run.proc);
    const sent = performance.now();
    run.proc.kill("SIGINT");
    const r = await run.end();
    expect(r.code).toBe(130);
    expect((r.at - sent) / 1000).toBeLessThan(5);
    expect(r.stderr).toMatch(/stopped by SIGINT: finished parts are kept in .*--resume to continue/);
    expect(finalOutputs(d)).toEqual([]);
    expect(existsSync(join(d, ".virnuc.lock"))).toBe(false);
    const kept = finishedParts(d);
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(10);
    const again = runCli(["predict", reads, "-o", d, ...common(), "--resume"]);
    expect(again.code).toBe(0);
    expect(outputsOf(d)).toEqual(baseline);
  }, 120_000);

  test("SIGHUP: exit 129 within seconds, no final outputs", async () => {
    const d = tempDir("sighup");
    const run = start(["predict", reads, "-o", d, ...common()], SLOW);
    await waitParts(d, 1, run.proc);
    const sent = performance.now();
    run.proc.kill("SIGHUP");
    const r = await run.end();
    expect(r.code).toBe(129);
    expect((r.at - sent) / 1000).toBeLessThan(5);
    expect(r.stderr).toMatch(/stopped by SIGHUP/);
    expect(finalOutputs(d)).toEqual([]);
  }, 60_000);

  test("SIGTERM with --workers 3: exit 143, the workers end too; --resume gives identical outputs", async () => {
    const d = tempDir("sigterm");
    const run = start(["predict", reads, "-o", d, ...common(), "--workers", "3"], SLOW);
    await waitParts(d, 1, run.proc);
    expect(tagged(run.tag).length).toBe(4); // the parent and its 3 workers
    const sent = performance.now();
    run.proc.kill("SIGTERM");
    const r = await run.end();
    expect(r.code).toBe(143);
    expect((r.at - sent) / 1000).toBeLessThan(6);
    expect(r.stderr).toMatch(/stopped by SIGTERM/);
    expect(await noneLeft(run.tag, 2000)).toEqual([]);
    expect(finalOutputs(d)).toEqual([]);
    const again = runCli(["predict", reads, "-o", d, ...common(), "--resume", "--workers", "2"]);
    expect(again.code).toBe(0);
    expect(outputsOf(d)).toEqual(baseline);
  }, 120_000);

  test("SIGKILL of the parent: its workers exit", async () => {
    const d = tempDir("sigkill");
    const run = start(["predict", reads, "-o", d, ...common(), "--workers", "2"], SLOW);
    await waitParts(d, 1, run.proc);
    expect(tagged(run.tag).length).toBe(3);
    run.proc.kill("SIGKILL");
    await run.end();
    expect(await noneLeft(run.tag, 5000)).toEqual([]);
    // The lock of the killed run is stale: the next run takes it over and finishes the work.
    const again = runCli(["predict", reads, "-o", d, ...common(), "--resume"]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/taking over the lock .* left by process \d+/);
    expect(outputsOf(d)).toEqual(baseline);
  }, 120_000);
});

describe("failing workers", () => {
  test("a part that always kills its worker: the run ends within seconds of the last crash, no process left", async () => {
    const d = tempDir("crashes");
    const run = start(["predict", reads, "-o", d, ...common(), "--workers", "3"], { VIRNUC_TEST_CRASH_ALWAYS: "3" });
    const r = await run.end();
    expect(r.code).toBe(1);
    const errors = r.stderr.split("\n").filter((l) => l.startsWith("virnuc: error"));
    // It dies when handed part 3, holding the part before it too: either may reach 3 losses first.
    expect(errors).toEqual([expect.stringMatching(/^virnuc: error: workers died 3 times holding part [23] \(last: cpu-worker-\d, holding parts .*3.*\); finished parts are kept: rerun with --resume$/)]);
    const lastRestart = run.lines.filter((l) => /restarting it/.test(l.text)).at(-1)!;
    expect(lastRestart).toBeDefined();
    expect((r.at - lastRestart.at) / 1000).toBeLessThan(10);
    expect(await noneLeft(run.tag, 2000)).toEqual([]);
    expect(finalOutputs(d)).toEqual([]);
  }, 120_000);

  test("one of 3 workers keeps dying: its parts are redone by the others or the run ends, within seconds, no process left", async () => {
    const d = tempDir("dying");
    const run = start(["predict", reads, "-o", d, ...common(), "--workers", "3"], { VIRNUC_TEST_CRASH_WORKER: "cpu-worker-1" });
    const r = await run.end();
    const deaths = run.lines.filter((l) => /worker cpu-worker-1 stopped \(killed by SIGKILL\)/.test(l.text));
    expect(deaths.length).toBeGreaterThan(0);
    expect((r.at - deaths.at(-1)!.at) / 1000).toBeLessThan(10);
    expect(await noneLeft(run.tag, 2000)).toEqual([]);
    if (r.code === 0) {
      // The other workers redid its parts: the outputs are those of one uninterrupted run.
      expect(outputsOf(d)).toEqual(baseline);
    } else {
      // Its restarts ran out (or a part it held was lost three times) before the others finished.
      expect(r.code).toBe(1);
      const errors = r.stderr.split("\n").filter((l) => l.startsWith("virnuc: error"));
      expect(errors).toEqual([expect.stringMatching(/worker cpu-worker-1 failed 4 times \(last: killed by SIGKILL\)|workers died 3 times holding part/)]);
      expect(finalOutputs(d)).toEqual([]);
    }
  }, 120_000);

  test("a worker stuck while loading is not waited for: the others finish, it is killed, outputs identical", async () => {
    const d = tempDir("stuck");
    const run = start(["predict", reads, "-o", d, ...common(), "--workers", "2"], { VIRNUC_TEST_HANG_WORKER: "cpu-worker-1" });
    const r = await run.end();
    expect(r.code).toBe(0);
    expect(await noneLeft(run.tag, 2000)).toEqual([]);
    expect(outputsOf(d)).toEqual(baseline);
  }, 120_000);

  test("disk full while writing a part (3 workers): one line naming the file, finished parts intact, --resume gives identical outputs", async () => {
    const d = tempDir("enospc");
    const run = start(["predict", reads, "-o", d, ...common(), "--workers", "3"], { VIRNUC_TEST_FAIL_WRITE: "ENOSPC:part-000004" });
    const r = await run.end();
    expect(r.code).toBe(1);
    const errors = r.stderr.split("\n").filter((l) => l.startsWith("virnuc: error"));
    expect(errors.length).toBe(1);
    expect(errors[0]).toMatch(/^virnuc: error: worker cpu-worker-\d: cannot write .*part-000004\.predictions\.arrow: no space left on the device \(ENOSPC.*--resume/);
    // Ended within seconds of the failure: the last finished part is at most a few seconds older than the exit.
    const partsDir = join(d, ".virnuc", "parts");
    const newest = Math.max(...readdirSync(partsDir).map((f) => statSync(join(partsDir, f)).mtimeMs));
    expect((Date.now() - newest) / 1000).toBeLessThan(20);
    expect(await noneLeft(run.tag, 2000)).toEqual([]);
    expect(finalOutputs(d)).toEqual([]);
    expect(existsSync(join(partsDir, "part-000004.json"))).toBe(false);
    // Space freed: resume keeps the finished parts (every manifest entry validates) and matches
    // an uninterrupted run; temporary files of writes cut short (a worker killed after the
    // grace period) are cleared.
    const again = runCli(["predict", reads, "-o", d, ...common(), "--resume"]);
    expect(again.code).toBe(0);
    expect(again.stderr).not.toMatch(/redoing/);
    expect(outputsOf(d)).toEqual(baseline);
    expect(readdirSync(partsDir).filter((f) => f.includes(".tmp-"))).toEqual([]);
  }, 120_000);
});

describe("the output directory", () => {
  test("one run per directory: a second run is refused while the first holds the lock", async () => {
    const d = tempDir("locked");
    // The first run holds DIR for as long as its workers are stuck loading.
    const first = start(["predict", reads, "-o", d, ...common(), "--workers", "2"], { VIRNUC_TEST_HANG_WORKER: "cpu-worker-0,cpu-worker-1" });
    while (first.proc.exitCode === null && !existsSync(join(d, ".virnuc", "state.json"))) await Bun.sleep(20);
    const second = runCli(["predict", reads, "-o", d, ...common(), "--force"]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`is in use by virnuc \\(pid ${first.proc.pid} on .*wait for it or choose another -o`));
    first.proc.kill("SIGINT");
    const r = await first.end();
    expect(r.code).toBe(130);
    expect(await noneLeft(first.tag, 2000)).toEqual([]);
    expect(existsSync(join(d, ".virnuc.lock"))).toBe(false);
    const third = runCli(["predict", reads, "-o", d, ...common(), "--resume"]);
    expect(third.code).toBe(0);
    expect(outputsOf(d)).toEqual(baseline);
  }, 120_000);

  test("--force removes the earlier final outputs first: a failed --force run leaves none", () => {
    const d = tempDir("force");
    expect(runCli(["predict", reads, "-o", d, ...common()]).code).toBe(0);
    expect(finalOutputs(d).length).toBe(6);
    const r = runCli(["predict", reads, "-o", d, ...common(), "--force"], { env: { VIRNUC_TEST_FAIL_WRITE: "ENOSPC:part-000002" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot write .*part-000002/);
    expect(finalOutputs(d)).toEqual([]);
  }, 60_000);

  test("merge writes nothing into its shard directories", () => {
    const s0 = tempDir("ro0");
    const s1 = tempDir("ro1");
    expect(runCli(["predict", reads, "-o", s0, ...common(), "--shard", "0/2"]).code).toBe(0);
    expect(runCli(["predict", reads, "-o", s1, ...common(), "--shard", "1/2"]).code).toBe(0);
    const snapshot = (dir: string) => {
      const out: string[] = [];
      const walk = (p: string) => {
        for (const f of readdirSync(p).sort()) {
          const q = join(p, f);
          const st = statSync(q);
          if (st.isDirectory()) walk(q);
          else out.push(`${q} ${st.mtimeMs} ${createHash("sha256").update(readFileSync(q)).digest("hex")}`);
        }
      };
      walk(dir);
      return out;
    };
    const before = [snapshot(s0), snapshot(s1)];
    const m = tempDir("rom");
    const r = runCli(["merge", s0, s1, "-o", m]);
    expect(r.code).toBe(0);
    expect(outputsOf(m)).toEqual(baseline);
    expect([snapshot(s0), snapshot(s1)]).toEqual(before);
    const into = runCli(["merge", s0, s1, "-o", s0]);
    expect(into.code).toBe(2);
    expect(into.stderr).toMatch(/is one of the shard directories/);
  }, 60_000);

  test("a corrupt manifest entry means the part is redone, not a refusal", () => {
    const d = tempDir("manifest");
    expect(runCli(["predict", reads, "-o", d, ...common()]).code).toBe(0);
    const p = join(d, ".virnuc", "parts", "part-000002.json");
    const entry = JSON.parse(readFileSync(p, "utf8"));
    entry.records += 1; // valid JSON, wrong content
    writeFileSync(p, JSON.stringify(entry) + "\n");
    const r = runCli(["predict", reads, "-o", d, ...common(), "--resume"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/part 2 is incomplete or corrupt: redoing it/);
    expect(outputsOf(d)).toEqual(baseline);
  }, 60_000);
});
