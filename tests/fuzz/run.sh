#!/usr/bin/env bash
# Runs one libFuzzer target for a fixed number of executions, starting from
# its committed seed corpus (which it never modifies: new inputs go to a
# temporary folder). Used by CTest and scripts/fuzz.
# Usage: run.sh BINARY SEED_DIR RUNS|--seconds N [ARTIFACT_DIR]
set -euo pipefail
bin="$1" seeds="$2" budget="$3"
artifacts="${4:-$(pwd)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ "$budget" = "--seconds" ]; then limit=(-max_total_time="$4"); artifacts="${5:-$(pwd)}"; else limit=(-runs="$budget"); fi
mkdir -p "$artifacts"
log="$work/log"
if "$bin" "${limit[@]}" -max_len=8192 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
     -artifact_prefix="$artifacts/" "$work" "$seeds" >"$log" 2>&1; then
  name="$(basename "$bin")"
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1)"
  speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
  echo "$name: $runs executions, $cov edges, $speed exec/s"
else
  cat "$log"
  echo "$(basename "$bin"): FAILED (crash input saved under $artifacts/)"
  exit 1
fi
