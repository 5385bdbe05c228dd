# shellcheck shell=bash
# Shell functions shared by benches/peers.sh and scripts/perf-guard. Source it; it sets no options.
#
# Every process started through `peers_spawn` is recorded in PEERS_PIDS and stopped by
# `peers_stop_all` (SIGTERM, then SIGKILL to whatever is left of its process tree).

PEERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEERS_PIDS=()
# shellcheck disable=SC2034 # used by the scripts that source this file
CLK_TCK="$(getconf CLK_TCK)"

peers_die() {
    echo "error: $*" >&2
    exit 1
}

# peers_install TOOL...: installs the Debian packages of the missing tools (nginx, haproxy,
# wrk); exits with a message when that is not possible.
peers_install() {
    local missing=() tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        peers_die "missing ${missing[*]}: install the Debian packages (apt-get install ${missing[*]}) as root, or run this as root on Debian"
    fi
    echo "installing ${missing[*]} (apt-get)" >&2
    # policy-rc.d exit 101: the packages' own services are not started by the installation.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
    fi
    local rc=0
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >&2 || rc=$?
    [ "$made_policy" -eq 1 ] && rm -f "$policy"
    [ "$rc" -eq 0 ] || peers_die "apt-get install ${missing[*]} failed (exit $rc)"
    for tool in "${missing[@]}"; do
        command -v "$tool" >/dev/null 2>&1 || peers_die "$tool is still missing after apt-get install"
    done
}

# peers_render TEMPLATE OUT KEY=VALUE...: copies TEMPLATE to OUT with every @@KEY@@ replaced.
peers_render() {
    local tmpl="$1" out="$2" kv args=()
    shift 2
    for kv in "$@"; do
        args+=(-e "s|@@${kv%%=*}@@|${kv#*=}|g")
    done
    sed "${args[@]}" "$tmpl" >"$out" || peers_die "cannot render $tmpl into $out"
    if grep -q '@@[A-Z_]*@@' "$out"; then
        peers_die "$out: placeholders left unfilled: $(grep -o '@@[A-Z_]*@@' "$out" | sort -u | tr '\n' ' ')"
    fi
}

# peers_spawn CPU LOG CMD...: starts CMD pinned to CPU (a taskset list), output to LOG; sets
# SPAWNED to its PID.
peers_spawn() {
    local cpu="$1" log="$2"
    shift 2
    taskset -c "$cpu" "$@" >"$log" 2>&1 &
    SPAWNED=$!
    PEERS_PIDS+=("$SPAWNED")
}

# peers_tree PID: the PID and all its descendants, one a line.
peers_tree() {
    local pid="$1" child
    echo "$pid"
    # shellcheck disable=SC2013 # the file is one line of PIDs separated by spaces
    for child in $(cat "/proc/$pid/task/"*/children 2>/dev/null); do
        peers_tree "$child"
    done
}

# peers_stop PID: SIGTERM to PID, then SIGKILL to its tree if it is still there after 3 s.
peers_stop() {
    local pid="$1" tree _
    tree="$(peers_tree "$pid" | tr '\n' ' ')"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    # shellcheck disable=SC2086
    kill -KILL $tree 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

peers_stop_all() {
    local pid
    for pid in "${PEERS_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null && peers_stop "$pid"
    done
    PEERS_PIDS=()
}

# peers_cpu_ticks PID: user+system CPU time of PID and its descendants, in clock ticks.
peers_cpu_ticks() {
    local pid total=0 stat
    for pid in $(peers_tree "$1"); do
        stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || continue
        # Fields after "(comm) ": state is field 3, utime 14, stime 15.
        total=$((total + $(awk '{ print $12 + $13 }' <<<"${stat##*) }")))
    done
    echo "$total"
}

# peers_mem_kib PID FIELD: FIELD (VmRSS, VmHWM) of /proc/PID/status summed over its tree, in KiB.
peers_mem_kib() {
    local pid total=0 v
    for pid in $(peers_tree "$1"); do
        v="$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$pid/status" 2>/dev/null)"
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# peers_wait_port PORT PID SECONDS: waits until 127.0.0.1:PORT accepts connections; fails when
# PID exits or time runs out.
peers_wait_port() {
    local port="$1" pid="$2" n=$(($3 * 20))
    while [ "$n" -gt 0 ]; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
        n=$((n - 1))
    done
    return 1
}

# peers_upstream_conf OUT RUN_DIR JSON_PORT SSE_PORT: writes the config of the canned upstream,
# an nginx with one worker that answers every request on JSON_PORT with canned/chat.json and on
# SSE_PORT with canned/stream.sse (inlined: the files hold no ', \ or $, and each is under the
# 4 KiB that nginx allows one config token).
peers_upstream_conf() {
    local out="$1" run="$2" f
    for f in "$PEERS_DIR/canned/chat.json" "$PEERS_DIR/canned/stream.sse"; do
        if grep -q "[\$'\\\\]" "$f"; then
            peers_die "$f: holds a quote, backslash or dollar sign, which the nginx config cannot inline"
        fi
        [ "$(wc -c <"$f")" -lt 4000 ] || peers_die "$f: 4000 bytes or more, too long for one nginx config token"

    done
    cat >"$out" <<CONF
# The canned upstream (generated by benches/peers/common.sh).
worker_processes 1;
worker_rlimit_nofile 19000;
daemon off;
pid $run/upstream.pid;
error_log $run/upstream-error.log warn;
events { worker_connections 9000; }
http {
    access_log off;
    client_body_temp_path $run/upstream-body;
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    server {
        listen 127.0.0.1:$3 backlog=4096;
        default_type application/json;
        location / { return 200 '$(<"$PEERS_DIR/canned/chat.json")'; }
    }
    server {
        listen 127.0.0.1:$4 backlog=4096;
        default_type text/event-stream;
        # The shell strips the file's final blank line; the two newlines give it back.
        location / { return 200 '$(<"$PEERS_DIR/canned/stream.sse")

'; }
    }
}
CONF
}
