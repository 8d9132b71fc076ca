// Model load on the CPU backend: wall and CPU time and page faults of Engine.loadEncoder and the
// process's memory (peak RSS, and peak anonymous memory sampled every 5 ms from outside), for one or more libvirnuc
// builds, runs alternated between them; plus a checksum of three embeddings, the same for builds
// that load the same values.
//   bun bench/cpu-load.ts MODEL_DIR RUNS LIB[#ISA] [LIB[#ISA] ...]    (an ESM-2 checkpoint directory)
// Each run is a fresh process (VIRNUC_LIB=LIB [VIRNUC_CPU_ISA=ISA] bun bench/cpu-load.ts --child MODEL_DIR).
import { readFileSync } from "node:fs";
import { Engine } from "../src/engine/engine.ts";
import { loadEsm } from "../src/models/esm.ts";

function status(pid: number | "self"): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, "utf8").split("\n")) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]] = Number(m[2]) * 1024;
  }
  return out;
}

function child(dir: string): void {
  const m = loadEsm(dir);
  const e = Engine.create("cpu", { threads: 2 });
  const c0 = process.cpuUsage();
  const f0 = process.resourceUsage().minorPageFault;
  const t0 = performance.now();
  const h = e.loadEncoder(m.config, m.tensors, "fp32");
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const faults = process.resourceUsage().minorPageFault - f0;
  const st = status("self");
  // <cls> + residues + <eos>: three proteins, one batch.
  const seqs = [30, 7, 55].map((n, s) => [0, ...Array.from({ length: n }, (_, i) => 4 + ((i * 7 + s * 3) % 20)), 2]);
  const total = seqs.reduce((a, q) => a + q.length, 0);
  const tokens = e.alloc(total * 4);
  const cu = e.alloc((seqs.length + 1) * 4);
  const out = e.alloc(seqs.length * h.outputDim * 4);
  let at = 0;
  seqs.forEach((q, i) => {
    cu.i32()[i] = at;
    tokens.i32().set(q, at);
    at += q.length;
  });
  cu.i32()[seqs.length] = at;
  h.submitEmbed(tokens, cu, seqs.length, out).wait();
  let sum = 0;
  for (const v of out.f32().subarray(0, seqs.length * h.outputDim)) sum += v;
  const engine = e.describe();
  e.close();
  process.stdout.write(
    JSON.stringify({
      wall,
      user: cpu.user / 1e6,
      sys: cpu.system / 1e6,
      faults,
      hwm: st.VmHWM,
      anonAfter: st.RssAnon,
      fileAfter: st.RssFile,
      checksum: sum,
      engine,
    }),
  );
}

type Result = Record<string, number> & { engine: string };

async function run(dir: string, spec: string): Promise<Result> {
  const [lib, isa] = spec.split("#");
  const p = Bun.spawn([process.execPath, import.meta.path, "--child", dir], {
    env: { ...process.env, VIRNUC_LIB: lib, ...(isa ? { VIRNUC_CPU_ISA: isa } : {}) },
    stdout: "pipe",
    stderr: "inherit",
  });
  let peakAnon = 0;
  const timer = setInterval(() => {
    try {
      peakAnon = Math.max(peakAnon, status(p.pid).RssAnon ?? 0);
    } catch {
      // exited
    }
  }, 5);
  const text = await new Response(p.stdout).text();
  await p.exited;
  clearInterval(timer);
  if (p.exitCode !== 0) throw new Error(`run with ${lib} failed (exit ${p.exitCode})`);
  return { ...JSON.parse(text), peakAnon };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const gib = (b: number) => (b / 2 ** 30).toFixed(2);

if (process.argv[2] === "--child") {
  child(process.argv[3]);
} else {
  const [dir, runsArg, ...libs] = process.argv.slice(2);
  const runs = Number(runsArg);
  if (!dir || !Number.isInteger(runs) || runs < 1 || libs.length === 0) {
    process.stderr.write("usage: bun bench/cpu-load.ts MODEL_DIR RUNS LIB[#ISA] [LIB[#ISA] ...]\n");
    process.exit(2);
  }
  const results: Record<string, Result[]> = {};
  for (let r = 0; r < runs; r++)
    for (const lib of libs) {
      const res = await run(dir, lib);
      (results[lib] ??= []).push(res);
      const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
      process.stderr.write(
        `${lib} run ${r + 1}: load ${res.wall.toFixed(2)} s (user ${res.user.toFixed(2)}, sys ${res.sys.toFixed(2)}), ` +
          `${res.faults} page faults, peak RSS ${gib(res.hwm)} GiB, peak anon ${gib(res.peakAnon)} GiB, checksum ${res.checksum}; ${res.engine}; loadavg ${load}\n`,
      );
    }
  for (const lib of libs) {
    const rs = results[lib];
    const col = (k: string) => rs.map((x) => x[k]);
    const f = (k: string) => `${median(col(k)).toFixed(2)} (${Math.min(...col(k)).toFixed(2)}-${Math.max(...col(k)).toFixed(2)})`;
    const g = (k: string) => `${gib(median(col(k)))} (${gib(Math.min(...col(k)))}-${gib(Math.max(...col(k)))})`;
    console.log(
      `${lib}: wall s ${f("wall")}, user s ${f("user")}, sys s ${f("sys")}, ` +
        `page faults ${median(col("faults"))}, peak RSS GiB ${g("hwm")}, peak anon GiB ${g("peakAnon")}, checksums ${[...new Set(col("checksum"))].join(", ")}`,
    );
  }
}
