# Shell helpers shared by the benchmark scripts (sourced, not run).
#
# PIDS holds the processes a script started; stop_started kills and reaps them (call it from
# the script's EXIT trap). wait_for_line waits for a started process to log a line.

PIDS=()

# stop_started: kills every process in PIDS and waits for each.
stop_started() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}

# wait_for_line FILE PID REGEX [SECONDS]: waits (SECONDS, default 20, at most) until FILE has a
# line matching REGEX and prints that line; fails if PID exits first.
wait_for_line() {
    local file="$1" pid="$2" re="$3" seconds="${4:-20}" line i
    for ((i = 0; i < seconds * 20; i++)); do
        if line="$(grep -E -m1 -- "$re" "$file" 2>/dev/null)"; then
            printf '%s\n' "$line"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "process $pid exited before printing /$re/; its output:" >&2
            cat "$file" >&2 || true
            return 1
        fi
        sleep 0.05
    done
    echo "timed out waiting for /$re/ in $file" >&2
    return 1
}
