#!/usr/bin/env bash
# Where model loading time goes on the GPU machine: a tiny predict with random ESM-2 3B and
# DNABERT-S, twice (the second run has the file hashes cached); prints run.json's modelLoad.
#   carry: [".device/bun.xz", ".device/nm.tar.xz", ".device/tokenizer.json"]
set -uo pipefail
T=$(mktemp -d); xz -dc .device/bun.xz > "$T/bun" && chmod +x "$T/bun" && export PATH="$T:$PATH"
[ -d node_modules/apache-arrow ] || tar -xJf .device/nm.tar.xz
bun scripts/build-native.ts 2>&1 | tail -1
W=/tmp/virnuc-bench; mkdir -p $W
bun -e "import {ensureRandomModels} from './bench/engine.ts'; await ensureRandomModels('$W', '$PWD/.device/tokenizer.json')"
bun -e "import {writeRandomModel} from './src/models/random.ts'; writeRandomModel('classifier', 1, '$W/cls')"
printf '>r1\nATGGCTAAAGGTGAAGAACTGTTTACCGGTGTTGTTCCGATCCTGGTTGAACTGGATGGTGATGTTAACGGTCATAAATTTAGCGTTAGCGGT\n' > $W/in.fa
for i in 1 2; do
  bun src/cli.ts predict $W/in.fa -o $W/o$i --force --chunk-size 300 --esm $W/esm2_t36_3B_UR50D --dnabert $W/dnabert-s --classifier $W/cls/model.pth --no-progress
  python3 -c "import json;r=json.load(open('$W/o$i/run.json'));print('run', $i, 'wall', round(r['wallSeconds'],1), 'load', round(r['modelLoadSeconds'],1), {k: round(v,1) for k,v in r['modelLoad'].items()})"
done
