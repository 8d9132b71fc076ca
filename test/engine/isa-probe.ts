/**
 * Run by cpu_isa.test.ts in a subprocess (the kernel path is chosen once per process, from
 * VIRNUC_CPU_ISA): embeds the golden fixtures' sequences on the CPU backend and prints JSON with
 * the engine description and the raw float32 outputs (base64). Errors: one line on stderr, exit 1.
 */
import { join } from "node:path";
import { Engine } from "../../src/engine/engine.ts";
import { EncoderRunner } from "../../src/engine/encode.ts";
import { loadEsm } from "../../src/models/esm.ts";
import { loadDnabert } from "../../src/models/dnabert.ts";
import { loadClassifier } from "../../src/models/classifier.ts";
import { readSafetensors } from "../../src/models/safetensors.ts";

const G = join(import.meta.dir, "../fixtures/golden");

function ragged(T: Map<string, { data: Uint8Array }>, ids: string, offs: string): Int32Array[] {
  const i32 = (n: string) => {
    const d = T.get(n)!.data;
    return new Int32Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
  };
  const a = i32(ids);
  const o = i32(offs);
  return Array.from({ length: o.length - 1 }, (_, i) => a.subarray(o[i], o[i + 1]));
}

const b64 = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString("base64");

try {
  const T = readSafetensors(join(G, "reference.safetensors")).tensors;
  const engine = Engine.create("cpu", { threads: 2 });
  const embed = (m: ReturnType<typeof loadEsm> | ReturnType<typeof loadDnabert>, seqs: Int32Array[]) => {
    const h = engine.loadEncoder(m.config, m.tensors, "fp32");
    const r = new EncoderRunner(engine, h, 4096, "probe");
    const out = r.submit(seqs, (i) => String(i)).finish();
    r.close();
    h.close();
    return out;
  };
  const esm = embed(loadEsm(join(G, "esm")), ragged(T, "esm_ids", "esm_offsets"));
  const dnabert = embed(loadDnabert(join(G, "dnabert")), ragged(T, "dnabert_ids", "dnabert_offsets"));
  const cls = loadClassifier(join(G, "classifier.pth"));
  const h = engine.loadClassifier(cls.config, cls.tensors);
  const fd = T.get("features")!.data;
  const feats = new Float32Array(fd.buffer.slice(fd.byteOffset, fd.byteOffset + fd.byteLength));
  const n = feats.length / cls.config.inFeatures;
  const fb = engine.alloc(feats.byteLength);
  fb.f32().set(feats);
  const out = engine.alloc(n * h.nClasses * 4);
  h.submitClassify(fb, n, out).wait();
  const probs = out.f32().slice(0, n * h.nClasses);
  console.log(JSON.stringify({ describe: engine.describe(), esm: b64(esm), dnabert: b64(dnabert), probs: b64(probs) }));
  engine.close();
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}
