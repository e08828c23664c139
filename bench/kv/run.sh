#!/usr/bin/env bash
# kv_rw on unix against SQLite, issue #14: durable sets, overwrites and gets of 1 KiB values,
# uni_kv::Store over the unix platform's file-backed Block against SQLite (WAL,
# synchronous=FULL), in the same directory, in the same run. Run by hand; not part of
# `cargo test`:
#
#   bench/kv/run.sh [--dir DIR] [--sets N] [--gets M] [--value-bytes B] [--disk-mib D] [--rounds R]
#
# DIR defaults to the system's temporary directory; the file system it is on is printed.
# HEAVY_LOCK=FILE runs the build under `flock FILE` (a shared machine).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
HEAVY=(); [ -z "${HEAVY_LOCK:-}" ] || HEAVY=(flock "$HEAVY_LOCK")
BT=${KV_BENCH_TARGET_DIR:-$CARGO_TARGET_DIR/kv-bench}
echo "== building kv-bench" >&2
"${HEAVY[@]}" env CARGO_TARGET_DIR="$BT" cargo build -q --release --manifest-path "$ROOT/bench/kv/Cargo.toml"
DIR=${TMPDIR:-/tmp}
for ((i = 1; i <= $#; i++)); do [ "${!i}" != --dir ] || { j=$((i + 1)); DIR=${!j}; }; done
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before: $(cut -d' ' -f1-3 /proc/loadavg); $DIR on $(df --output=fstype,source,target "$DIR" | tail -1 | xargs); commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
"$BT/release/kv-bench" "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
