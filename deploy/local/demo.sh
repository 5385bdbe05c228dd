#!/usr/bin/env bash
# The local demo: builds infergate and its simulator, starts two simulated model servers (a
# stable and a canary version of model `demo`) and the gateway on loopback
# (config/examples/canary.yaml: 90/10, sticky on x-user-id), streams requests through the
# gateway, prints TTFT/TPOT per model and variant from the gateway's metrics, shifts the canary
# to 50 % with a hot reload, shows that no user moved back, injects a GPU fault (fake NVML)
# and shows traffic moving off that GPU, runs a short load test (infergate-bench, HTML
# report), then runs two progressive releases on config/examples/release/ under load (a canary
# as fast as the stable version, promoted; one with twice its TTFT, rolled back; an HTML report
# each), and stops everything it started.
#
# Ports: gateway data 127.0.0.1:9100, admin 127.0.0.1:9190, simulators 127.0.0.1:9101/9102,
# infergate-control 127.0.0.1:9200.
#
# DEMO_BIN=DIR runs the binaries already built in DIR (e.g. target/debug) instead of building.
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

for port in 9100 9101 9102 9190 9200; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use; stop what is listening there and run again" >&2
    exit 1
  fi
done

if [ -n "${DEMO_BIN:-}" ]; then
  BIN=${DEMO_BIN%/}
  for f in infergate infergate-sim infergate-bench infergate-control libinfergate_fake_nvml.so; do
    [ -e "$BIN/$f" ] || { echo "DEMO_BIN=$DEMO_BIN: no $f there; build it or leave DEMO_BIN unset" >&2; exit 1; }
  done
  say "Using the binaries in $BIN (DEMO_BIN; nothing is built)"
else
  say "Building (release)"
  # The whole workspace, exactly what `cargo build --release` builds, so that nothing is compiled
  # again after it (a build of some packages, -p, can turn crate features on differently).
  cargo build --release --locked
  BIN=target/release
fi

say "Starting two simulated model servers: stable v1 (TTFT 200 ms, 20 ms/token), canary v2 (TTFT 120 ms, 15 ms/token)"
"$BIN/infergate-sim" --listen 127.0.0.1:9101 --ttft-ms 200 --itl-ms 20 --served-version v1 >"$LOGS/sim-stable.log" 2>&1 &
pids+=($!)
"$BIN/infergate-sim" --listen 127.0.0.1:9102 --ttft-ms 120 --itl-ms 15 --served-version v2 >"$LOGS/sim-canary.log" 2>&1 &
pids+=($!)

# The gateway runs on a copy of the example, so that the weight shift below edits the copy.
CONFIG="$LOGS/canary.yaml"
cp config/examples/canary.yaml "$CONFIG"
say "Starting the gateway: infergate run --config config/examples/canary.yaml (a copy in $LOGS)"
"$BIN/infergate" run --config "$CONFIG" --log-format text >"$LOGS/gateway.log" 2>&1 &
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

# Streams one request per user (user-1 ... user-N), 8 at a time; prints "user variant" lines.
stream_users() {
  seq "$REQUESTS" | xargs -P 8 -I{} curl -sSN -o /dev/null -w 'user-{} %header{x-infergate-variant}\n' \
    "http://$DATA/v1/chat/completions" -H 'content-type: application/json' -H 'x-user-id: user-{}' \
    -d '{"model":"demo","messages":[{"role":"user","content":"request {}"}],"max_tokens":32,"stream":true,"stream_options":{"include_usage":true}}' |
    sort
}

metrics_table() {
  curl -sS "http://$ADMIN/metrics" | awk '
    function label(s, name,   re) {
      re = name "=\"[^\"]*\""
      if (match(s, re)) return substr(s, RSTART + length(name) + 2, RLENGTH - length(name) - 3)
      return ""
    }
    /^infergate_(time_to_first_token|time_per_output_token)_seconds_(sum|count)\{/ {
      split($0, parts, " ")
      key = label($0, "model") " " label($0, "variant")
      metric = ($0 ~ /time_to_first_token/) ? "ttft" : "tpot"
      kind = ($0 ~ /_sum\{/) ? "sum" : "count"
      v[metric, kind, key] = parts[2]; keys[key] = 1
    }
    /^infergate_requests_total\{/ {
      split($0, parts, " "); key = label($0, "model") " " label($0, "variant")
      if (label($0, "outcome") == "success") ok[key] += parts[2]
    }
    END {
      printf "%-6s %-8s %8s %12s %12s\n", "model", "variant", "requests", "mean TTFT", "mean TPOT"
      for (k in keys) {
        split(k, kv, " ")
        c1 = v["ttft", "count", k]; c2 = v["tpot", "count", k]
        if (c1 == 0) continue
        printf "%-6s %-8s %8d %9.1f ms %9.2f ms\n", kv[1], kv[2], ok[k], \
          1000 * v["ttft", "sum", k] / c1, (c2 > 0 ? 1000 * v["tpot", "sum", k] / c2 : 0)
      }
    }'
}

say "Canary at 10 %: streaming $REQUESTS requests, one per user (x-user-id), 8 at a time"
stream_users >"$LOGS/phase1.txt"
awk '{n[$2]++} END {for (v in n) printf "  %-7s %d users\n", v, n[v]}' "$LOGS/phase1.txt"

say "TTFT and TPOT per model and variant, from the gateway's /metrics"
metrics_table

say "A tester pins the canary: x-infergate-variant: canary"
curl -sS -o /dev/null -D - "http://$DATA/v1/completions" -H 'content-type: application/json' \
  -H 'x-infergate-variant: canary' -d '{"model":"demo","prompt":"hi","max_tokens":2}' |
  grep -i -E '^(x-infergate-variant|x-served-version):'

say "Shifting the canary to 50 % (edit the weights, POST /admin/reload)"
sed -i 's/weight: 90/weight: 50/; s/weight: 10/weight: 50/' "$CONFIG"
curl -sS -X POST "http://$ADMIN/admin/reload"; echo
"$BIN/infergate" explain --config "$CONFIG" --model demo -H 'x-user-id: user-1' | sed 's/^/  /'

say "Canary at 50 %: the same users again"
stream_users >"$LOGS/phase2.txt"
awk '{n[$2]++} END {for (v in n) printf "  %-7s %d users\n", v, n[v]}' "$LOGS/phase2.txt"
join "$LOGS/phase1.txt" "$LOGS/phase2.txt" | awk '
  $2 == "canary" && $3 != "canary" { back++ }
  $2 == "stable" && $3 == "canary" { moved++ }
  END { printf "  %d users moved stable -> canary, %d moved back (sticky and monotonic)\n", moved, back }'

say "TTFT and TPOT per model and variant after the shift"
metrics_table

say "GPU fault: infergate-control reads node-a's GPUs (fake NVML: GPU 1 reports XID 79 three seconds after start)"
kill "${pids[2]}" 2>/dev/null || true   # the canary gateway; the next one follows control's health feed
wait "${pids[2]}" 2>/dev/null || true
INFERGATE_FAKE_NVML_SCENARIO=config/examples/gpu-fault/scenario.yaml \
  "$BIN/infergate-control" run --config config/examples/gpu-fault/control.yaml \
  --nvml-library "$BIN/libinfergate_fake_nvml.so" >"$LOGS/control.log" 2>&1 &
pids+=($!)
fault_at=$(( $(date +%s%N) / 1000000 + 3000 ))
"$BIN/infergate" run --config config/examples/gpu-fault/gateway.yaml --log-format text >"$LOGS/gateway-gpu.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -fsS "http://$ADMIN/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
# 40 requests one after another (about 6 s); each line: time since start (ms) and the GPU's server.
start=$(( $(date +%s%N) / 1000000 ))
for i in $(seq 40); do
  now=$(( $(date +%s%N) / 1000000 ))
  v=$(curl -sS -o /dev/null -w '%header{x-served-version}' "http://$DATA/v1/completions" \
    -H 'content-type: application/json' -d '{"model":"demo","prompt":"hi","max_tokens":1}')
  echo "$(( now - start )) $v"
done >"$LOGS/gpu-phase.txt"
awk -v fault="$(( fault_at - start ))" '
  { if ($1 < fault) before[$2]++; else after[$2]++ }
  END {
    printf "  before the fault: %d to 127.0.0.1:9101 (GPU 0), %d to 127.0.0.1:9102 (GPU 1)\n", before["v1"], before["v2"]
    printf "  after the fault:  %d to 127.0.0.1:9101 (GPU 0), %d to 127.0.0.1:9102 (GPU 1)\n", after["v1"], after["v2"]
  }' "$LOGS/gpu-phase.txt"
echo "  control's health feed:"
curl -sS "http://127.0.0.1:9200/v1/health" | tr '{' '\n' | grep -E '"index"' | sed 's/^/    {/'
echo "  the gateway's view (GET /admin/endpoints):"
curl -sS "http://$ADMIN/admin/endpoints" | tr '{' '\n' | grep -E '"url"|"reason"' | sed 's/^/    {/'

say "Load test: infergate-bench, 8 concurrent streams through the gateway (GPU 1 still out)"
"$BIN/infergate-bench" run --url "http://$DATA" --model demo --concurrency 8 --requests 80 \
  --output-tokens 32 --seed 1 --slo ttft=300ms,tpot=30ms --no-progress \
  --out "$LOGS/bench.json" --report "$LOGS/bench.html" | sed 's/^/  /'
echo "  HTML report: $LOGS/bench.html"

# Stops the process started as pids[$1] and waits for it.
stop() {
  kill "${pids[$1]}" 2>/dev/null || true
  wait "${pids[$1]}" 2>/dev/null || true
}

# Prints "variant outcome count" for model demo from the gateway's requests_total.
outcomes() {
  curl -sS "http://$ADMIN/metrics" | awk '
    /^infergate_requests_total\{/ && /model="demo"/ {
      match($0, /variant="[^"]*"/); v = substr($0, RSTART + 9, RLENGTH - 10)
      match($0, /outcome="[^"]*"/); o = substr($0, RSTART + 9, RLENGTH - 10)
      split($0, parts, " "); n[v " " o] += parts[2]
    }
    END { for (k in n) print k, n[k] }' | sort
}

# Runs release $1 (the example spec under that name) under load; $2: what is expected
# (promoted or rolled_back). Prints the CLI's step verdicts, its exit status, what the gateway
# served per variant during the release and the report's path.
release_run() {
  local name=$1 expect=$2 spec="$LOGS/$1.yaml" code
  sed "s/^name: .*/name: $name/" config/examples/release/release.yaml >"$spec"
  outcomes >"$LOGS/$name.before"
  # Steady load from a second on (once the gateway has the release's first weights): 32 streams
  # in flight, 4 tokens each, until the release ends.
  (sleep 1 && exec "$BIN/infergate-bench" run --url "http://$DATA" --model demo --concurrency 32 \
    --input-tokens 16 --output-tokens 4 --duration 120s --seed 2 --no-progress) \
    >"$LOGS/$name-load.log" 2>&1 &
  local load=$!
  pids+=("$load")
  echo "  \$ infergate-control release run --spec config/examples/release/release.yaml  (name: $name)"
  { "$BIN/infergate-control" release run --spec "$spec" && code=0 || code=$?; echo "$code" >"$LOGS/$name.code"; } 2>&1 |
    tee "$LOGS/$name-console.txt" | sed 's/^/    /'
  kill "$load" 2>/dev/null || true
  wait "$load" 2>/dev/null || true
  code=$(cat "$LOGS/$name.code")
  case $code in
    0) echo "  exit status 0: promoted" ;;
    3) echo "  exit status 3: rolled back" ;;
    *) echo "  exit status $code: error" ;;
  esac
  outcomes >"$LOGS/$name.after"
  echo "  requests through the gateway during the release (stopping the load cancels the last ones):"
  awk 'FILENAME == ARGV[1] { before[$1 " " $2] = $3; next }
    { d = $3 - before[$1 " " $2]; if (d > 0) { sep = ($1 in line) ? ", " : ""; line[$1] = line[$1] sep d " " $2 } }
    END { for (v in line) printf "    %-7s %s\n", v, line[v] }' "$LOGS/$name.before" "$LOGS/$name.after" | sort -r
  curl -fsS "http://127.0.0.1:9200/v1/releases/$name/report.html" -o "$LOGS/$name-report.html"
  echo "  HTML report: $LOGS/$name-report.html"
  local want=0
  [ "$expect" = rolled_back ] && want=3
  if [ "$code" != "$want" ]; then
    echo "  expected the release to end $expect (exit $want); see $LOGS" >&2
    failed=1
  fi
}

say "Releases: infergate-control runs them (config/examples/release/: control.yaml, gateway.yaml, release.yaml)"
stop 4   # the GPU-fault gateway and control
stop 3
stop 1   # the canary v2 simulator; the stable v1 one (TTFT 200 ms, 20 ms/token) keeps running
# A fresh state dir, so that no earlier release resumes.
INFERGATE_RELEASE_STATE="$LOGS/releases" INFERGATE_FAKE_NVML_SCENARIO=config/examples/release/scenario.yaml \
  "$BIN/infergate-control" run --config config/examples/release/control.yaml \
  --nvml-library "$BIN/libinfergate_fake_nvml.so" >"$LOGS/control-release.log" 2>&1 &
pids+=($!)
"$BIN/infergate" run --config config/examples/release/gateway.yaml --log-format text >"$LOGS/gateway-release.log" 2>&1 &
pids+=($!)
"$BIN/infergate-sim" --listen 127.0.0.1:9102 --ttft-ms 200 --itl-ms 20 --served-version v2 >"$LOGS/sim-canary-v2.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -fsS "http://$ADMIN/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://$ADMIN/readyz" >/dev/null || { cat "$LOGS/gateway-release.log"; exit 1; }
failed=0
run_id=$(date +%Y%m%d-%H%M%S)

say "Release 1: canary v2 as fast as stable v1 (TTFT 200 ms, 20 ms/token): steps 10, 50, 100 %, 3 s each"
release_run "demo-good-$run_id" promoted

say "Release 2: canary v3 with twice the TTFT (400 ms) on 127.0.0.1:9102: rolled back at its first judged step"
stop 7
"$BIN/infergate-sim" --listen 127.0.0.1:9102 --ttft-ms 400 --itl-ms 20 --served-version v3 >"$LOGS/sim-canary-v3.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  curl -fsS http://127.0.0.1:9102/health >/dev/null 2>&1 && break
  sleep 0.1
done
release_run "demo-slow-$run_id" rolled_back

say "Logs and reports are in $LOGS (kept); stopping everything"
exit "$failed"
