#!/usr/bin/env bash
# Side-by-side proxy benchmark: direct, nginx, HAProxy and infergate in front of the same fast
# canned upstream and the same timed SSE upstream, in one run, in rotated order, over several
# rounds. See benches/README.md ("Side by side with nginx and HAProxy") for what each column is.
#
#   benches/peers.sh [--rounds N] [--duration S] [--quick] [--gateway-bin PATH]
#                    [--targets direct,nginx,haproxy,infergate] [--streams N] [--perf]
#                    [--port-base N] [--results DIR] [--before-bin PATH]
#
# The load client and the upstreams run on CPU 0, each proxy alone on CPU 1 (one worker, one
# thread; infergate's runtime takes one worker per CPU it may run on). Installs nginx, haproxy
# and wrk with apt-get when missing (root). Everything listens on 127.0.0.1. The Markdown table
# goes to stdout; progress to stderr; raw data, summary, logs and configs to the results folder.
# --before-bin adds the target infergate-before: another build of the gateway (e.g. the commit
# before a change), measured in the same rounds, so a change's effect is read from one run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=benches/peers/common.sh
. "$ROOT/benches/peers/common.sh"
# shellcheck source=benches/peers/targets.sh
. "$ROOT/benches/peers/targets.sh"

ROUNDS=3 DURATION=10 WARMUP=1 STREAMS=2000 TTFT1_N=20 TTFT16_N=48 PERF=0
TARGETS="direct,nginx,haproxy,infergate"
GATEWAY_BIN="$ROOT/target/release/infergate"
BEFORE_BIN=""
PORT_BASE=18300 CLIENT_CPU=0 PROXY_CPU=1
RESULTS="$ROOT/benches/peers/results"

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --quick) ROUNDS=1 DURATION=3 STREAMS=500 TTFT1_N=10 TTFT16_N=32; shift ;;
        --gateway-bin) GATEWAY_BIN="$2"; shift 2 ;;
        --targets) TARGETS="$2"; shift 2 ;;
        --streams) STREAMS="$2"; shift 2 ;;
        --perf) PERF=1; shift ;;
        --port-base) PORT_BASE="$2"; shift 2 ;;
        --results) RESULTS="$2"; shift 2 ;;
        --before-bin) BEFORE_BIN="$2" TARGETS="$TARGETS,infergate-before"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for v in ROUNDS DURATION STREAMS PORT_BASE; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || peers_die "--$(tr 'A-Z_' 'a-z-' <<<"$v") ${!v}: expected a positive integer"
done
IFS=, read -r -a TARGET_LIST <<<"$TARGETS"
for t in "${TARGET_LIST[@]}"; do peers_target_ports "$t"; done
case ",$TARGETS," in *,direct,*) ;; *) peers_die "--targets $TARGETS: direct must be one of them (every ratio is to it)" ;; esac
if case ",$TARGETS," in *,infergate,*) true ;; *) false ;; esac; then
    [ -x "$GATEWAY_BIN" ] || peers_die "--gateway-bin $GATEWAY_BIN: no such executable (build it: cargo build --release -p infergate-gateway)"
fi
if [ -n "$BEFORE_BIN" ]; then
    [ -x "$BEFORE_BIN" ] || peers_die "--before-bin $BEFORE_BIN: no such executable"
fi
[ "$(nproc)" -ge 2 ] || peers_die "needs 2 CPUs (client and upstreams on CPU 0, the proxy on CPU 1); nproc says $(nproc)"

peers_install nginx haproxy wrk
command -v python3 >/dev/null || peers_die "python3 is missing (the timed upstream and the stream probe use it)"
[ "$PERF" -eq 0 ] || command -v perf >/dev/null || peers_die "--perf: perf is missing (apt-get install linux-perf)"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((STREAMS * 2 + 200)) ] || peers_die "open files limit $(ulimit -n) is too low for --streams $STREAMS"

NAME="peers-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RESULTS"
RUN="$RESULTS/$NAME.run"
RAW="$RESULTS/$NAME.jsonl"
mkdir -p "$RUN"
trap peers_stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)" STARTED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "$NAME: targets $TARGETS, $ROUNDS round(s) of ${DURATION}s loads, $STREAMS open streams; results in $RESULTS" >&2
peers_start_upstreams "$CLIENT_CPU"

ticks() { if [ -n "$TARGET_PID" ]; then peers_cpu_ticks "$TARGET_PID"; else echo null; fi; }
mem() { if [ -n "$TARGET_PID" ]; then peers_mem_kib "$TARGET_PID" "$1"; else echo null; fi; }
or_null() { if [ -n "$1" ]; then echo "$1"; else echo null; fi; }
probe() { taskset -c "$CLIENT_CPU" python3 "$PEERS_DIR/probe.py" "$@" || true; }

# measure ROUND NAME: one target's whole set of measurements; appends one JSON line to RAW.
measure() {
    local round="$1" name="$2" hold=null idle j64 c0 c1 cj j1 s64 cs t1 t16 peak perf_pid=""
    echo "round $round: $name" >&2
    # Open streams, on a fresh start: idle RSS, then RSS with STREAMS slow streams open.
    if [ "$name" != direct ]; then
        peers_start_target "$name" || { echo "{\"round\":$round,\"target\":\"$name\",\"failed\":true}" >>"$RAW"; return 0; }
        hold="$(probe hold --port "$P_SLOW" --model bench-slow -n "$STREAMS" --concurrency 100 \
            --timeout 120 --pids "$(peers_tree "$TARGET_PID" | paste -sd,)")"
        echo "  hold: $hold" >&2
        peers_stop "$TARGET_PID"
    fi
    # Loads, on another fresh start.
    peers_start_target "$name" || { echo "{\"round\":$round,\"target\":\"$name\",\"failed\":true}" >>"$RAW"; return 0; }
    idle="$(mem VmRSS)"
    peers_wrk "$P_JSON" request-json.json 64 "$WARMUP" >/dev/null
    if [ "$PERF" -eq 1 ] && [ "$name" = infergate ] && [ "$round" -eq 1 ]; then
        taskset -c "$CLIENT_CPU" perf record -g -p "$TARGET_PID" -o "$RESULTS/$NAME.perf.data" \
            -- sleep "$DURATION" >"$RUN/perf.log" 2>&1 &
        perf_pid=$!
    fi
    c0="$(ticks)"; j64="$(peers_wrk "$P_JSON" request-json.json 64 "$DURATION")"; c1="$(ticks)"
    [ -z "$perf_pid" ] || wait "$perf_pid" || echo "  perf record failed: $(tail -n 3 "$RUN/perf.log")" >&2
    [ "$c0" = null ] && cj=null || cj=$((c1 - c0))
    echo "  c64 json: $j64 cpu_ticks=$cj" >&2
    j1="$(peers_wrk "$P_JSON" request-json.json 1 "$DURATION")"
    echo "  c1 json: $j1" >&2
    peers_wrk "$P_SSE" request-sse.json 64 "$WARMUP" >/dev/null
    c0="$(ticks)"; s64="$(peers_wrk "$P_SSE" request-sse.json 64 "$DURATION")"; c1="$(ticks)"
    [ "$c0" = null ] && cs=null || cs=$((c1 - c0))
    echo "  c64 sse: $s64 cpu_ticks=$cs" >&2
    t1="$(probe ttft --port "$P_TIMED" -n "$TTFT1_N" --concurrency 1)"
    echo "  ttft c1: $t1" >&2
    t16="$(probe ttft --port "$P_TIMED" -n "$TTFT16_N" --concurrency 16)"
    echo "  ttft c16: $t16" >&2
    peak="$(mem VmHWM)"
    [ -z "$TARGET_PID" ] || peers_stop "$TARGET_PID"
    printf '{"round":%s,"target":"%s","json_c64":%s,"cpu_json_ticks":%s,"json_c1":%s,"sse_c64":%s,"cpu_sse_ticks":%s,"ttft_c1":%s,"ttft_c16":%s,"idle_rss_kib":%s,"peak_rss_kib":%s,"hold":%s}\n' \
        "$round" "$name" "$(or_null "$j64")" "$cj" "$(or_null "$j1")" "$(or_null "$s64")" "$cs" \
        "$(or_null "$t1")" "$(or_null "$t16")" "$idle" "$peak" "$(or_null "$hold")" >>"$RAW"
}

n="${#TARGET_LIST[@]}"
for round in $(seq "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
        measure "$round" "${TARGET_LIST[$(((i + round - 1) % n))]}"
    done
done

if [ "$PERF" -eq 1 ] && [ -f "$RESULTS/$NAME.perf.data" ]; then
    { perf report -i "$RESULTS/$NAME.perf.data" --no-children --sort dso --stdio -g none 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -n 6
      echo
      perf report -i "$RESULTS/$NAME.perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -n 25; } | sed -E 's/([[:space:]]+-)*[[:space:]]*$//' >"$RESULTS/$NAME.perf.txt" || true
    echo "perf: self time by object and the top 25 symbols in $RESULTS/$NAME.perf.txt" >&2
fi

GW_VERSION="$("$GATEWAY_BIN" --version 2>/dev/null || echo unknown)"
python3 "$PEERS_DIR/report.py" "$RAW" --out "$RESULTS/$NAME.json" --clk-tck "$CLK_TCK" \
    --meta started="$STARTED" --meta date="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --meta commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- gateway config 2>/dev/null || echo '+changes')" \
    --meta cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
    --meta nproc="$(nproc)" --meta kernel="$(uname -r)" \
    --meta load_start="$LOAD_START" --meta load_end="$(cut -d' ' -f1-3 /proc/loadavg)" \
    --meta rounds="$ROUNDS" --meta duration_s="$DURATION" --meta streams="$STREAMS" \
    --meta nginx="$(nginx -v 2>&1 | sed 's/.*nginx\///')" \
    --meta haproxy="$(haproxy -v | sed -n '1s/^HAProxy version \([^ ]*\).*/\1/p')" \
    --meta infergate="$GW_VERSION" --meta gateway_bin="$GATEWAY_BIN" |
    tee "$RESULTS/$NAME.md"
