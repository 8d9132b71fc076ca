/**
 * Property tests for the weight-file readers (tests only): mutations of valid files, and a runner
 * that is seeded and bounded in time, so that CI runs the same cases in a few seconds.
 * VIRNUC_FUZZ_SEED, VIRNUC_FUZZ_RUNS and VIRNUC_FUZZ_MS change the seed, the number of cases and
 * the time limit (for longer runs by hand); VIRNUC_FUZZ_VERBOSE=1 prints what each property did.
 */
import { expect } from "bun:test";
import fc from "fast-check";
import { UserError } from "../util/errors.ts";

/** One edit of a file: positions are taken modulo its length, so every edit applies. */
export type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "set"; at: number; value: number }
  | { kind: "u32"; at: number; value: number }
  | { kind: "u64"; at: number; value: bigint }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; length: number }
  | { kind: "truncate"; at: number }
  | { kind: "duplicate"; at: number; length: number; to: number };

/** Values that hit the edges of length and offset fields. */
const INTERESTING_U32 = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const INTERESTING_U64 = [0n, 1n, 8n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant("u32" as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(...INTERESTING_U32), fc.nat()) }),
  fc.record({ kind: fc.constant("u64" as const), at: fc.nat(), value: fc.constantFrom(...INTERESTING_U64) }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("duplicate" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 256 }), to: fc.nat() }),
);

/** 1 to 4 mutations. */
export const mutations = fc.array(mutation, { minLength: 1, maxLength: 4 });

export function mutate(input: Uint8Array, edits: Mutation[]): Uint8Array {
  let b: Uint8Array = Uint8Array.from(input);
  for (const m of edits) {
    const n = b.length;
    if (n === 0) break;
    const at = m.at % n;
    switch (m.kind) {
      case "flip":
        b[at] ^= 1 << m.bit;
        break;
      case "set":
        b[at] = m.value;
        break;
      case "u32":
        if (at + 4 <= n) new DataView(b.buffer).setUint32(at, m.value >>> 0, true);
        break;
      case "u64":
        if (at + 8 <= n) new DataView(b.buffer).setBigUint64(at, m.value, true);
        break;
      case "insert":
        b = concat(b.subarray(0, at), m.bytes, b.subarray(at));
        break;
      case "delete":
        b = concat(b.subarray(0, at), b.subarray(Math.min(n, at + m.length)));
        break;
      case "truncate":
        b = b.slice(0, at);
        break;
      case "duplicate": {
        const piece = b.slice(at, Math.min(n, at + m.length));
        const to = m.to % n;
        b = concat(b.subarray(0, to), piece, b.subarray(to));
        break;
      }
    }
  }
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export interface FuzzOptions {
  /** Cases to try (fewer when the time limit comes first). */
  runs?: number;
  /** Time limit for the whole property, in ms. */
  ms?: number;
  /** Slowest acceptable single case, in ms (a reader that is not linear in its input shows here). */
  caseMs?: number;
  /** Cases run whatever the time limit (30), so that a slow machine still tests something. */
  minRuns?: number;
}

const env = (k: string) => (process.env[k] ? Number(process.env[k]) : undefined);

/** The bun:test timeout for a fuzz test: room for the property's time limit and its assertions. */
export const FUZZ_TEST_TIMEOUT = Math.max(30_000, 3 * (env("VIRNUC_FUZZ_MS") ?? 0));

/**
 * Checks that `read` on every generated input returns, or throws a UserError whose message is one
 * line starting with `source` (never another exception: no crash, no RangeError, no TypeError),
 * each case within `caseMs`, and the process's memory within bounds.
 */
export function fuzz<T>(name: string, arb: fc.Arbitrary<T>, source: string, read: (input: T) => void, opts: FuzzOptions = {}): void {
  const caseMs = opts.caseMs ?? 5000;
  const minRuns = opts.minRuns ?? 30;
  let slowest = 0;
  let accepted = 0;
  let refused = 0;
  const rssStart = process.memoryUsage.rss();
  let rssMax = rssStart;
  const property = fc.property(arb, (input) => {
    const t0 = performance.now();
    let err: unknown;
    try {
      read(input);
      accepted++;
    } catch (e) {
      err = e;
      refused++;
    }
    const ms = performance.now() - t0;
    slowest = Math.max(slowest, ms);
    rssMax = Math.max(rssMax, process.memoryUsage.rss());
    if (err !== undefined) {
      if (!(err instanceof UserError)) throw new Error(`${name}: not a user error: ${err instanceof Error ? err.stack : String(err)}`);
      if (err.message.includes("\n") || !err.message.startsWith(source)) throw new Error(`${name}: message is not one line naming ${source}: ${err.message}`);
    }
    if (ms > caseMs) throw new Error(`${name}: one case took ${ms.toFixed(0)} ms`);
  });
  const seed = env("VIRNUC_FUZZ_SEED") ?? 20261130;
  const total = env("VIRNUC_FUZZ_RUNS") ?? opts.runs ?? 2000;
  let runs = 0;
  // the first cases always run (a slow machine still tests something), the rest within the time limit
  for (const [i, params] of [
    { seed, numRuns: Math.min(minRuns, total), endOnFailure: true },
    { seed: seed + 1, numRuns: Math.max(0, total - minRuns), endOnFailure: true, plugins: [fc.interruptAfterTimeLimit(env("VIRNUC_FUZZ_MS") ?? opts.ms ?? 3000)] },
  ].entries()) {
    if (params.numRuns === 0) continue;
    const details = fc.check(property, params);
    if (details.failed) {
      const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
      throw new Error(
        `${name}: ${cause} (seed ${details.seed}, part ${i + 1}, path ${details.counterexamplePath}; counterexample: ${fc.stringify(details.counterexample).slice(0, 2000)})`,
      );
    }
    runs += details.numRuns;
  }
  if (process.env.VIRNUC_FUZZ_VERBOSE) {
    console.error(`fuzz ${name}: ${runs} cases (${accepted} read, ${refused} refused), slowest ${slowest.toFixed(1)} ms, RSS +${((rssMax - rssStart) / 2 ** 20).toFixed(0)} MiB`);
  }
  expect(runs).toBeGreaterThanOrEqual(Math.min(minRuns, total));
  // both outcomes must occur, or the mutations never reach the interesting parts
  expect(refused).toBeGreaterThan(0);
  expect(accepted + refused).toBe(runs);
  expect(rssMax - rssStart).toBeLessThan(1024 * 2 ** 20);
}
