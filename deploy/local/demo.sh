#!/usr/bin/env bash
# The local demo: builds infergate and its simulator, starts two simulated model servers and the
# gateway on loopback (config/examples/quickstart.yaml), streams requests through the gateway,
# prints TTFT/TPOT per model from the gateway's metrics, and stops everything it started.
#
# Ports: gateway data 127.0.0.1:9100, admin 127.0.0.1:9190, simulators 127.0.0.1:9101/9102.
set -euo pipefail
cd "$(dirname "$0")/../.."

DATA=127.0.0.1:9100
ADMIN=127.0.0.1:9190
REQUESTS=${DEMO_REQUESTS:-40}
LOGS=$(mktemp -d -t infergate-demo.XXXXXX)
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

say() { printf '\n== %s\n' "$*"; }

for port in 9100 9101 9102 9190; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use; stop what is listening there and run again" >&2
    exit 1
  fi
done

say "Building (release)"
cargo build --release --locked -p infergate-gateway -p infergate-loadtest --bins
BIN=target/release

say "Starting two simulated model servers (TTFT 200 ms / 120 ms, 20 ms / 15 ms between tokens)"
"$BIN/infergate-sim" --listen 127.0.0.1:9101 --ttft-ms 200 --itl-ms 20 >"$LOGS/sim-a.log" 2>&1 &
pids+=($!)
"$BIN/infergate-sim" --listen 127.0.0.1:9102 --ttft-ms 120 --itl-ms 15 >"$LOGS/sim-b.log" 2>&1 &
pids+=($!)

say "Starting the gateway: infergate run --config config/examples/quickstart.yaml"
"$BIN/infergate" run --config config/examples/quickstart.yaml --log-format text >"$LOGS/gateway.log" 2>&1 &
pids+=($!)

for _ in $(seq 100); do
  curl -fsS "http://$ADMIN/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://$ADMIN/readyz" >/dev/null || { cat "$LOGS/gateway.log"; exit 1; }

say "GET /v1/models"
curl -sS "http://$DATA/v1/models"; echo

say "One streamed chat completion, as it arrives"
curl -sSN "http://$DATA/v1/chat/completions" -H 'content-type: application/json' -d '{
  "model":"demo","messages":[{"role":"user","content":"Hello!"}],
  "max_tokens":6,"stream":true,"stream_options":{"include_usage":true}}'

say "An unknown model gets an OpenAI error body"
curl -sS "http://$DATA/v1/chat/completions" -H 'content-type: application/json' \
  -d '{"model":"nope","messages":[]}' -w '  (HTTP %{http_code})\n'

say "Streaming $REQUESTS requests, 8 at a time"
seq "$REQUESTS" | xargs -P 8 -I{} curl -sSN -o /dev/null "http://$DATA/v1/chat/completions" \
  -H 'content-type: application/json' \
  -d '{"model":"demo","messages":[{"role":"user","content":"request {}"}],"max_tokens":32,"stream":true,"stream_options":{"include_usage":true}}'

say "TTFT and TPOT per model and endpoint, from the gateway's /metrics"
curl -sS "http://$ADMIN/metrics" | awk '
  function label(s, name,   re, v) {
    re = name "=\"[^\"]*\""
    if (match(s, re)) { v = substr(s, RSTART + length(name) + 2, RLENGTH - length(name) - 3); return v }
    return ""
  }
  /^infergate_(time_to_first_token|time_per_output_token)_seconds_(sum|count)\{/ {
    split($0, parts, " ")
    key = label($0, "model") " " label($0, "endpoint")
    metric = ($0 ~ /time_to_first_token/) ? "ttft" : "tpot"
    kind = ($0 ~ /_sum\{/) ? "sum" : "count"
    v[metric, kind, key] = parts[2]; keys[key] = 1
  }
  /^infergate_requests_total\{/ {
    split($0, parts, " "); key = label($0, "model") " " label($0, "endpoint")
    if (label($0, "outcome") == "success") ok[key] += parts[2]
  }
  END {
    printf "%-8s %-24s %8s %12s %12s\n", "model", "endpoint", "requests", "mean TTFT", "mean TPOT"
    for (k in keys) {
      split(k, kv, " ")
      c1 = v["ttft", "count", k]; c2 = v["tpot", "count", k]
      if (c1 == 0) continue
      printf "%-8s %-24s %8d %9.1f ms %9.2f ms\n", kv[1], kv[2], ok[k], \
        1000 * v["ttft", "sum", k] / c1, (c2 > 0 ? 1000 * v["tpot", "sum", k] / c2 : 0)
    }
  }'

say "Logs are in $LOGS; stopping everything"
