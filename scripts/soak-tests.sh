#!/usr/bin/env bash
# Run test files (default: the whole suite) N times in a row and count the green runs.
#
#   scripts/soak-tests.sh [-n N] [-k] [test files...]
#
# A run counts as failed when bun test exits non-zero, reports a failure, or its output shows a
# crashed Bun (a CLI subprocess's "panic(" or "Bun has crashed" lines, which the test helpers echo).
# Logs of failed runs are kept (their paths are printed); -k keeps every log. Exit status: 0 when
# every run was green.
set -uo pipefail
cd "$(dirname "$0")/.."

n=30
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n="$2"; shift 2 ;;
    -k) keep=1; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) break ;;
  esac
done

logs=$(mktemp -d "${TMPDIR:-/tmp}/virnuc-soak-XXXXXX")
green=0
red=0
crashed=0
start=$(date +%s)
for i in $(seq 1 "$n"); do
  log="$logs/run-$i.log"
  t0=$(date +%s)
  bun test "$@" >"$log" 2>&1
  status=$?
  t1=$(date +%s)
  fails=$(grep -Eo '^ *[0-9]+ fail' "$log" | tail -n 1 | grep -Eo '[0-9]+' || echo 0)
  passes=$(grep -Eo '^ *[0-9]+ pass' "$log" | tail -n 1 | grep -Eo '[0-9]+' || echo 0)
  crash=0
  if grep -Eq 'panic\(|Bun has crashed|Segmentation fault|abort\(\) called' "$log"; then crash=1; fi
  if [ "$status" -eq 0 ] && [ "$fails" -eq 0 ] && [ "$passes" -gt 0 ] && [ "$crash" -eq 0 ]; then
    green=$((green + 1))
    echo "run $i/$n: green ($passes pass, $((t1 - t0)) s)"
    [ "$keep" -eq 1 ] || rm -f "$log"
  else
    red=$((red + 1))
    [ "$crash" -eq 1 ] && crashed=$((crashed + 1))
    echo "run $i/$n: FAILED (exit $status, $passes pass, $fails fail, crash: $crash, $((t1 - t0)) s): $log"
    grep -E '^\(fail\)|panic\(|abort\(\) called|timed out' "$log" | head -n 10 | sed 's/^/    /'
  fi
done
echo "soak: $green of $n runs green, $red failed ($crashed with a crashed Bun), $(( $(date +%s) - start )) s; files: ${*:-whole suite}"
[ "$red" -eq 0 ] && [ "$keep" -eq 0 ] && rmdir "$logs" 2>/dev/null
[ "$red" -eq 0 ]
