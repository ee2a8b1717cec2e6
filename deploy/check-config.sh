#!/usr/bin/env bash
# Checks a Trainyard config file against the real binaries before a rollout:
# starts every service with it (plus `--set` overrides that move endpoints to
# loopback and data to a temporary folder, so it runs anywhere without
# touching the real cluster), waits for each to be serving, asks the gateway
# and `ty` a question through them, then stops them all with SIGTERM and
# checks they exit cleanly. A key with the wrong type, a bad value or a rate
# card the billing service refuses makes it fail, naming the service and
# showing its log.
#
# Usage: deploy/check-config.sh [--bin DIR] [--rates FILE] [CONFIG]
#   CONFIG   default: deploy/trainyard.example.toml
#   --bin    folder holding trainyard-* and ty (default: build/bin, else $PATH)
#   --rates  rate card (default: the config's billing.rates when readable,
#            else services/billing/rates.example.toml)
# Needs: bash, curl. Exit status 0 when every service started and stopped.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
config="$root/deploy/trainyard.example.toml"
bin=""
rates=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --rates) rates="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) config="$1"; shift ;;
  esac
done
config="$(cd "$(dirname "$config")" && pwd)/$(basename "$config")"
if [ -z "$bin" ] && [ -x "$root/build/bin/trainyard-bus" ]; then bin="$root/build/bin"; fi
exe() { if [ -n "$bin" ]; then echo "$bin/$1"; else command -v "$1"; fi; }
for b in trainyard-bus trainyard-scheduler trainyard-resource-broker trainyard-agent \
         trainyard-metrics-aggregator trainyard-billing trainyard-gateway ty; do
  if [ ! -x "$(exe "$b" || true)" ]; then echo "check-config: $b not found (use --bin DIR)" >&2; exit 2; fi
done
if [ -z "$rates" ]; then
  rates="$(sed -n 's/^rates *= *"\(.*\)".*/\1/p' "$config" | head -1)"
  if [ ! -r "$rates" ]; then rates="$root/services/billing/rates.example.toml"; fi
fi

tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "check-config: FAILED: $1" >&2
  if [ -n "${2:-}" ] && [ -f "$tmp/$2.log" ]; then
    echo "--- $2 log ---" >&2
    tail -n 20 "$tmp/$2.log" >&2
  fi
  exit 1
}

# Waits up to 20 s for FILE to appear while PID lives.
wait_file() {
  local file="$1" pid="$2" name="$3"
  for _ in $(seq 200); do
    [ -s "$file" ] && return 0
    kill -0 "$pid" 2>/dev/null || fail "$name exited at start" "$name"
    sleep 0.1
  done
  fail "$name did not become ready in 20 s" "$name"
}

# "endpoint" of a ready file (JSON written by the service).
endpoint_of() { sed -n 's/.*"endpoint":"\([^"]*\)".*/\1/p' "$1"; }

start() {  # NAME BINARY ARGS...
  local name="$1" b="$2"
  shift 2
  "$(exe "$b")" --config "$config" "$@" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  eval "pid_${name//-/_}=$!"
}

echo "check-config: $config"
start bus trainyard-bus --frontend 'tcp://127.0.0.1:*' --backend 'tcp://127.0.0.1:*' --ready-file "$tmp/bus.ready"
wait_file "$tmp/bus.ready" "$pid_bus" bus
front="$(sed -n 's/.*"frontend":"\([^"]*\)".*/\1/p' "$tmp/bus.ready")"
back="$(sed -n 's/.*"backend":"\([^"]*\)".*/\1/p' "$tmp/bus.ready")"
common=(--set "bus.frontend=$front" --set "bus.backend=$back")

start broker trainyard-resource-broker "${common[@]}" --set 'broker.endpoint=tcp://127.0.0.1:*' \
  --set "broker.data=$tmp/broker" --ready-file "$tmp/broker.ready"
wait_file "$tmp/broker.ready" "$pid_broker" broker
broker="$(endpoint_of "$tmp/broker.ready")"
common+=(--set "broker.endpoint=$broker")

start scheduler trainyard-scheduler "${common[@]}" --set 'scheduler.endpoint=tcp://127.0.0.1:*' \
  --set "scheduler.data=$tmp/scheduler" --ready-file "$tmp/scheduler.ready"
start metrics trainyard-metrics-aggregator "${common[@]}" --set 'metrics.endpoint=tcp://127.0.0.1:*' \
  --set "metrics.data=$tmp/metrics" --ready-file "$tmp/metrics.ready"
start billing trainyard-billing "${common[@]}" --set 'billing.endpoint=tcp://127.0.0.1:*' \
  --set "billing.data=$tmp/billing" --set "billing.rates=$rates" --ready-file "$tmp/billing.ready"
start agent trainyard-agent "${common[@]}" --set 'agent.endpoint=tcp://127.0.0.1:*' \
  --set "agent.data=$tmp/agent" --set "agent.runs_dir=$tmp/agent/runs" --set agent.node=config-check \
  --set agent.cgroup_root=off --ready-file "$tmp/agent.ready"
wait_file "$tmp/scheduler.ready" "$pid_scheduler" scheduler
wait_file "$tmp/metrics.ready" "$pid_metrics" metrics
wait_file "$tmp/billing.ready" "$pid_billing" billing
wait_file "$tmp/agent.ready" "$pid_agent" agent
scheduler="$(endpoint_of "$tmp/scheduler.ready")"
metrics="$(endpoint_of "$tmp/metrics.ready")"
billing="$(endpoint_of "$tmp/billing.ready")"

start gateway trainyard-gateway "${common[@]}" --set "scheduler.endpoint=$scheduler" \
  --set "metrics.endpoint=$metrics" --set "billing.endpoint=$billing" \
  --set 'gateway.endpoint=tcp://127.0.0.1:*' --set "gateway.data=$tmp/gateway" --set 'gateway.allowed_hosts=[]' \
  --set 'gateway.metrics_allow=["127.0.0.1"]' --listen 127.0.0.1:0 --ready-file "$tmp/gateway.ready"
wait_file "$tmp/gateway.ready" "$pid_gateway" gateway
url="$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$tmp/gateway.ready")"

# Through the gateway: every service answers, and the agent's node registered.
ok=""
for _ in $(seq 100); do
  if curl -fsS "$url/metrics" >"$tmp/metrics.txt" 2>/dev/null &&
     [ "$(grep -c '^trainyard_service_up{.*} 1' "$tmp/metrics.txt")" -ge 4 ]; then
    ok=1
    break
  fi
  sleep 0.2
done
[ -n "$ok" ] || { cat "$tmp/metrics.txt" >&2 2>/dev/null || true; fail "the gateway's /metrics does not show 4 services up" gateway; }
echo "check-config: gateway /metrics: $(grep -c '^trainyard_service_up{.*} 1' "$tmp/metrics.txt") services up"

# ty reads the same file (client.timeout_ms); endpoints come from flags here.
tyflags=(--config "$config" --scheduler "$scheduler" --broker "$broker" --metrics "$metrics" --billing "$billing" --bus "$back")
ok=""
for _ in $(seq 50); do
  if "$(exe ty)" "${tyflags[@]}" nodes 2>"$tmp/ty.log" | grep -q config-check; then ok=1; break; fi
  sleep 0.2
done
[ -n "$ok" ] || fail "ty nodes does not list the agent's node config-check" ty
"$(exe ty)" "${tyflags[@]}" queue --all >/dev/null 2>>"$tmp/ty.log" || fail "ty queue failed" ty
echo "check-config: ty nodes/queue: ok"

# Stop in reverse order; each must exit 0 on SIGTERM.
for name in gateway agent billing metrics scheduler broker bus; do
  var="pid_${name//-/_}"
  pid="${!var}"
  kill -TERM "$pid"
  status=0
  wait "$pid" || status=$?
  [ "$status" -eq 0 ] || fail "$name exited with status $status on SIGTERM" "$name"
done
pids=()
echo "check-config: every service started with $config and stopped cleanly"
