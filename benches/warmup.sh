#!/usr/bin/env bash
# Model cache warmup benchmark (see benches/README.md, "Model cache warmup").
#
# Generates a model-like file set (default 4 × 512 MiB of random data plus two small files) in
# a temporary directory, writes its manifest, serves it over loopback HTTP with Debian's nginx
# (installed with apt-get when missing and running as root), and measures in one run:
#   * infergate's warmup over HTTP (control/warmup/examples/warmup_bench.rs, built --release), with the
#     defaults (two connections per CPU, 4 to 16) and with 16 connections (--max-connections 16),
#   * curl of the files one at a time,
#   * parallel curl: 4 files at once (xargs -P 4), and 8 ranges at once (curl -r | dd seek),
#   * infergate's warmup from a local directory against cp,
#   * with the files in place and a cold page cache: a warmup re-run with --preread against cat.
# Each measurement runs WARMUP_BENCH_ROUNDS times (rounds interleave the runs), each time into an
# empty destination, after `sync`, dropping the page cache where allowed, and after waiting (at
# most 60 s) for the CPUs to be idle: the best round counts.
# Prints a markdown table: throughput (MiB/s), ratio to the best baseline, peak RSS, as written
# and durable (baselines plus a `sync` of their files; the warmup fsyncs before each rename).
# Everything it creates lives in one temporary directory, removed at exit (nginx is stopped).
#
# Environment: WARMUP_BENCH_FILES (4), WARMUP_BENCH_FILE_MIB (512), WARMUP_BENCH_ROUNDS (3),
# WARMUP_BENCH_TMP (/tmp), WARMUP_BENCH_ARGS (extra flags for warmup_bench fetch, e.g.
# "--parallel-ranges 4").
set -euo pipefail
cd "$(dirname "$0")/.."

FILES=${WARMUP_BENCH_FILES:-4}
FILE_MIB=${WARMUP_BENCH_FILE_MIB:-512}
ROUNDS=${WARMUP_BENCH_ROUNDS:-3}
EXTRA=${WARMUP_BENCH_ARGS:-}

need_pkg() { # command package
  if ! command -v "$1" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing $2 (apt-get)" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    else
      echo "benches/warmup.sh: needs $1: 'sudo apt-get install $2'" >&2
      exit 1
    fi
  fi
}
need_pkg nginx nginx
need_pkg curl curl
[ -x /usr/bin/time ] || need_pkg /usr/bin/time time

cargo build --release --locked -q -p infergate-warmup --example warmup_bench
BIN=$PWD/target/release/examples/warmup_bench

WORK=$(mktemp -d "${WARMUP_BENCH_TMP:-/tmp}/infergate-warmup-bench.XXXXXX")
NGINX_PID=
cleanup() {
  if [ -n "$NGINX_PID" ]; then kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
chmod 755 "$WORK"
SRC=$WORK/src
mkdir -p "$SRC" "$WORK/nginx"

echo "generating $FILES × $FILE_MIB MiB in $SRC" >&2
for i in $(seq 1 "$FILES"); do
  name=$(printf 'model-%05d-of-%05d.safetensors' "$i" "$FILES")
  head -c "$((FILE_MIB << 20))" /dev/urandom >"$SRC/$name"
done
head -c 1500 /dev/urandom | base64 >"$SRC/config.json"
head -c 3000000 /dev/urandom >"$SRC/tokenizer.json"
"$BIN" manifest "$SRC" >&2
TOTAL=$(du -cb "$SRC"/*.safetensors "$SRC"/config.json "$SRC"/tokenizer.json | tail -1 | cut -f1)
mapfile -t NAMES < <(cd "$SRC" && ls -1 | grep -v '^manifest.json$')

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
USER_LINE=""
if [ "$(id -u)" = 0 ]; then USER_LINE="user root root;"; fi
cat >"$WORK/nginx/nginx.conf" <<CONF
$USER_LINE
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  types { application/octet-stream safetensors; application/json json; }
  server {
    listen 127.0.0.1:$PORT;
    root $SRC;
    location / { }
  }
}
CONF
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
NGINX_PID=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf -o /dev/null "$URL/manifest.json" && break; sleep 0.1; done
curl -sf -o /dev/null -r 0-9 -w '%{http_code}' "$URL/${NAMES[0]}" | grep -q 206 || { echo "nginx does not answer ranges" >&2; exit 1; }

# Page cache: dropping it needs write access to /proc/sys/vm/drop_caches, which a container
# usually lacks even as root. Without it, every run reads the source from the page cache.
DROP=no
drop_caches() {
  sync
  if echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then DROP=yes; fi
}

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
mibs() { calc "$TOTAL / $1 / 1048576"; }

# Waits (at most $1 s) until the CPUs were at least 85 % idle for 2 s in a row: other builds on
# a shared machine skew a 2-core benchmark badly.
BUSY=0
quiet() {
  local max=${1:-60} waited=0 ok=0 i tot idle
  local -a a b
  while [ "$waited" -lt "$max" ]; do
    read -ra a </proc/stat; sleep 1; read -ra b </proc/stat; waited=$((waited + 1))
    tot=0; for i in 1 2 3 4 5 6 7 8; do tot=$((tot + b[i] - a[i])); done
    idle=$(((b[4] - a[4] + b[5] - a[5]) * 100 / (tot > 0 ? tot : 1)))
    if [ "$idle" -ge 85 ]; then ok=$((ok + 1)); [ "$ok" -ge 2 ] && return 0; else ok=0; fi
  done
  BUSY=$((BUSY + 1))
}

declare -A BEST BEST_SYNC RSS
LABELS=()
record() { # label transfer-secs secs-incl-sync rss-kib
  printf '%-52s %6.2f s %7.1f MiB/s | durable %6.2f s %7.1f MiB/s | rss %s\n' "$1" "$2" "$(mibs "$2")" "$3" "$(mibs "$3")" "${4:--}" >&2
  if [ -z "${BEST[$1]:-}" ]; then LABELS+=("$1"); fi
  if [ -z "${BEST[$1]:-}" ] || [ "$(calc "$2 < ${BEST[$1]}")" = 1.000000 ]; then BEST[$1]=$2; RSS[$1]=${4:-}; fi
  if [ -z "${BEST_SYNC[$1]:-}" ] || [ "$(calc "$3 < ${BEST_SYNC[$1]}")" = 1.000000 ]; then BEST_SYNC[$1]=$3; fi
}
fresh() { rm -rf "$WORK/dest"; mkdir -p "$WORK/dest"; drop_caches; quiet 60; }
# Baselines do not fsync; the warmup does (before each rename). The second figure of a
# baseline adds `sync` of the files it wrote, for a like-for-like durable result.
finish_baseline() { # label t0
  local t1 t2
  t1=$(now)
  sync "$WORK"/dest/*
  t2=$(now)
  record "$1" "$(calc "$t1 - $2")" "$(calc "$t2 - $2")" ""
}

check_dest() { # every byte arrived (sha256 of the curl baselines, checked outside the timing)
  (cd "$WORK/dest" && sha256sum --quiet -c <(python3 -c '
import json,sys
for f in json.load(open(sys.argv[1]))["files"]: print(f["sha256"]+"  "+f["path"])' "$SRC/manifest.json"))
}

# The ranges for the ranged curl baseline: 64 MiB each, 8 at a time.
RANGE=$((64 << 20))
JOBS=$WORK/ranges.txt
: >"$JOBS"
for n in "${NAMES[@]}"; do
  size=$(stat -c %s "$SRC/$n")
  for ((off = 0; off < size; off += RANGE)); do
    end=$((off + RANGE - 1)); [ "$end" -ge "$size" ] && end=$((size - 1))
    echo "$n $off $end $WORK/dest" >>"$JOBS"
  done
done

run_warmup() { # label source extra-args... (into an empty dest; KEEP_DEST=1 keeps the dest)
  # @CONNECTIONS@ in the label becomes the max_connections the run reports (on stderr): the
  # default follows the CPUs the process may use (affinity and cgroup quota), not nproc.
  local label=$1 source=$2; shift 2
  if [ "${KEEP_DEST:-0}" = 1 ]; then drop_caches; quiet 60; else fresh; fi
  local out=$WORK/warmup.out err=$WORK/warmup.err t0 t1 rss secs conns
  t0=$(now)
  # shellcheck disable=SC2086
  /usr/bin/time -v "$BIN" fetch --source "$source" --dest "$WORK/dest" $EXTRA "$@" >"$out" 2>"$err" || { cat "$err" >&2; exit 1; }
  t1=$(now)
  rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$err")
  conns=$(awk '/^max_connections / {print $2; exit}' "$err")
  label=${label//@CONNECTIONS@/${conns:-?}}
  secs=$(calc "$t1 - $t0")
  record "$label" "$secs" "$secs" "$rss"
  echo "  report: $(cat "$out")" >&2
}

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2

  # 1. curl, one file at a time.
  fresh
  t0=$(now)
  for n in "${NAMES[@]}"; do curl -sf -o "$WORK/dest/$n" "$URL/$n"; done
  finish_baseline "curl, one file at a time" "$t0"
  check_dest

  # 2. curl, 4 files at a time.
  fresh
  t0=$(now)
  printf '%s\n' "${NAMES[@]}" | xargs -P 4 -I{} curl -sf -o "$WORK/dest/{}" "$URL/{}"
  finish_baseline "curl, 4 files in parallel (xargs -P 4)" "$t0"
  check_dest

  # 3. curl, 8 ranges of 64 MiB at a time, each written at its offset by dd.
  fresh
  for n in "${NAMES[@]}"; do truncate -s "$(stat -c %s "$SRC/$n")" "$WORK/dest/$n"; done
  t0=$(now)
  xargs -P 8 -L 1 sh -c 'curl -sf -r "$2-$3" "$0/$1" | dd of="$4/$1" bs=1M seek="$2" oflag=seek_bytes conv=notrunc status=none' "$URL" <"$JOBS"
  finish_baseline "curl -r, 8 × 64 MiB ranges in parallel, dd seek" "$t0"
  check_dest

  # 4. infergate warmup over HTTP (verifies sha256, fsyncs, renames): the defaults (two
  # connections per CPU, 4 to 16), and 16 connections, the default from 8 CPUs up (4 ranges
  # per file, so three quarters of each file arrive ahead of the hash and are read back).
  run_warmup "infergate warmup, HTTP (defaults: 4 files, @CONNECTIONS@ connections${EXTRA:+; $EXTRA})" "$URL"
  run_warmup "infergate warmup, HTTP, --max-connections 16 (4 per file${EXTRA:+; $EXTRA})" "$URL" --max-connections 16
  if [ "$round" = 1 ]; then
    echo "  page cache residency of the result (fincore):" >&2
    (cd "$WORK/dest" && fincore -b ./*.safetensors >&2) || true
  fi

  # 4b. Page cache: the files are in place; with a cold cache, read them (cat) against a warmup
  # re-run with --preread (the verified record spares the hashing; then one sequential read).
  drop_caches; quiet 60
  t0=$(now)
  cat "$WORK"/dest/* >/dev/null
  t1=$(now)
  secs=$(calc "$t1 - $t0")
  record "cat > /dev/null of the fetched files (cold cache)" "$secs" "$secs" ""
  KEEP_DEST=1 run_warmup "infergate warmup again, files present, --preread" "$URL" --preread
  if [ "$round" = 1 ]; then
    echo "  page cache residency after the pre-read (fincore):" >&2
    (cd "$WORK/dest" && fincore -b ./*.safetensors >&2) || true
  fi

  # 5. Local source: cp against infergate warmup from a directory.
  fresh
  t0=$(now)
  cp "${NAMES[@]/#/$SRC/}" "$WORK/dest/"
  finish_baseline "cp (local source)" "$t0"
  run_warmup "infergate warmup, local dir (defaults${EXTRA:+; $EXTRA})" "$SRC"
done

# Table. Ratios: HTTP runs against the best curl, local runs against cp, the pre-read against
# cat; durable figures count the baselines' sync.
best=0; best_sync=0; cp_t=0; cp_sync=0; cat_t=0
for label in "${LABELS[@]}"; do
  case $label in
    curl*)
      best=$(calc "($(mibs "${BEST[$label]}") > $best) ? $(mibs "${BEST[$label]}") : $best")
      best_sync=$(calc "($(mibs "${BEST_SYNC[$label]}") > $best_sync) ? $(mibs "${BEST_SYNC[$label]}") : $best_sync") ;;
    cp*) cp_t=$(mibs "${BEST[$label]}"); cp_sync=$(mibs "${BEST_SYNC[$label]}") ;;
    cat*) cat_t=$(mibs "${BEST[$label]}") ;;
  esac
done

echo
echo "$FILES × $FILE_MIB MiB + 2 small files = $TOTAL bytes; nginx $(nginx -v 2>&1 | sed 's/.*\///') on 127.0.0.1; best of $ROUNDS rounds; page cache dropped before each run: $DROP; runs that started on a busy machine (waited 60 s): $BUSY"
echo
echo "| run | MiB/s | ratio to best baseline | MiB/s, durable | ratio, durable | peak RSS |"
echo "|-----|------:|-----------------------:|---------------:|---------------:|---------:|"
for label in "${LABELS[@]}"; do
  case $label in
    *local*|cp*) b=$cp_t; bs=$cp_sync ;;
    cat*|*preread*) b=$cat_t; bs=$cat_t ;;
    *) b=$best; bs=$best_sync ;;
  esac
  t=$(mibs "${BEST[$label]}"); ts=$(mibs "${BEST_SYNC[$label]}")
  rss=${RSS[$label]}
  if [ -n "$rss" ]; then rss_txt=$(printf '%.1f MiB' "$(calc "$rss / 1024")"); else rss_txt="–"; fi
  printf '| %s | %.0f | %.0f %% | %.0f | %.0f %% | %s |\n' "$label" "$t" "$(calc "$t / $b * 100")" "$ts" "$(calc "$ts / $bs * 100")" "$rss_txt"
done
echo
echo "Machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(findmnt -no FSTYPE -T "$WORK") on $(findmnt -no SOURCE -T "$WORK"), $(rustc --version), $(date -u +%Y-%m-%dT%H:%MZ)"
