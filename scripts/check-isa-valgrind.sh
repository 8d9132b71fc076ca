#!/usr/bin/env bash
# Runs the CPU backend as a CPU without AVX-512 would: valgrind emulates an x86-64 CPU with AVX2
# but no AVX-512 (its CPUID hides it), and stops with SIGILL on any instruction it cannot run.
# Checks that build/libvirnuc.so (1) chooses the AVX2 path by itself and computes, (2) refuses
# VIRNUC_CPU_ISA=avx512 with one line, (3) runs the portable path, agreeing with AVX2 to 1e-6.
# Needs valgrind and a C++ compiler. Usage: bash scripts/check-isa-valgrind.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${CXX:-c++}" -O1 -std=c++17 -Icuda/include cuda/tests/abi_isa_probe.cpp -o "$tmp/probe" -Lbuild -lvirnuc -Wl,-rpath,"$PWD/build"
vg() { env "$@" valgrind -q --error-exitcode=99 "$tmp/probe" 2>&1; }

auto=$(vg -u VIRNUC_CPU_ISA) || { echo "$auto"; echo "check-isa-valgrind: FAILED: automatic choice did not run"; exit 1; }
echo "unset:    $(grep describe <<<"$auto")"
grep -q "AVX2+FMA" <<<"$auto" || { echo "check-isa-valgrind: FAILED: expected the AVX2 path without AVX-512"; exit 1; }

refused=$(vg VIRNUC_CPU_ISA=avx512) && { echo "$refused"; echo "check-isa-valgrind: FAILED: avx512 was not refused"; exit 1; }
echo "avx512:   $refused"
grep -q "VIRNUC_CPU_ISA=avx512: this CPU does not support avx512; it can use: avx2, portable" <<<"$refused" ||
  { echo "check-isa-valgrind: FAILED: unexpected refusal message"; exit 1; }

portable=$(vg VIRNUC_CPU_ISA=portable) || { echo "$portable"; echo "check-isa-valgrind: FAILED: portable did not run"; exit 1; }
echo "portable: $(grep describe <<<"$portable")"
paste <(grep probs <<<"$auto" | tr ' ' '\n' | tail -n +2) <(grep probs <<<"$portable" | tr ' ' '\n' | tail -n +2) |
  awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d; n++ } END { printf "avx2 vs portable: %d probabilities, max abs difference %.3g\n", n, m; exit !(n == 39 && m <= 1e-6) }' ||
  { echo "check-isa-valgrind: FAILED: paths disagree"; exit 1; }
echo "check-isa-valgrind: ok"
