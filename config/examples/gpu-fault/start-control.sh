#!/usr/bin/env bash
# Builds the workspace (infergate-control and the fake NVML library among it), then runs
# control in the foreground on scenario.yaml: GPU 1 of node-a reports XID 79 three seconds
# after start.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cd "$root"
# The whole workspace, exactly what `cargo build --release` builds: a build of some packages
# (-p) turns crate features on differently (tokio-rustls's `ring` comes from the gateway) and
# would recompile after a full build.
cargo build --release --locked
export INFERGATE_FAKE_NVML_SCENARIO="$here/scenario.yaml"
# The library path goes through the config's gpu.library; here it is passed on the side.
exec target/release/infergate-control run --config "$here/control.yaml" \
  --nvml-library "$root/target/release/libinfergate_fake_nvml.so" "$@"
