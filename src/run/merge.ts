/**
 * `virnuc merge DIR... -o OUT`: assembles the outputs of `--shard i/N` runs made on different
 * machines. Every part of the input must be present exactly once across the shards. The shard
 * directories are only read (they may be read-only); the output directory is locked like a run's.
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { UserError, oneLine } from "../util/errors.ts";
import { onFile, writeError } from "../output/atomic.ts";
import { PartStore, STATE_DIR, FINAL_OUTPUTS, type RunState } from "./store.ts";
import { assembleOutputs, type CompletionInfo } from "./assemble.ts";
import { DirLock } from "./lock.ts";
import { StopControl, trapSignals } from "./stop.ts";
import { collectProvenance } from "../output/provenance.ts";

export async function mergeCommand(dirs: string[], opts: { output?: string; report?: boolean }): Promise<void> {
  if (!opts.output) throw new UserError("merge: -o DIR is required");
  if (!dirs?.length) throw new UserError("merge: give the shard directories to merge");
  const t0 = performance.now();
  const stores: { store: PartStore; state: RunState; done: CompletionInfo }[] = [];
  for (const d of dirs) {
    const store = new PartStore(resolve(d));
    const state = store.readState();
    if (!state) throw new UserError(`${d} is not a virnuc run directory (no ${STATE_DIR}/state.json)`);
    const donePath = join(store.stateDir, "complete.json");
    if (!existsSync(donePath)) throw new UserError(`${d}: the run has not finished (no ${STATE_DIR}/complete.json): finish it with --resume first`);
    let done: CompletionInfo;
    try {
      done = JSON.parse(readFileSync(donePath, "utf8")) as CompletionInfo;
    } catch (err) {
      throw new UserError(`${d}: cannot read ${STATE_DIR}/complete.json (${oneLine(err)}): finish that shard again with --resume`);
    }
    stores.push({ store, state, done });
  }
  const ref = stores[0];
  for (const s of stores.slice(1)) {
    const a = { ...ref.state, shard: undefined };
    const b = { ...s.state, shard: undefined };
    if (JSON.stringify(a) !== JSON.stringify(b))
      throw new UserError(`${s.store.dir} was made with other inputs, models or options than ${ref.store.dir}: cannot merge`);
    if (s.done.totalParts !== ref.done.totalParts)
      throw new UserError(`${s.store.dir} saw ${s.done.totalParts} parts but ${ref.store.dir} saw ${ref.done.totalParts}: the inputs differ`);
  }
  const total = ref.done.totalParts;
  const owner = new Map<number, number>();
  for (let i = 0; i < stores.length; i++) {
    for (const k of stores[i].store.listEntries()) {
      if (!stores[i].store.validPart(k)) throw new UserError(`${stores[i].store.dir}: part ${k} is corrupt: rerun that shard with --resume`);
      if (k >= total) throw new UserError(`${stores[i].store.dir}: part ${k} is beyond the input's ${total} parts`);
      const prev = owner.get(k);
      if (prev !== undefined)
        throw new UserError(`part ${k} is in both ${stores[prev].store.dir} and ${stores[i].store.dir}: shards overlap`);
      owner.set(k, i);
    }
  }
  const missing = [...Array(total).keys()].filter((k) => !owner.has(k));
  if (missing.length)
    throw new UserError(
      `${missing.length} of ${total} parts are missing (first: ${missing.slice(0, 5).join(", ")}): a shard is absent or unfinished`,
    );
  const out = resolve(opts.output);
  const real = (d: string) => {
    try {
      return realpathSync(d);
    } catch {
      return resolve(d);
    }
  };
  for (const s of stores)
    if (real(s.store.dir) === real(out)) throw new UserError(`merge: -o ${opts.output} is one of the shard directories: merge into a new directory`, 2);
  try {
    mkdirSync(out, { recursive: true });
  } catch (err) {
    throw writeError(out, err);
  }
  const control = new StopControl();
  const untrap = trapSignals(control);
  const lock = DirLock.acquire(out, "merge", (m) => console.error(`virnuc: warning: ${m}`));
  try {
    for (const f of [...FINAL_OUTPUTS, `${STATE_DIR}/complete.json`]) onFile("remove", join(out, f), () => rmSync(join(out, f), { force: true }));
    const sources = stores.map((s, i) => ({
      store: s.store,
      parts: [...owner.entries()].filter(([, o]) => o === i).map(([k]) => k),
    }));
    await assembleOutputs(out, sources, {
      classify: ref.state.command === "predict",
      keepEmbeddings: ref.state.saveEmbeddings,
      embeddingsFormat: ref.state.embeddingsFormat,
      totalParts: total,
      stop: control,
      runInfo: () => ({
        command: "merge",
        shards: stores.map((s) => ({ dir: s.store.dir, shard: s.state.shard, run: s.done })),
        models: ref.state.models,
        chunkSize: ref.state.chunkSize,
        precision: ref.state.precision,
        ...(ref.state.recheckMargin ? { recheckMargin: ref.state.recheckMargin } : {}),
        wallSeconds: (performance.now() - t0) / 1000,
        // of the merge itself (each shard's run.json has its own, with its libvirnuc and machine)
        ...collectProvenance({ inputs: ref.state.inputs }),
      }),
    });
    // the page a direct `virnuc predict` leaves (a failure to draw it is a warning: the outputs stand)
    if (ref.state.command === "predict" && opts.report !== false)
      await (await import("../report/report.ts")).writeReport(out, { onError: (m) => console.error(`virnuc: warning: ${m}`) });
  } catch (err) {
    if (control.stopped) for (const f of [...FINAL_OUTPUTS, `${STATE_DIR}/complete.json`]) rmSync(join(out, f), { force: true });
    throw err;
  } finally {
    untrap();
    lock.release();
  }
}
