# shellcheck shell=bash
# The targets of benches/peers.sh and scripts/perf-guard: how each starts and where it listens.
# Source it after common.sh. Needs PORT_BASE, RUN (a writable folder), PROXY_CPU, GATEWAY_BIN.
#
# Ports: PORT_BASE+0..3 the upstreams (canned JSON, canned SSE, timed SSE, slow SSE);
# nginx +10..13 and HAProxy +20..23 (one listener per upstream); infergate +30 (data: the
# `model` picks the upstream) and +31 (admin); infergate-before (BEFORE_BIN, another build to
# compare in the same run) +40 and +41.

peers_ports() {
    U_JSON=$((PORT_BASE)) U_SSE=$((PORT_BASE + 1)) U_TIMED=$((PORT_BASE + 2)) U_SLOW=$((PORT_BASE + 3))
}

# peers_start_upstreams CPU TIMED_SPEC: the canned nginx upstream and the timed SSE upstream.
peers_start_upstreams() {
    local cpu="$1"
    peers_ports
    mkdir -p "$RUN/upstream"
    peers_upstream_conf "$RUN/upstream/nginx.conf" "$RUN/upstream" "$U_JSON" "$U_SSE"
    peers_spawn "$cpu" "$RUN/upstream/nginx.log" nginx -p "$RUN/upstream" -c "$RUN/upstream/nginx.conf" -e "$RUN/upstream/upstream-error.log"
    peers_wait_port "$U_JSON" "$SPAWNED" 10 || peers_die "the canned upstream did not start: $(cat "$RUN/upstream/"*.log)"
    peers_spawn "$cpu" "$RUN/upstream/timed.log" python3 "$PEERS_DIR/timed_upstream.py" \
        --listen "$U_TIMED:20:50:5" --listen "$U_SLOW:20:2:3600000"
    peers_wait_port "$U_SLOW" "$SPAWNED" 10 || peers_die "the timed upstream did not start: $(cat "$RUN/upstream/timed.log")"
}

# peers_target_ports NAME: sets P_JSON P_SSE P_TIMED P_SLOW, the ports that reach each upstream
# through target NAME (direct: the upstreams themselves).
peers_target_ports() {
    peers_ports
    local off
    case "$1" in
        direct) off=0 ;;
        nginx) off=10 ;;
        haproxy) off=20 ;;
        infergate | infergate-before)
            off=30
            [ "$1" = infergate ] || off=40
            P_JSON=$((PORT_BASE + off)) P_SSE=$P_JSON P_TIMED=$P_JSON P_SLOW=$P_JSON
            return 0
            ;;
        *) peers_die "unknown target $1 (known: direct, nginx, haproxy, infergate, infergate-before)" ;;
    esac
    P_JSON=$((PORT_BASE + off)) P_SSE=$((PORT_BASE + off + 1))
    P_TIMED=$((PORT_BASE + off + 2)) P_SLOW=$((PORT_BASE + off + 3))
}

# peers_check JSON_PORT SSE_PORT: one canned JSON request and one canned stream succeed.
peers_check() {
    local json sse
    json="$(curl -sf --max-time 5 -H 'content-type: application/json' \
        --data-binary "@$PEERS_DIR/request-json.json" "http://127.0.0.1:$1/v1/chat/completions")" || return 1
    sse="$(curl -sfN --max-time 5 -H 'content-type: application/json' \
        --data-binary "@$PEERS_DIR/request-sse.json" "http://127.0.0.1:$2/v1/chat/completions")" || return 1
    [[ "$json" == *'"object":"chat.completion"'* && "$sse" == *'data: [DONE]'* ]]
}

# peers_start_target NAME: starts target NAME alone on PROXY_CPU and checks it; sets TARGET_PID
# (empty for direct). Fails with the target's log when it does not come up within 15 s.
peers_start_target() {
    local name="$1" dir="$RUN/$1" _
    TARGET_PID=""
    peers_target_ports "$name"
    mkdir -p "$dir"
    local vars=(RUN="$dir" U_JSON="$U_JSON" U_SSE="$U_SSE" U_TIMED="$U_TIMED" U_SLOW="$U_SLOW"
        P_JSON="$P_JSON" P_SSE="$P_SSE" P_TIMED="$P_TIMED" P_SLOW="$P_SLOW")
    case "$name" in
        direct) return 0 ;;
        nginx)
            peers_render "$PEERS_DIR/nginx.conf.in" "$dir/nginx.conf" "${vars[@]}"
            peers_spawn "$PROXY_CPU" "$dir/out.log" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/nginx-error.log"
            ;;
        haproxy)
            peers_render "$PEERS_DIR/haproxy.cfg.in" "$dir/haproxy.cfg" "${vars[@]}"
            peers_spawn "$PROXY_CPU" "$dir/out.log" haproxy -db -f "$dir/haproxy.cfg"
            ;;
        infergate | infergate-before)
            local bin="$GATEWAY_BIN"
            [ "$name" = infergate ] || bin="$BEFORE_BIN"
            peers_render "$PEERS_DIR/infergate.yaml.in" "$dir/infergate.yaml" "${vars[@]}" \
                P_DATA="$P_JSON" P_ADMIN="$((P_JSON + 1))"
            peers_spawn "$PROXY_CPU" "$dir/out.log" "$bin" run --config "$dir/infergate.yaml"
            ;;
    esac
    TARGET_PID="$SPAWNED"
    for _ in $(seq 60); do
        peers_check "$P_JSON" "$P_SSE" && return 0
        kill -0 "$TARGET_PID" 2>/dev/null || break
        sleep 0.25
    done
    echo "error: $name did not answer on 127.0.0.1:$P_JSON; its log ($dir/out.log) ends:" >&2
    tail -n 20 "$dir/out.log" >&2
    peers_stop "$TARGET_PID"
    return 1
}

# peers_wrk PORT BODY CONNECTIONS SECONDS: one wrk run; prints its `WRK` JSON (empty on failure).
peers_wrk() {
    PEERS_BODY="$PEERS_DIR/$2" timeout "$(($4 + 15))" taskset -c "$CLIENT_CPU" \
        wrk -t1 -c"$3" -d"$4"s --timeout 10s -s "$PEERS_DIR/wrk.lua" \
        "http://127.0.0.1:$1/v1/chat/completions" 2>&1 | sed -n 's/^WRK //p' || true
}
