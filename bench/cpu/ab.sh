#!/usr/bin/env bash
# A/B in one run: alternating windows of bench/run.sh on two binaries (A B, B A, A B, ...),
# each window a fresh server and database, with bench/cpu/wrk recording the CPU split.
# Usage: bench/cpu/ab.sh OUTDIR ROUNDS "SCENARIOS" BIN_A BIN_B ["SCENARIOS_B"]
#   With SCENARIOS_B, the B windows run those scenarios instead (two scenarios on one binary:
#   bench/cpu/ab.sh OUT 6 refresh BIN BIN refresh_retry).
# Environment: PASSES=1 DURATION=10s CONNECTIONS=64 BACKENDS=postgres ARGON2=0
#   ARGON2_BIN= (argon2_rate, for ARGON2=1), and bench/cpu/wrk's WRAP_PERF / WRAP_CALLGRIND.
# Holds /tmp/LK_BENCH_MEASURING while it runs, and waits while another session holds it.
# Per window: OUTDIR/<round>-<a|b>/cpu.tsv (awk -f bench/cpu/per_op.awk) and run.log.
set -uo pipefail
out=$1 rounds=$2 scen_a=$3 bin_a=$4 bin_b=$5 scen_b=${6:-$3}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
lock=/tmp/LK_BENCH_MEASURING
mkdir -p "$out"
while [ -e "$lock" ]; do echo "waiting: $(cat "$lock")" >&2; sleep 10; done
echo "bench/cpu/ab.sh (pid $$): $scen_a / $scen_b, since $(date -u +%H:%M:%S) UTC" >"$lock"
trap 'rm -f "$lock"' EXIT
for r in $(seq "$rounds"); do
  if [ $((r % 2)) = 1 ]; then order="a b"; else order="b a"; fi
  for v in $order; do
    if [ "$v" = a ]; then bin=$bin_a scen=$scen_a; else bin=$bin_b scen=$scen_b; fi
    d="$out/$r-$v"; mkdir -p "$d"
    PATH="$root/bench/cpu:$PATH" CPU_OUT="$d" SKIP_BUILD=1 BENCH_BIN="$bin" \
      BENCH_ARGON2_BIN="${ARGON2_BIN:-$root/target/release/examples/argon2_rate}" ARGON2="${ARGON2:-0}" \
      QUIET_WAIT=0 PASSES="${PASSES:-1}" DURATION="${DURATION:-10s}" CONNECTIONS="${CONNECTIONS:-64}" \
      BACKENDS="${BACKENDS:-postgres}" SCENARIOS="$scen" "$root/bench/run.sh" >"$d/run.log" 2>&1
    echo "round $r $v ($bin, $scen): $(grep -o 'raw outputs in .*' "$d/run.log")"
  done
done
