/**
 * Output-stage throughput: `bun src/output/bench.ts [frames]` (default 1,000,000).
 * Builds prediction batches for reads of one 300 bp window with two kept frames, then times the
 * Parquet, VirNucPro text and embeddings writers on them. Prints one JSON object.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CompatWriter } from "./compat.ts";
import { writeIpcFile } from "./arrowfile.ts";
import { writeParquet } from "./parquet.ts";
import { frameCalls } from "../classify/calls.ts";
import { embeddingsBatch, encodeUtf8, predictionsBatch, predictionsSchema } from "./schema.ts";
import { lcg } from "./testdata.ts";

const frames = Number(process.argv[2] ?? 1_000_000);
const PART = 40_000; // frames per part, as the pipeline's parts would hold
const dir = mkdtempSync(join(tmpdir(), "virnuc-bench-"));
const rnd = lcg(1);
const secs = (t0: number) => Number(((performance.now() - t0) / 1000).toFixed(3));

try {
  // Inputs as the pipeline holds them per part: ids, window index per frame, typed score arrays.
  const parts: { frameIds: string[]; windowIds: string[]; recordIds: string[]; others: Float32Array; virus: Float32Array; calls: Uint8Array }[] = [];
  for (let s = 0; s < frames; s += PART) {
    const n = Math.min(PART, frames - s);
    const recordIds = Array.from({ length: Math.ceil(n / 2) }, (_, i) => `SRR6123456.${(s >> 1) + i}`);
    const windowIds = recordIds.map((r) => `${r}_chunk_1`);
    const frameIds = Array.from({ length: n }, (_, i) => windowIds[i >> 1] + (i & 1 ? "R2" : "F1"));
    const virus = new Float32Array(n).map(() => rnd());
    const others = virus.map((v) => 1 - v);
    const calls = frameCalls(Float32Array.from(Array.from(virus).flatMap((v, i) => [others[i], v]))).isVirus;
    parts.push({ frameIds, windowIds, recordIds, others, virus, calls });
  }

  let t0 = performance.now();
  const batches = parts.map((p) => {
    const n = p.frameIds.length;
    const win = Int32Array.from({ length: n }, (_, i) => i >> 1);
    return predictionsBatch({
      frameId: p.frameIds,
      windowId: { values: encodeUtf8(p.windowIds), index: win },
      sequenceId: { values: encodeUtf8(p.recordIds), index: win },
      windowIndex: new Int32Array(n).fill(1),
      windowStart: new Float64Array(n),
      windowEnd: new Float64Array(n).fill(300),
      frame: Uint8Array.from({ length: n }, (_, i) => (i & 1 ? 4 : 0)),
      proteinLength: new Int32Array(n).fill(99),
      scoreOthers: p.others,
      scoreVirus: p.virus,
      isVirus: p.calls,
    });
  });
  const buildSeconds = secs(t0);

  t0 = performance.now();
  const pq = await writeParquet(join(dir, "predictions.parquet"), batches, predictionsSchema);
  const parquetSeconds = secs(t0);

  t0 = performance.now();
  const compat = new CompatWriter(dir);
  for (const p of parts) compat.addFrameColumns(p.frameIds, p.others, p.virus, p.calls);
  await compat.close();
  const compatSeconds = secs(t0);

  const embFrames = Math.min(frames, 20_000);
  const dn = new Float32Array(embFrames * 768).map(() => rnd());
  const es = new Float32Array(embFrames * 2560).map(() => rnd());
  t0 = performance.now();
  const emb = await writeIpcFile(
    join(dir, "embeddings.arrow"),
    (function* () {
      for (let s = 0; s < embFrames; s += 2000) {
        const e = Math.min(embFrames, s + 2000);
        yield embeddingsBatch({
          frameId: Array.from({ length: e - s }, (_, i) => `f${s + i}`),
          dnabert: dn.subarray(s * 768, e * 768),
          esm: es.subarray(s * 2560, e * 2560),
        });
      }
    })(),
  );
  const embSeconds = secs(t0);

  console.log(
    JSON.stringify(
      {
        frames,
        buildSeconds,
        parquetSeconds,
        parquetMB: +(pq.bytes / 1e6).toFixed(1),
        compatSeconds,
        embeddingsFrames: embFrames,
        embeddingsSeconds: embSeconds,
        embeddingsMBps: +(emb.bytes / 1e6 / embSeconds).toFixed(0),
        peakRssMB: Math.round(process.memoryUsage().rss / 1e6),
      },
      null,
      2,
    ),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
