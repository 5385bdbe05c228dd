#!/usr/bin/env bash
# Soak of the gateway on loopback: N minutes of mixed load, then PASS/FAIL checks.
#
# Starts two simulators (a clean one and a faulty one that injects 5xx, stalls and drops at
# known rates), a gateway in front of both (model `demo`, two variants split by weight), and
# benches/soak/soak.py, which drives the load (streams, non-streams, clients that disconnect
# mid-stream), rewrites the faulty variant's weight and reloads the config every 10 s, samples
# the gateway every 10 s (RSS, open descriptors, in-flight, requests by outcome), and at the end
# checks that RSS and descriptors stay flat, in-flight returns to 0 and every failed request is
# explained by an injected fault. It writes samples.csv, summary.json and chart.svg (RSS and
# throughput over time) to the output folder and exits non-zero on any FAIL.
#
# Usage: benches/soak.sh [--minutes N] [--bin-dir DIR] [--out DIR] [--workers N] [--seed N]
#   --minutes N   load duration (default 30; fractions allowed)
#   --bin-dir DIR where infergate, infergate-sim live (default target/release; build them
#                 first with `cargo build --release`, or use target/debug after `cargo build`)
#   --out DIR     output folder (default target/soak/<date>-<time>)
#   --workers N   closed-loop client threads (default 12)
#   --seed N      seed of the clients' and simulators' draws (default 1)
# Needs python3 (standard library only). Everything listens on 127.0.0.1 with port 0 (the
# bound addresses are read from the processes' log lines); everything started is killed on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/lib.sh
. benches/lib.sh

MINUTES=30
BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
OUT=""
WORKERS=12
SEED=1
while [ $# -gt 0 ]; do
    case "$1" in
    --minutes) MINUTES="$2"; shift 2 ;;
    --bin-dir) BIN_DIR="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --workers) WORKERS="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
need_tools soak.sh "$BIN_DIR" 'cargo build --release' infergate infergate-sim
OUT="$(out_dir "${OUT:-target/soak/$(date +%Y%m%d-%H%M%S)}")"

# The faults of the faulty simulator: drawn in this order, the first that hits applies.
FAULTS=(status=500@0.05 stall-after=2@0.03 drop-after=3@0.03)

cleanup() {
    stop_started
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_sim NAME ARGS...: a simulator on 127.0.0.1:0; sets SIM_ADDR.
start_sim() {
    local name="$1" line pid
    shift
    "$BIN_DIR/infergate-sim" --listen 127.0.0.1:0 --model demo --ttft-ms 20 --ttft-stddev-ms 5 \
        --itl-ms 5 --itl-stddev-ms 1 --max-tokens 16 --seed "$SEED" "$@" \
        >"$OUT/$name.out" 2>"$OUT/$name.err" &
    pid=$!
    PIDS+=("$pid")
    line="$(wait_for_line "$OUT/$name.out" "$pid" '^infergate-sim listening on http://')"
    SIM_ADDR="${line#infergate-sim listening on http://}"
}

start_sim sim-good
GOOD="$SIM_ADDR"
fault_args=()
for f in "${FAULTS[@]}"; do fault_args+=(--fault "$f"); done
start_sim sim-faulty "${fault_args[@]}"
FAULTY="$SIM_ADDR"

# The config; soak.py rewrites the line marked `# soak: faulty weight` before each reload.
# One endpoint per backend, no retries and no ejection: every request reaches exactly one
# simulator once, so the gateway's outcomes can be matched one to one with what was injected.
CONFIG="$OUT/gateway.yaml"
cat >"$CONFIG" <<EOF
listeners:
  data:
    address: 127.0.0.1:0
  admin:
    address: 127.0.0.1:0
backends:
  - name: good
    endpoints:
      - url: http://$GOOD
    timeouts: { connect: 2s, first_token: 3s, idle: 2s, total: 60s }
    retry: { max_attempts: 1 }
    outlier: { consecutive_failures: 0 }
  - name: faulty
    endpoints:
      - url: http://$FAULTY
    timeouts: { connect: 2s, first_token: 3s, idle: 2s, total: 60s }
    retry: { max_attempts: 1 }
    outlier: { consecutive_failures: 0 }
models:
  - name: demo
    variants:
      - name: good
        backend: good
      - name: faulty
        backend: faulty
    routes:
      - name: split
        split:
          - variant: good
            weight: 80
          - variant: faulty
            weight: 20 # soak: faulty weight
EOF

"$BIN_DIR/infergate" run --config "$CONFIG" >"$OUT/gateway.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
line="$(wait_for_line "$OUT/gateway.log" "$GW_PID" '"message":"listening".*"listener":"data"|"listener":"data".*"message":"listening"')"
GW_ADDR="$(sed -E 's/.*"addr":"([^"]+)".*/\1/' <<<"$line")"
line="$(wait_for_line "$OUT/gateway.log" "$GW_PID" '"message":"listening".*"listener":"admin"|"listener":"admin".*"message":"listening"')"
ADMIN_ADDR="$(sed -E 's/.*"addr":"([^"]+)".*/\1/' <<<"$line")"
for a in "$GOOD" "$FAULTY" "$GW_ADDR" "$ADMIN_ADDR"; do
    case "$a" in
    127.0.0.1:*) ;;
    *) echo "soak.sh: $a is not on 127.0.0.1" >&2; exit 1 ;;
    esac
done
echo "soak: gateway $GW_ADDR (admin $ADMIN_ADDR, pid $GW_PID); simulators: good $GOOD, faulty $FAULTY (${FAULTS[*]})" >&2
echo "soak: $MINUTES min, $WORKERS clients, binaries from $BIN_DIR, output in $OUT" >&2

python3 "$ROOT/benches/soak/soak.py" --minutes "$MINUTES" --workers "$WORKERS" --seed "$SEED" \
    --gateway "$GW_ADDR" --admin "$ADMIN_ADDR" --gateway-pid "$GW_PID" --config "$CONFIG" \
    --good-sim "$GOOD" --faulty-sim "$FAULTY" --faults "${FAULTS[*]}" --out "$OUT" &
DRIVER=$!
PIDS+=("$DRIVER")
rc=0
wait "$DRIVER" || rc=$?
exit "$rc"
