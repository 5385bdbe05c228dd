# Shell helpers shared by the benchmark scripts (sourced, not run).
#
# PIDS holds the processes a script started; stop_started kills and reaps them (call it from
# the script's EXIT trap). wait_for_line waits for a started process to log a line.
# need_tools and out_dir are the checks and the output folder every script starts with.

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

# need_tools SCRIPT DIR BUILD NAME...: exits 2 unless every NAME is an executable in DIR (saying
# to run BUILD, or to pass --bin-dir) and python3 is there.
need_tools() {
    local script="$1" dir="$2" build="$3" b
    shift 3
    for b in "$@"; do
        if [ ! -x "$dir/$b" ]; then
            echo "$script: $dir/$b not found: run '$build' (or pass --bin-dir)" >&2
            exit 2
        fi
    done
    command -v python3 >/dev/null || { echo "$script: needs python3" >&2; exit 2; }
}

# out_dir DIR: creates DIR and prints its absolute path.
out_dir() {
    mkdir -p "$1"
    (cd "$1" && pwd)
}
