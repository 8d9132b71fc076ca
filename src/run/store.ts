/**
 * The run directory's work state: finished parts (Arrow IPC files, each written atomically)
 * and their manifest entries. A part's manifest entry is its own `part-NNNNNN.json`, written
 * last and atomically, so several writer processes never contend for one file; the manifest
 * of a run is the set of these entries that validate (sizes and checksums).
 *
 *   DIR/.virnuc/state.json          what the run is (inputs, models, options): --resume checks it
 *   DIR/.virnuc/parts/part-NNNNNN.{predictions,windows,sequences,embeddings}.arrow
 *   DIR/.virnuc/parts/part-NNNNNN.json   manifest entry: counts, input hash, file checksums,
 *                                        and the entry's own checksum (a corrupt entry = redo)
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { onFile, removeStaleTemps, writeError, writeFileAtomic } from "../output/atomic.ts";
import { UserError } from "../util/errors.ts";
import type { PartFile, PartHead } from "./chain.ts";
import type { PartTelemetry } from "./process.ts";

export const STATE_DIR = ".virnuc";

export interface RunState {
  version: 1;
  command: "predict" | "embed";
  inputs: { path: string; bytes: number }[];
  chunkSize: number;
  windowReads: number;
  precision: string;
  /** --recheck-margin (absent: 0, off) */
  recheckMargin?: number;
  saveEmbeddings: boolean;
  embeddingsDtype: string;
  /** embeddings.arrow or embeddings.parquet (absent: arrow) */
  embeddingsFormat?: "arrow" | "parquet";
  /** sha256 of every model file, by role */
  models: Record<string, { path: string; sha256: string }[]>;
  shard?: { index: number; count: number };
}

export interface PartFileEntry {
  name: string;
  bytes: number;
  sha256: string;
}

export interface PartEntry extends PartHead {
  files: PartFileEntry[];
  telemetry?: PartTelemetry;
  /** sha256 of the entry's JSON without this field */
  checksum?: string;
}

/** The files a finished run leaves in DIR (removed first by --force). */
export const FINAL_OUTPUTS = [
  "prediction_results.txt",
  "prediction_results_highestscore.csv",
  "predictions.parquet",
  "windows.parquet",
  "sequences.parquet",
  "sequences.tsv",
  "frames.parquet",
  "embeddings.arrow",
  "embeddings.parquet",
  "run.json",
  "report.html",
] as const;

function entryChecksum(e: PartEntry): string {
  const { checksum: _omit, ...rest } = e;
  return sha256(new TextEncoder().encode(JSON.stringify(rest)));
}

export function partName(k: number): string {
  return `part-${String(k).padStart(6, "0")}`;
}

export function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export class PartStore {
  readonly stateDir: string;
  readonly partsDir: string;

  constructor(readonly dir: string) {
    this.stateDir = join(dir, STATE_DIR);
    this.partsDir = join(this.stateDir, "parts");
  }

  exists(): boolean {
    return existsSync(join(this.stateDir, "state.json"));
  }

  readState(): RunState | null {
    try {
      return JSON.parse(readFileSync(join(this.stateDir, "state.json"), "utf8")) as RunState;
    } catch {
      return null;
    }
  }

  /** Final outputs of an earlier run present in DIR. */
  finalOutputs(): string[] {
    const out: string[] = FINAL_OUTPUTS.filter((f) => existsSync(join(this.dir, f)));
    if (existsSync(join(this.stateDir, "complete.json"))) out.push(`${STATE_DIR}/complete.json`);
    return out;
  }

  /**
   * Starts a fresh run (wiping earlier parts) or checks that --resume continues the same run.
   * --force first removes the earlier run's final outputs, so that a failed run never leaves
   * them looking current.
   */
  open(state: RunState, mode: { resume: boolean; force: boolean }) {
    const old = this.readState();
    if (old && mode.resume) {
      const why = stateMismatch(old, state);
      if (why)
        throw new UserError(
          `--resume refused: ${why} since the run in ${this.dir} started; rerun without --resume (and with --force) to start over`,
        );
    } else if (!mode.force && ((old && this.listEntries().length > 0) || this.finalOutputs().length > 0)) {
      throw new UserError(`${this.dir} holds an earlier run: add --resume to continue it, or --force to start over`);
    }
    if (mode.force || !mode.resume) {
      for (const f of this.finalOutputs()) onFile("remove", join(this.dir, f), () => rmSync(join(this.dir, f), { force: true }));
      if (!mode.resume) onFile("remove", this.stateDir, () => rmSync(this.stateDir, { recursive: true, force: true }));
    }
    try {
      mkdirSync(this.partsDir, { recursive: true });
    } catch (err) {
      throw writeError(this.partsDir, err);
    }
    onFile("clean", this.partsDir, () => removeStaleTemps(this.partsDir));
    onFile("clean", this.dir, () => removeStaleTemps(this.dir));
    onFile("remove", join(this.stateDir, "complete.json"), () => rmSync(join(this.stateDir, "complete.json"), { force: true }));
    writeFileAtomic(join(this.stateDir, "state.json"), JSON.stringify(state, null, 2) + "\n");
  }

  /** Writes a part's files, then its manifest entry (last: the entry's presence means done). */
  writePart(head: PartHead, files: PartFile[], telemetry?: PartTelemetry): PartEntry {
    const base = partName(head.part);
    const out: PartFileEntry[] = [];
    for (const f of files) {
      const name = `${base}.${f.suffix}`;
      const path = join(this.partsDir, name);
      faultHook(path);
      writeFileAtomic(path, f.data);
      out.push({ name, bytes: f.data.byteLength, sha256: sha256(f.data) });
    }
    const full: PartEntry = { ...head, files: out, ...(telemetry ? { telemetry } : {}) };
    full.checksum = entryChecksum(full);
    const path = join(this.partsDir, `${base}.json`);
    faultHook(path);
    writeFileAtomic(path, JSON.stringify(full) + "\n");
    return full;
  }

  listEntries(): number[] {
    if (!existsSync(this.partsDir)) return [];
    const ks: number[] = [];
    for (const f of onFile("list", this.partsDir, () => readdirSync(this.partsDir))) {
      const m = /^part-(\d{6,})\.json$/.exec(f);
      if (m) ks.push(Number(m[1]));
    }
    return ks.sort((a, b) => a - b);
  }

  /** A part's entry if it and every file it lists are intact; null otherwise (then it is redone). */
  validPart(k: number, opts: { checksums: boolean } = { checksums: true }): PartEntry | null {
    const base = join(this.partsDir, partName(k));
    let entry: PartEntry;
    try {
      entry = JSON.parse(readFileSync(`${base}.json`, "utf8")) as PartEntry;
    } catch {
      return null;
    }
    if (typeof entry !== "object" || entry === null || entry.part !== k || !Array.isArray(entry.files)) return null;
    if (entry.checksum !== entryChecksum(entry)) return null;
    for (const f of entry.files) {
      const p = join(this.partsDir, f.name);
      try {
        if (statSync(p).size !== f.bytes) return null;
        if (opts.checksums && sha256(readFileSync(p)) !== f.sha256) return null;
      } catch {
        return null;
      }
    }
    return entry;
  }

  readPartFile(entry: PartEntry, suffix: string): Uint8Array | null {
    const f = entry.files.find((x) => x.name.endsWith(`.${suffix}`));
    if (!f) return null;
    const path = join(this.partsDir, f.name);
    const data = onFile("read", path, () => readFileSync(path));
    if (data.byteLength !== f.bytes || sha256(data) !== f.sha256)
      throw new UserError(`part file ${f.name} in ${this.partsDir} changed after it was written: rerun with --resume to redo it`);
    return data;
  }

  removePart(k: number) {
    const prefix = `${partName(k)}.`;
    for (const f of onFile("list", this.partsDir, () => readdirSync(this.partsDir)))
      if (f.startsWith(prefix)) onFile("remove", join(this.partsDir, f), () => rmSync(join(this.partsDir, f), { force: true }));
  }
}

/**
 * Fault injection for the tests only: VIRNUC_TEST_FAIL_WRITE=CODE:NAME makes the write of every
 * part file whose name starts with NAME fail as the file system would with errno CODE
 * (e.g. ENOSPC:part-000003: a disk that fills up at part 3).
 */
function faultHook(path: string): void {
  const spec = process.env.VIRNUC_TEST_FAIL_WRITE;
  if (!spec) return;
  const i = spec.indexOf(":");
  const code = spec.slice(0, i);
  if (!path.slice(path.lastIndexOf("/") + 1).startsWith(spec.slice(i + 1))) return;
  const err = Object.assign(new Error(`${code}: injected failure (VIRNUC_TEST_FAIL_WRITE), write`), { code });
  throw writeError(path, err);
}

function stateMismatch(a: RunState, b: RunState): string | null {
  if (a.command !== b.command) return `the command changed (${a.command} -> ${b.command})`;
  if (a.chunkSize !== b.chunkSize) return `--chunk-size changed (${a.chunkSize} -> ${b.chunkSize})`;
  if (a.windowReads !== b.windowReads) return `--window-reads changed (${a.windowReads} -> ${b.windowReads})`;
  if (a.precision !== b.precision) return `--precision changed (${a.precision} -> ${b.precision})`;
  if ((a.recheckMargin ?? 0) !== (b.recheckMargin ?? 0))
    return `--recheck-margin changed (${a.recheckMargin ?? 0} -> ${b.recheckMargin ?? 0})`;
  if (a.saveEmbeddings !== b.saveEmbeddings || a.embeddingsDtype !== b.embeddingsDtype)
    return "the embeddings options changed";
  const ai = a.inputs.map((x) => `${x.path}:${x.bytes}`).join(",");
  const bi = b.inputs.map((x) => `${x.path}:${x.bytes}`).join(",");
  if (ai !== bi) return "the input files changed";
  for (const role of new Set([...Object.keys(a.models), ...Object.keys(b.models)])) {
    const x = (a.models[role] ?? []).map((f) => f.sha256).join(",");
    const y = (b.models[role] ?? []).map((f) => f.sha256).join(",");
    if (x !== y) return `the ${role} model changed`;
  }
  const as = a.shard ? `${a.shard.index}/${a.shard.count}` : "";
  const bs = b.shard ? `${b.shard.index}/${b.shard.count}` : "";
  if (as !== bs) return `--shard changed`;
  return null;
}
