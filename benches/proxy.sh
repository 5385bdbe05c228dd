#!/usr/bin/env bash
# Direct-vs-gateway load benchmark on loopback.
#
# Builds infergate, infergate-sim and proxy-bench (release), starts two simulators (an instant
# one for non-streamed runs, one with 20 ms TTFT / 5 ms ITL for streams) with a gateway in
# front of each, then runs proxy-bench against each simulator directly and through its
# gateway:
#
#   non-streamed, concurrency 1 and 64      (latency, throughput)
#   streamed,     concurrency 1 and 16      (TTFT, total)
#
# and prints a table with the direct and via-gateway figures, what the gateway adds, the CPU
# time the simulator and the gateway spent per request (from /proc/PID/stat, 10 ms ticks, so
# coarse for the slow streamed runs), and whether the targets were met.
#
# Env: BENCH_SECS   measured seconds per run (default 10)
#      BENCH_WARMUP warmup seconds per run, not counted (default 1)
#      CARGO        cargo command (default cargo)
# Everything listens on 127.0.0.1 (port 0); everything started is killed on exit.
set -euo pipefail

BENCH_SECS="${BENCH_SECS:-10}"
BENCH_WARMUP="${BENCH_WARMUP:-1}"
CARGO="${CARGO:-cargo}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/lib.sh
. benches/lib.sh

echo "building (release): infergate infergate-sim proxy-bench" >&2
"$CARGO" build --release --quiet --bin infergate --bin infergate-sim --bin proxy-bench
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/infergate-proxy-bench.XXXXXX")"

cleanup() {
    stop_started
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_sim NAME ARGS...: starts a simulator on 127.0.0.1:0; sets SIM_ADDR and SIM_PID.
start_sim() {
    local name="$1" line pid
    shift
    "$BIN/infergate-sim" --listen 127.0.0.1:0 --model demo "$@" \
        >"$WORK/$name.out" 2>"$WORK/$name.err" &
    pid=$!
    PIDS+=("$pid")
    line="$(wait_for_line "$WORK/$name.out" "$pid" '^infergate-sim listening on http://' 10)"
    SIM_ADDR="${line#infergate-sim listening on http://}"
    SIM_PID="$pid"
}

# start_gateway NAME UPSTREAM_ADDR: starts a gateway in front of one simulator; sets GW_ADDR
# and GW_PID.
start_gateway() {
    local name="$1" upstream="$2" line pid
    cat >"$WORK/$name.yaml" <<EOF
listeners:
  data:
    address: 127.0.0.1:0
  admin:
    address: 127.0.0.1:0
backends:
  - name: sim
    endpoints:
      - url: http://$upstream
    timeouts:
      connect: 2s
      first_token: 30s
      idle: 30s
      total: 10m
models:
  - name: demo
    backend: sim
EOF
    "$BIN/infergate" run --config "$WORK/$name.yaml" >"$WORK/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    line="$(wait_for_line "$WORK/$name.log" "$pid" '"message":"listening".*"listener":"data"|"listener":"data".*"message":"listening"' 10)"
    GW_ADDR="$(sed -E 's/.*"addr":"([^"]+)".*/\1/' <<<"$line")"
    wait_for_line "$WORK/$name.log" "$pid" '"listener":"admin"' 10 >/dev/null
    GW_PID="$pid"
}

# field JSON KEY: a number (or null) from proxy-bench's one-line JSON.
field() {
    sed -E "s/.*\"$2\":(null|[-0-9.eE+]+).*/\1/" <<<"$1"
}

# cpu_ticks PID: user+system CPU time of a process, in clock ticks.
cpu_ticks() {
    local stat
    stat="$(<"/proc/$1/stat")"
    awk '{ print $12 + $13 }' <<<"${stat##*) }"
}
CLK_TCK="$(getconf CLK_TCK)"

# run KEY ADDR CONCURRENCY SIM_PID GW_PID [ARGS...]: one proxy-bench run. Stores its JSON line
# in R[KEY] and the simulator's and gateway's CPU time per request (us) in CPU_SIM[KEY] and
# CPU_GW[KEY] (the warmup's requests are estimated at the measured rate).
declare -A R CPU_SIM CPU_GW
run() {
    local key="$1" addr="$2" c="$3" sim_pid="$4" gw_pid="$5" s0 g0 s1 g1 rps
    shift 5
    echo "$key: proxy-bench --url http://$addr --concurrency $c $*" >&2
    s0="$(cpu_ticks "$sim_pid")"
    g0="$(cpu_ticks "$gw_pid")"
    R[$key]="$("$BIN/proxy-bench" --url "http://$addr" --concurrency "$c" \
        --duration "$BENCH_SECS" --warmup "$BENCH_WARMUP" "$@")"
    s1="$(cpu_ticks "$sim_pid")"
    g1="$(cpu_ticks "$gw_pid")"
    echo "  ${R[$key]}" >&2
    rps="$(field "${R[$key]}" rps)"
    CPU_SIM[$key]="$(awk -v t=$((s1 - s0)) -v hz="$CLK_TCK" -v r="$rps" -v s="$BENCH_SECS" -v w="$BENCH_WARMUP" \
        'BEGIN { n = r * (s + w); printf "%.1f", (n > 0) ? t / hz * 1e6 / n : 0 }')"
    CPU_GW[$key]="$(awk -v t=$((g1 - g0)) -v hz="$CLK_TCK" -v r="$rps" -v s="$BENCH_SECS" -v w="$BENCH_WARMUP" \
        'BEGIN { n = r * (s + w); printf "%.1f", (n > 0) ? t / hz * 1e6 / n : 0 }')"
}

start_sim sim-fast --ttft-ms 0 --itl-ms 0 --max-tokens 16
FAST_SIM="$SIM_ADDR" FAST_SIM_PID="$SIM_PID"
start_gateway gw-fast "$FAST_SIM"
FAST_GW="$GW_ADDR" FAST_GW_PID="$GW_PID"
start_sim sim-stream --ttft-ms 20 --itl-ms 5 --max-tokens 16
STREAM_SIM="$SIM_ADDR" STREAM_SIM_PID="$SIM_PID"
start_gateway gw-stream "$STREAM_SIM"
STREAM_GW="$GW_ADDR" STREAM_GW_PID="$GW_PID"
echo "simulators: $FAST_SIM (instant), $STREAM_SIM (ttft 20 ms, itl 5 ms)" >&2
echo "gateways:   $FAST_GW -> $FAST_SIM, $STREAM_GW -> $STREAM_SIM" >&2
echo "runs: ${BENCH_WARMUP}s warmup + ${BENCH_SECS}s measured each" >&2

for c in 1 64; do
    run "plain_${c}_direct" "$FAST_SIM" "$c" "$FAST_SIM_PID" "$FAST_GW_PID"
    run "plain_${c}_gw" "$FAST_GW" "$c" "$FAST_SIM_PID" "$FAST_GW_PID"
done
for c in 1 16; do
    run "stream_${c}_direct" "$STREAM_SIM" "$c" "$STREAM_SIM_PID" "$STREAM_GW_PID" --stream
    run "stream_${c}_gw" "$STREAM_GW" "$c" "$STREAM_SIM_PID" "$STREAM_GW_PID" --stream
done

# line SCENARIO METRIC DIRECT GATEWAY KIND: one table row. KIND: ms (3 decimals, delta =
# gateway - direct), rate (1 decimal, delta = gateway / direct), cpu (1 decimal, no delta) or
# count (no delta).
line() {
    awk -v sc="$1" -v m="$2" -v d="$3" -v g="$4" -v k="$5" 'BEGIN {
        num = "^-?[0-9.]+([eE][-+]?[0-9]+)?$"
        fmt = (k == "ms") ? "%.3f" : (k == "count") ? "%d" : "%.1f"
        ds = (d ~ num) ? sprintf(fmt, d) : d
        gs = (g ~ num) ? sprintf(fmt, g) : g
        delta = ""
        if (d ~ num && g ~ num) {
            if (k == "ms") delta = sprintf("%+.3f", g - d)
            else if (k == "rate" && d > 0) delta = sprintf("%.1f %%", 100 * g / d)
        }
        printf "%-16s %-22s %12s %12s %12s\n", sc, m, ds, gs, delta }'
}
# rows SCENARIO KEY STREAM: the rows of one scenario.
rows() {
    local sc="$1" d="${R[${2}_direct]}" g="${R[${2}_gw]}"
    line "$sc" "requests/s" "$(field "$d" rps)" "$(field "$g" rps)" rate
    line "" "p50 ms" "$(field "$d" p50_ms)" "$(field "$g" p50_ms)" ms
    line "" "p99 ms" "$(field "$d" p99_ms)" "$(field "$g" p99_ms)" ms
    if [[ "$3" == stream ]]; then
        line "" "TTFT p50 ms" "$(field "$d" ttft_p50_ms)" "$(field "$g" ttft_p50_ms)" ms
        line "" "TTFT p99 ms" "$(field "$d" ttft_p99_ms)" "$(field "$g" ttft_p99_ms)" ms
    fi
    line "" "errors" "$(field "$d" errors)" "$(field "$g" errors)" count
    line "" "sim CPU us/request" "${CPU_SIM[${2}_direct]}" "${CPU_SIM[${2}_gw]}" cpu
    line "" "gateway CPU us/request" "-" "${CPU_GW[${2}_gw]}" cpu
}

echo
echo "direct vs gateway: ${BENCH_WARMUP} s warmup + ${BENCH_SECS} s per run, $(nproc) CPUs, closed loop"
echo "(delta: gateway - direct for times, gateway / direct for requests/s)"
printf '%-16s %-22s %12s %12s %12s\n' scenario metric direct gateway delta
rows "non-stream c=1" plain_1 plain
rows "non-stream c=64" plain_64 plain
rows "stream c=1" stream_1 stream
rows "stream c=16" stream_16 stream

# Summary against the targets.
diff_of() { awk -v g="$(field "${R[${1}_gw]}" "$2")" -v d="$(field "${R[${1}_direct]}" "$2")" 'BEGIN { printf "%.3f", g - d }'; }
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {
    ok = (op == "<") ? (v < t) : (v >= t); print ok ? "met" : "MISSED" }'; }
added_p50_1="$(diff_of plain_1 p50_ms)"
ratio_64="$(awk -v g="$(field "${R[plain_64_gw]}" rps)" -v d="$(field "${R[plain_64_direct]}" rps)" 'BEGIN { printf "%.1f", (d > 0) ? 100 * g / d : 0 }')"
ttft_1="$(diff_of stream_1 ttft_p50_ms)"
ttft_16="$(diff_of stream_16 ttft_p50_ms)"
echo
printf '%-46s %10s   %s\n' "target" value verdict
printf '%-46s %10s   %s\n' "added p50 latency, non-stream c=1 (ms) < 0.2" "$added_p50_1" "$(verdict "$added_p50_1" 0.2 '<')"
printf '%-46s %10s   %s\n' "throughput via gateway, c=64 (% of direct) >= 80" "$ratio_64" "$(verdict "$ratio_64" 80 '>=')"
printf '%-46s %10s   %s\n' "added TTFT p50, stream c=1 (ms) < 1" "$ttft_1" "$(verdict "$ttft_1" 1 '<')"
printf '%-46s %10s   %s\n' "added TTFT p50, stream c=16 (ms) < 1" "$ttft_16" "$(verdict "$ttft_16" 1 '<')"
