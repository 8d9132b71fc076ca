/**
 * run.json: what a run did (inputs, models and hashes, precision, devices, counts, timings,
 * throughput). Written pretty-printed with keys sorted at every level, so two runs diff cleanly,
 * and atomically, so a reader never sees half a file.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "./atomic.ts";

export const RUN_JSON = "run.json";

/** A JSON-ready copy: sorted keys; bigint, typed arrays, Map, Date and non-finite numbers made JSON. */
export function toStableJson(value: unknown): unknown {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value === "bigint") return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Date) return value.toISOString();
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(value as unknown as ArrayLike<number | bigint>, (x) => toStableJson(x));
  }
  if (Array.isArray(value)) return value.map((x) => (x === undefined || typeof x === "function" ? null : toStableJson(x)));
  if (value instanceof Map) return toStableJson(Object.fromEntries(value));
  if (value instanceof Set) return toStableJson([...value]);
  if (typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value as object).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v === undefined || typeof v === "function" || typeof v === "symbol") continue;
      out[k] = toStableJson(v);
    }
    return out;
  }
  return null; // undefined, functions, symbols at the top level
}

/** Write DIR/run.json; returns its path. */
export function writeRunJson(dir: string, obj: object): string {
  const path = join(dir, RUN_JSON);
  writeFileAtomic(path, JSON.stringify(toStableJson(obj), null, 2) + "\n");
  return path;
}

export function readRunJson(dir: string): unknown {
  return JSON.parse(readFileSync(join(dir, RUN_JSON), "utf8"));
}
