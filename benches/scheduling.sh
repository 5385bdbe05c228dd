#!/usr/bin/env bash
# Scheduling on engine state: round_robin, p2c, model_aware and model_aware + prefix affinity,
# side by side on four simulated vLLM engines with a KV cache, in one run.
#
# For each workload and each policy: starts 4 infergate-sim (KV-cache model, prefix cache,
# a bounded batch; settings in SIM_ARGS below), a gateway over them (benches/scheduling/
# gateway.yaml, the `balancer` from benches/scheduling/policies.txt), runs infergate-bench
# against the gateway (open loop, Poisson arrivals), reads the simulators' prefix-cache and
# preemption counters, and stops everything: each run starts on cold caches. Workloads
# (benches/scheduling/workloads.py writes them, seeded):
#   shared-prefix  4 system prompts of 2,000 words shared by all users, 8-24-word questions,
#                  24-72 output tokens; at --shared-rate
#   mixed          prompts of 16-3,000 words and 8-400 output tokens, log-uniform, no shared
#                  prefix; at --mixed-rate (near the simulators' saturation)
# Prints one Markdown table per workload (TTFT p50/p99, TPOT p50, throughput, goodput under
# the SLO, prefix-cache hit rate, preemptions) and writes them, with every result, to --out.
#
# Usage: benches/scheduling.sh [--seconds N] [--shared-rate R] [--mixed-rate R] [--seed N]
#                              [--policies a,b,...] [--workloads a,b] [--bin-dir DIR] [--out DIR]
#   --seconds N      load per run (default 30); 8 runs take about 8 × (N + 10) s
#   --shared-rate R  requests/s of the shared-prefix workload (default 30)
#   --mixed-rate R   requests/s of the mixed workload (default 18)
#   --policies LIST  a subset of the names in policies.txt (default all)
#   --workloads LIST shared-prefix,mixed (default both)
#   --bin-dir DIR    where infergate, infergate-sim and infergate-bench are (default
#                    target/release; build them with
#                    `cargo build --release -p infergate-gateway -p infergate-loadtest`)
#   --out DIR        results (default target/scheduling/<date>-<time>)
# Needs python3 (standard library only). Everything listens on 127.0.0.1, port 0; everything
# started is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/lib.sh
. benches/lib.sh

SECONDS_PER_RUN=30
SHARED_RATE=30
MIXED_RATE=18
SEED=1
POLICIES=""
WORKLOADS="shared-prefix,mixed"
BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
OUT=""
SLO="ttft=2000,tpot=100"
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) SECONDS_PER_RUN="$2"; shift 2 ;;
    --shared-rate) SHARED_RATE="$2"; shift 2 ;;
    --mixed-rate) MIXED_RATE="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --policies) POLICIES="$2"; shift 2 ;;
    --workloads) WORKLOADS="$2"; shift 2 ;;
    --bin-dir) BIN_DIR="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "scheduling.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
need_tools scheduling.sh "$BIN_DIR" 'cargo build --release -p infergate-gateway -p infergate-loadtest' infergate infergate-sim infergate-bench
OUT="$(out_dir "${OUT:-target/scheduling/$(date +%Y%m%d-%H%M%S)}")"
HERE="$ROOT/benches/scheduling"

# The engines. Each simulator: a KV cache of 5,120 tokens in 16-token blocks (two of the
# shared-prefix workload's four system prompts fit at once, not three), at most 16 requests in the
# batch, a prefill cost of 250 ms per 1,000 uncached prompt tokens (a 2,000-token system
# prompt: 500 ms when not cached, nothing when cached), 30 ms base TTFT, 15 ms per output
# token.
SIM_ARGS=(--model demo --kv-model --kv-cache-tokens 5120 --block-size 16 --max-running 16
    --ttft-ms 30 --ttft-stddev-ms 5 --itl-ms 15 --itl-stddev-ms 2
    --prefill-ms-per-1k-tokens 250)
SIMS=4

# The policies: name -> balancer section.
declare -A BALANCER=()
ORDER=()
while read -r name rest; do
    case "$name" in '' | '#'*) continue ;; esac
    BALANCER["$name"]="$rest"
    ORDER+=("$name")
done <"$HERE/policies.txt"
if [ -n "$POLICIES" ]; then
    IFS=, read -r -a ORDER <<<"$POLICIES"
fi
for p in "${ORDER[@]}"; do
    if [ -z "${BALANCER[$p]:-}" ]; then
        echo "scheduling.sh: unknown policy $p (benches/scheduling/policies.txt has: ${!BALANCER[*]})" >&2
        exit 2
    fi
done
IFS=, read -r -a WL <<<"$WORKLOADS"
for w in "${WL[@]}"; do
    case "$w" in shared-prefix | mixed) ;; *) echo "scheduling.sh: unknown workload $w" >&2; exit 2 ;; esac
done

cleanup() {
    stop_started
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

python3 "$HERE/workloads.py" "$OUT" --seed "$SEED" --lines 600 >&2
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

# start_stack POLICY RUN: 4 simulators and a gateway over them; sets GW_ADDR, SIM_ADDRS.
start_stack() {
    local policy="$1" run="$2" k line pid eps=""
    SIM_ADDRS=()
    for ((k = 0; k < SIMS; k++)); do
        "$BIN_DIR/infergate-sim" --listen 127.0.0.1:0 "${SIM_ARGS[@]}" --seed "$((SEED + k))" \
            >"$OUT/$run.sim$k.out" 2>"$OUT/$run.sim$k.err" &
        pid=$!
        PIDS+=("$pid")
        line="$(wait_for_line "$OUT/$run.sim$k.out" "$pid" '^infergate-sim listening on http://')"
        SIM_ADDRS+=("${line#infergate-sim listening on http://}")
        eps+="${eps:+, }{ url: \"http://${SIM_ADDRS[k]}\" }"
    done
    sed -e "s|@ENDPOINTS@|$eps|" -e "s|@BALANCER@|${BALANCER[$policy]}|" \
        "$HERE/gateway.yaml" >"$OUT/$run.gateway.yaml"
    "$BIN_DIR/infergate" run --config "$OUT/$run.gateway.yaml" >"$OUT/$run.gateway.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    line="$(wait_for_line "$OUT/$run.gateway.log" "$pid" '"message":"listening".*"listener":"data"|"listener":"data".*"message":"listening"')"
    GW_ADDR="$(sed -E 's/.*"addr":"([^"]+)".*/\1/' <<<"$line")"
    line="$(wait_for_line "$OUT/$run.gateway.log" "$pid" '"message":"listening".*"listener":"admin"|"listener":"admin".*"message":"listening"')"
    ADMIN_ADDR="$(sed -E 's/.*"addr":"([^"]+)".*/\1/' <<<"$line")"
    for a in "${SIM_ADDRS[@]}" "$GW_ADDR" "$ADMIN_ADDR"; do
        case "$a" in
        127.0.0.1:*) ;;
        *) echo "scheduling.sh: $a is not on 127.0.0.1" >&2; exit 1 ;;
        esac
    done
}

for w in "${WL[@]}"; do
    if [ "$w" = shared-prefix ]; then rate="$SHARED_RATE"; else rate="$MIXED_RATE"; fi
    for p in "${ORDER[@]}"; do
        run="$w-$p"
        start_stack "$p" "$run"
        echo "scheduling: $run: $rate req/s for ${SECONDS_PER_RUN}s (gateway $GW_ADDR, sims ${SIM_ADDRS[*]})" >&2
        # Warm-up: two seconds of the same load, not counted, so each run starts on caches that
        # hold what its policy put there rather than on empty ones.
        "$BIN_DIR/infergate-bench" run --url "http://$GW_ADDR" --model demo \
            --dataset "$OUT/$w.jsonl" --rate "$rate" --duration "${SECONDS_PER_RUN}s" \
            --warmup "$(awk -v r="$rate" 'BEGIN { print int(r * 2) }')" --seed "$SEED" --slo "$SLO" --timeout 300s --threads 1 \
            --connections 64 --label "$p" --no-progress --out "$OUT/$run.json" \
            >"$OUT/$run.txt" 2>"$OUT/$run.bench.err"
        python3 "$HERE/report.py" scrape "$OUT/$run.sims.json" "${SIM_ADDRS[@]}"
        curl -s --max-time 5 "http://$ADMIN_ADDR/admin/endpoints" >"$OUT/$run.endpoints.json" || true
        stop_started
        PIDS=()
        grep -E 'TTFT|goodput' "$OUT/$run.txt" | sed 's/^/    /' >&2 || true
    done
done

{
    echo "Scheduling benchmark: $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) CPUs, load average $LOAD_BEFORE before, $(cut -d' ' -f1-3 /proc/loadavg) after"
    echo "Simulators ($SIMS): ${SIM_ARGS[*]}"
    echo "SLO: $SLO (ms); ${SECONDS_PER_RUN}s per run; seed $SEED"
    for w in "${WL[@]}"; do
        if [ "$w" = shared-prefix ]; then rate="$SHARED_RATE"; else rate="$MIXED_RATE"; fi
        echo
        echo "### $w, $rate req/s"
        echo
        python3 "$HERE/report.py" table "$OUT" "$w" "${ORDER[@]}"
    done
} | tee "$OUT/tables.md"
echo "scheduling: results in $OUT" >&2
