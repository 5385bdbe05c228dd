#!/usr/bin/env bash
# Cluster-scale benchmark of the gateway's control plane: start-up, reload, /metrics and memory
# with many models and endpoints.
#
# Generates a config of MODELS models, each served by its own backend of ENDPOINTS endpoints
# (default 1,000 × 10 = 10,000 endpoints) on loopback addresses 127.1.0.1 and up, port 8000,
# where nothing listens (benches/scale/config.py). No request is ever sent to them: only the
# admin listener is called. Then, RUNS times (a fresh gateway each time):
#
#   1. starts the gateway and polls GET /readyz until 200        -> start-up time to ready
#   2. reads VmRSS from /proc/PID/status                           -> RSS at start
#   3. RELOADS × POST /admin/reload, alternating an unchanged file and a file where one
#      backend's endpoints changed (written in place with the file's old modification time,
#      so the 1 s file watcher does not apply it first)             -> reload times
#   4. SCRAPES × GET /metrics                                       -> size and time
#   5. VmRSS again                                                  -> RSS after
#   6. SIGTERM, and waits for the exit.
#
# Times are curl's time_total (one new loopback connection per call) for the HTTP figures, and
# wall time from exec to the first 200 of /readyz (polled every 10 ms) for the start-up.
# Prints min / median / max of every figure over all samples; the table goes to stdout, progress
# to stderr.
#
# Usage: benches/scale.sh [--models N] [--endpoints N] [--runs N] [--reloads N] [--scrapes N]
#                         [--keep DIR]
#   defaults: 1000 models, 10 endpoints per backend, 3 runs, 10 reloads and 10 scrapes per run.
#   --keep DIR copies the generated configs and the gateway logs to DIR.
# Env: INFERGATE_BIN  the gateway binary (default: release/infergate under $CARGO_TARGET_DIR, or
#                     under target; build it first with `cargo build --release`). Nothing is
#                     built here.
set -euo pipefail

MODELS=1000
ENDPOINTS=10
RUNS=3
RELOADS=10
SCRAPES=10
KEEP=""

usage() {
    echo "usage: benches/scale.sh [--models N] [--endpoints N] [--runs N] [--reloads N] [--scrapes N] [--keep DIR]" >&2
    exit 2
}

while (($#)); do
    case "$1" in
    --models) MODELS="${2-}"; shift $(($# > 1 ? 2 : 1)) ;;
    --endpoints) ENDPOINTS="${2-}"; shift $(($# > 1 ? 2 : 1)) ;;
    --runs) RUNS="${2-}"; shift $(($# > 1 ? 2 : 1)) ;;
    --reloads) RELOADS="${2-}"; shift $(($# > 1 ? 2 : 1)) ;;
    --scrapes) SCRAPES="${2-}"; shift $(($# > 1 ? 2 : 1)) ;;
    --keep) KEEP="${2-}"; shift $(($# > 1 ? 2 : 1)) ;;
    -h | --help) usage ;;
    *) echo "unknown option: $1" >&2; usage ;;
    esac
done
for v in MODELS ENDPOINTS RUNS RELOADS SCRAPES; do
    if ! [[ "${!v}" =~ ^[1-9][0-9]*$ ]]; then
        echo "${v,,} must be a positive integer, got '${!v}'" >&2
        exit 2
    fi
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${INFERGATE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/infergate}"
if [[ ! -x "$BIN" ]]; then
    echo "no gateway binary at $BIN: run \`cargo build --release\` or set INFERGATE_BIN" >&2
    exit 2
fi
GEN="$ROOT/benches/scale/config.py"
CURL=(curl --silent --show-error --noproxy '*' --max-time 120)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/infergate-scale-bench.XXXXXX")"
GW_PID=""

# stop_gateway: SIGTERM, then SIGKILL if it has not exited within 10 s.
stop_gateway() {
    local i
    [[ -n "$GW_PID" ]] || return 0
    kill "$GW_PID" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        kill -0 "$GW_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -9 "$GW_PID" 2>/dev/null || true
    wait "$GW_PID" 2>/dev/null || true
    GW_PID=""
}

cleanup() {
    stop_gateway
    if [[ -n "$KEEP" ]]; then
        mkdir -p "$KEEP" && cp "$WORK"/*.yaml "$WORK"/*.log "$KEEP"/ 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ns() { date +%s%N; }

# rss_kib PID: the process's resident set (VmRSS) in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# admin_addr LOG: the admin listener's address from the gateway's JSON log, once logged.
admin_addr() {
    { grep -m1 -E '"listener":"admin"' "$1" 2>/dev/null || true; } |
        sed -nE 's/.*"addr":"([^"]+)".*/\1/p'
}

# record NAME VALUE: appends one sample of a figure.
record() { printf '%s\n' "$2" >>"$WORK/samples.$1"; }

# start_gateway RUN: starts the gateway on the live config, waits for /readyz 200 (120 s at
# most), records the start-up time, and sets GW_PID and ADMIN.
start_gateway() {
    local log="$WORK/gateway-$1.log" t0 t1 code i
    t0="$(now_ns)"
    "$BIN" run --config "$WORK/live.yaml" >"$log" 2>&1 &
    GW_PID=$!
    ADMIN=""
    for ((i = 0; i < 12000; i++)); do
        if ! kill -0 "$GW_PID" 2>/dev/null; then
            echo "the gateway exited during start-up; its log:" >&2
            tail -n 20 "$log" >&2
            GW_PID=""
            return 1
        fi
        [[ -n "$ADMIN" ]] || ADMIN="$(admin_addr "$log")"
        if [[ -n "$ADMIN" ]]; then
            code="$("${CURL[@]}" -o /dev/null -w '%{http_code}' "http://$ADMIN/readyz" || true)"
            if [[ "$code" == 200 ]]; then
                t1="$(now_ns)"
                record startup_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')"
                return 0
            fi
        fi
        sleep 0.01
    done
    echo "the gateway was not ready after 120 s" >&2
    return 1
}

# reload NAME: POST /admin/reload, checks for 200, records its time under NAME.
reload() {
    local out
    out="$("${CURL[@]}" -o "$WORK/reply" -w '%{http_code} %{time_total}' -X POST \
        "http://$ADMIN/admin/reload")"
    if [[ "${out% *}" != 200 ]]; then
        echo "POST /admin/reload answered ${out% *}: $(head -c 500 "$WORK/reply")" >&2
        return 1
    fi
    record "$1" "${out#* }"
}

# scrape: GET /metrics, records its time and size.
scrape() {
    local out code secs bytes
    out="$("${CURL[@]}" -o /dev/null -w '%{http_code} %{time_total} %{size_download}' \
        "http://$ADMIN/metrics")"
    read -r code secs bytes <<<"$out"
    if [[ "$code" != 200 ]]; then
        echo "GET /metrics answered $code" >&2
        return 1
    fi
    record scrape_s "$secs"
    record scrape_bytes "$bytes"
}

echo "generating ${MODELS} models x ${ENDPOINTS} endpoints" >&2
python3 "$GEN" gen --models "$MODELS" --endpoints "$ENDPOINTS" >"$WORK/a.yaml"
python3 "$GEN" gen --models "$MODELS" --endpoints "$ENDPOINTS" --changed >"$WORK/b.yaml"
if grep -Eo 'https?://[^/:'"'"' ]+' "$WORK/a.yaml" "$WORK/b.yaml" | grep -Ev '//127\.' >&2; then
    echo "the generated config names an address outside 127.0.0.0/8" >&2
    exit 1
fi
CONFIG_BYTES="$(wc -c <"$WORK/a.yaml")"

for ((run = 1; run <= RUNS; run++)); do
    cp "$WORK/a.yaml" "$WORK/live.yaml"
    current=a
    echo "run $run/$RUNS: starting $BIN" >&2
    start_gateway "$run"
    record rss_start_kib "$(rss_kib "$GW_PID")"
    for ((i = 1; i <= RELOADS; i++)); do
        if ((i % 2)); then
            reload reload_unchanged_s
        else
            if [[ "$current" == a ]]; then current=b; else current=a; fi
            python3 "$GEN" put "$WORK/$current.yaml" "$WORK/live.yaml"
            reload reload_changed_s
        fi
    done
    for ((i = 1; i <= SCRAPES; i++)); do
        scrape
    done
    record rss_after_kib "$(rss_kib "$GW_PID")"
    stop_gateway
    watcher="$(grep -c '"trigger":"file_changed"' "$WORK/gateway-$run.log" || true)"
    if ((watcher > 0)); then
        echo "warning: run $run: the file watcher applied $watcher reload(s) too; reload times may include them" >&2
    fi
done

# stats NAME SCALE FORMAT: "n min median max" of a figure's samples, each multiplied by SCALE.
stats() {
    sort -g "$WORK/samples.$1" | awk -v s="$2" -v f="$3" '
        { v[NR] = $1 * s }
        END {
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%5d  " f "  " f "  " f "\n", NR, v[1], m, v[NR]
        }'
}

cpu="$(sed -nE 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "infergate control-plane scale: $MODELS models x $ENDPOINTS endpoints ($((MODELS * ENDPOINTS)) endpoints), config $CONFIG_BYTES bytes"
echo "binary: $BIN"
echo "machine: nproc=$(nproc), $cpu, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "runs: $RUNS gateway starts; per run $RELOADS reloads (odd: unchanged file, even: one backend's endpoints changed) and $SCRAPES scrapes"
printf '%-40s %5s  %12s  %12s  %12s\n' figure n min median max
row() { printf '%-40s %s\n' "$1" "$(stats "$2" "$3" "$4")"; }
row "start-up to /readyz 200 (ms)" startup_s 1000 '%12.1f'
row "reload, unchanged file (ms)" reload_unchanged_s 1000 '%12.1f'
[[ -s "$WORK/samples.reload_changed_s" ]] && row "reload, one backend changed (ms)" reload_changed_s 1000 '%12.1f'
row "GET /metrics (ms)" scrape_s 1000 '%12.1f'
row "GET /metrics (bytes)" scrape_bytes 1 '%12d'
row "RSS at start (MiB)" rss_start_kib 0.0009765625 '%12.1f'
row "RSS after $RELOADS reloads, $SCRAPES scrapes (MiB)" rss_after_kib 0.0009765625 '%12.1f'
