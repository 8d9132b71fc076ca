#!/usr/bin/env bash
# On the GPU machine: configure and build libvirnuc with the CUDA backend, plus the native CUDA
# check (vn_cuda_check), in build/native. VIRNUC_CUDA_ARCH overrides the target (default 90).
set -euo pipefail
cd "$(dirname "$0")/../.."
generator=()
[ -f build/native/CMakeCache.txt ] || { command -v ninja >/dev/null && generator=(-G Ninja); }
cmake -S cuda -B build/native "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DVIRNUC_CUDA=ON \
  -DVIRNUC_CUDA_ARCH="${VIRNUC_CUDA_ARCH:-90}" >/dev/null
cmake --build build/native --target virnuc vn_cuda_check --parallel
cat build/native/backends.txt
