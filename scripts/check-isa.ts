/**
 * Checks that libvirnuc runs on any x86-64 CPU: instructions beyond the baseline architecture
 * may only sit in the CPU kernel unit built for them (cuda/src/cpu/isa_*.cpp), which the library
 * enters only after checking the CPU (cuda/src/cpu/isa.cpp).
 *   - EVEX-encoded instructions (AVX-512) only in functions of vn::cpu::avx512
 *   - VEX-encoded instructions (AVX, AVX2, FMA) only in vn::cpu::avx512 or vn::cpu::avx2
 * Reads `objdump -d` with the raw bytes; an instruction is VEX when its first byte after legacy
 * prefixes is C4/C5, EVEX when it is 62 (in 64-bit mode those bytes have no other meaning).
 *
 *   bun scripts/check-isa.ts [build/libvirnuc.so]
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";

export type Encoding = "vex" | "evex";

export interface IsaViolation {
  fn: string;
  encoding: Encoding;
  instruction: string;
}

export interface IsaReport {
  violations: IsaViolation[];
  /** instructions counted per unit and encoding (shows that the scan saw the kernels at all) */
  counts: Record<"avx512" | "avx2" | "other", Record<Encoding, number>>;
  functions: number;
}

const LEGACY_PREFIXES = new Set(["66", "67", "f2", "f3", "f0", "2e", "36", "3e", "26", "64", "65"]);

function unitOf(fn: string): "avx512" | "avx2" | "other" {
  if (fn.includes("vn::cpu::avx512::")) return "avx512";
  if (fn.includes("vn::cpu::avx2::")) return "avx2";
  return "other";
}

/** Scans `objdump -d -C --insn-width=16` output. */
export function scanDisassembly(text: string): IsaReport {
  const report: IsaReport = {
    violations: [],
    counts: { avx512: { vex: 0, evex: 0 }, avx2: { vex: 0, evex: 0 }, other: { vex: 0, evex: 0 } },
    functions: 0,
  };
  let fn = "";
  let unit: "avx512" | "avx2" | "other" = "other";
  for (const line of text.split("\n")) {
    const head = /^[0-9a-f]+ <(.*)>:$/.exec(line);
    if (head) {
      fn = head[1];
      unit = unitOf(fn);
      report.functions++;
      continue;
    }
    // "  278ca:\t62 d1 7c 48 10 10    \tvmovups (%r8),%zmm2"
    const insn = /^\s*[0-9a-f]+:\t((?:[0-9a-f]{2} )+)\s*\t?(.*)$/.exec(line);
    if (!insn) continue;
    const bytes = insn[1].trim().split(" ");
    let i = 0;
    while (i < bytes.length && LEGACY_PREFIXES.has(bytes[i])) i++;
    const b = bytes[i];
    const encoding: Encoding | undefined = b === "62" ? "evex" : b === "c4" || b === "c5" ? "vex" : undefined;
    if (!encoding) continue;
    report.counts[unit][encoding]++;
    const allowed = unit === "avx512" || (unit === "avx2" && encoding === "vex");
    if (!allowed) report.violations.push({ fn, encoding, instruction: insn[2].trim() });
  }
  return report;
}

export function checkLibrary(path: string): IsaReport {
  if (!existsSync(path)) throw new Error(`${path} does not exist: build it first (bun run build:native)`);
  const objdump = Bun.which("objdump");
  if (!objdump) throw new Error("objdump not found: install binutils");
  const p = Bun.spawnSync([objdump, "-d", "-C", "--insn-width=16", path], { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`objdump failed on ${path}: ${p.stderr.toString().trim()}`);
  return scanDisassembly(p.stdout.toString());
}

if (import.meta.main) {
  const lib = resolve(process.argv[2] ?? resolve(import.meta.dir, "../build/libvirnuc.so"));
  let r: IsaReport;
  try {
    r = checkLibrary(lib);
  } catch (err) {
    console.error(`check-isa: ${(err as Error).message}`);
    process.exit(2);
  }
  const c = r.counts;
  console.log(
    `check-isa: ${lib}: ${r.functions} functions; AVX-512 unit ${c.avx512.evex} EVEX + ${c.avx512.vex} VEX, ` +
      `AVX2 unit ${c.avx2.vex} VEX, elsewhere ${c.other.evex} EVEX + ${c.other.vex} VEX`,
  );
  if (r.violations.length > 0) {
    const byFn = new Map<string, IsaViolation[]>();
    for (const v of r.violations) byFn.set(v.fn, [...(byFn.get(v.fn) ?? []), v]);
    for (const [fn, vs] of byFn)
      console.error(`check-isa: ${vs.length} ${vs[0].encoding.toUpperCase()} instruction(s) outside their unit in ${fn} (first: ${vs[0].instruction})`);
    console.error("check-isa: FAILED: this library could die with SIGILL on an older CPU");
    process.exit(1);
  }
  console.log("check-isa: ok");
}
