import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { checkLibrary, scanDisassembly } from "./check-isa.ts";

const LIB = join(import.meta.dir, "../build/libvirnuc.so");

describe("check-isa", () => {
  test("the built library keeps wide instructions inside their kernel units", () => {
    const r = checkLibrary(LIB);
    expect(r.violations).toEqual([]);
    expect(r.counts.other).toEqual({ vex: 0, evex: 0 });
    if (process.arch === "x64") {
      // The scan sees the kernels: without this a broken parser would pass everything.
      expect(r.counts.avx512.evex).toBeGreaterThan(100);
      expect(r.counts.avx2.vex).toBeGreaterThan(100);
      expect(r.counts.avx2.evex).toBe(0);
    }
  });

  test("flags VEX and EVEX outside their units, after legacy prefixes too", () => {
    const text = [
      "0000000000001000 <vn::cpu::layer_norm(float const*)>:",
      "    1000:\tc5 fc 58 c1          \tvaddps %ymm1,%ymm0,%ymm0",
      "    1004:\tf3 0f 58 c1          \taddss %xmm1,%xmm0",
      "0000000000002000 <vn::cpu::avx2::(anonymous namespace)::linear(float*)>:",
      "    2000:\tc4 e2 7d b8 c1       \tvfmadd231ps %ymm1,%ymm0,%ymm0",
      "    2005:\t67 62 f1 7c 48 10 00 \tvmovups (%eax),%zmm0",
      "0000000000003000 <vn::cpu::avx512::(anonymous namespace)::micro<1>(float*)>:",
      "    3000:\t62 f2 7d 48 b8 c1    \tvfmadd231ps %zmm1,%zmm0,%zmm0",
      "    3006:\tc5 f8 77             \tvzeroupper",
      "0000000000004000 <std::vector<float>::_M_default_append(unsigned long)>:",
      "    4000:\t62 f1 7c 48 11 07    \tvmovups %zmm0,(%rdi)",
      "    4006:\t48 89 c7             \tmov %rax,%rdi",
    ].join("\n");
    const r = scanDisassembly(text);
    expect(r.functions).toBe(4);
    expect(r.violations.map((v) => [v.fn.split("(")[0], v.encoding])).toEqual([
      ["vn::cpu::layer_norm", "vex"],
      ["vn::cpu::avx2::", "evex"],
      ["std::vector<float>::_M_default_append", "evex"],
    ]);
    expect(r.counts.avx512).toEqual({ vex: 1, evex: 1 });
    expect(r.counts.avx2).toEqual({ vex: 1, evex: 1 });
  });
});
