#!/usr/bin/env bash
# Runs infergate-control in the foreground on the release example (control.yaml), reading the
# GPUs of the fake NVML library with scenario.yaml. It does not build: it runs the newer of
# target/release/infergate-control and target/debug/infergate-control, each with the fake NVML
# library built beside it. Extra arguments go to `infergate-control run`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cd "$root"
BIN=
for dir in target/release target/debug; do
  if [ -x "$dir/infergate-control" ] && [ -f "$dir/libinfergate_fake_nvml.so" ] &&
    { [ -z "$BIN" ] || [ "$dir/infergate-control" -nt "$BIN/infergate-control" ]; }; then
    BIN="$root/$dir"
  fi
done
if [ -z "$BIN" ]; then
  echo "no infergate-control and libinfergate_fake_nvml.so in target/release or target/debug;" \
    "build them first (cargo build --release)" >&2
  exit 1
fi
export INFERGATE_FAKE_NVML_SCENARIO="$here/scenario.yaml"
exec "$BIN/infergate-control" run --config config/examples/release/control.yaml \
  --nvml-library "$BIN/libinfergate_fake_nvml.so" "$@"
