/**
 * A worker subprocess (`virnuc __worker`, started by workers.ts): loads the models on its
 * device, computes the parts the parent sends, writes each part, reports it done.
 */
import { computeLoop, type PartInput } from "./loop.ts";
import { loadModels } from "./models.ts";
import { PartStore } from "./store.ts";
import { partEntryOf, partFiles } from "./tables.ts";
import type { FromChild, ToChild, WorkerInit } from "./workers.ts";
import { oneLine } from "../util/errors.ts";
import { existsSync, writeFileSync } from "node:fs";

export async function workerMain(): Promise<void> {
  const send = (m: FromChild) => process.send!(m);
  const queue: PartInput[] = [];
  let ended = false;
  let wake: (() => void) | null = null;
  let initMsg: WorkerInit | null = null;
  let gotInit: () => void = () => {};
  const initP = new Promise<void>((r) => (gotInit = r));
  process.on("message", (m: ToChild) => {
    if (m.type === "init") {
      initMsg = m.init;
      gotInit();
    } else if (m.type === "part") {
      crashHook(m.index);
      queue.push({
        index: m.index,
        records: m.records.map((r) => ({ ...r, seq: new Uint8Array(Buffer.from(r.seq, "latin1")) })),
      });
    } else if (m.type === "end") ended = true;
    wake?.();
  });
  // The parent is gone (killed): stop, leaving finished parts for --resume.
  process.on("disconnect", () => process.exit(3));
  await initP;
  const init = initMsg!;
  try {
    const models = loadModels(
      { esm: init.resolved.esm, dnabert: init.resolved.dnabert, classifier: init.resolved.classifier, tokenizer: init.resolved.tokenizer, files: { esm: [], dnabert: [], classifier: [] } },
      { backend: init.device, device: 0 },
      init.precision,
      { threads: init.threads },
    );
    send({ type: "ready", description: models.description });
    const store = new PartStore(init.dir);
    const parts: AsyncIterable<PartInput> = {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          if (queue.length) {
            yield queue.shift()!;
            continue;
          }
          if (ended) return;
          await new Promise<void>((r) => (wake = r));
          wake = null;
        }
      },
    };
    const budgets = {
      esm: init.tokenBudget ?? models.esm.suggestTokenBudget(),
      dnabert: init.tokenBudget ?? models.dnabert.suggestTokenBudget(),
    };
    await computeLoop(parts, models, { chunkSize: init.chunkSize, classify: init.classify, keepEmbeddings: init.keepEmbeddings, budgets }, (r, t) => {
      const entry = store.writePart({ ...partEntryOf(r), telemetry: t }, partFiles(r, init));
      send({ type: "done", entry, telemetry: t });
    });
    models.close();
    process.exit(0);
  } catch (err) {
    send({ type: "error", message: oneLine(err) });
    // Give the message time to leave before exiting.
    await Bun.sleep(50);
    process.exit(2);
  }
}

/**
 * Test hook for the restart path: VIRNUC_TEST_CRASH_ONCE=FILE:K kills this worker (SIGKILL)
 * when it is handed part K, once (FILE marks that it happened).
 */
function crashHook(part: number) {
  const spec = process.env.VIRNUC_TEST_CRASH_ONCE;
  if (!spec) return;
  const i = spec.lastIndexOf(":");
  const marker = spec.slice(0, i);
  if (Number(spec.slice(i + 1)) !== part || existsSync(marker)) return;
  writeFileSync(marker, "crashed\n");
  process.kill(process.pid, "SIGKILL");
}
