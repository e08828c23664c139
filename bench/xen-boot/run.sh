#!/usr/bin/env bash
# Boot figures on the emulated Xen ARM board (boards/qemu-virt), issue #3 deliverable 6.
# Run by hand from anywhere in the repo; not part of `cargo test`:
#
#   bench/xen-boot/run.sh
#
# In ONE boot of the board it runs, one after the other (xen-boot, src/main.rs):
#   1. examples/hello (dist/hello.xen, built here) with the runtime's boot report argument,
#   2. the rig's Linux armhf domU (tests/tools/linux-guest.sh: armmp-lpae zImage + busybox
#      initramfs, no vif), whose /init prints "LINUX UP" and powers off,
# and prints one markdown table row per guest for bench/README.md:
#   image bytes | xl create -> first console output | xl create -> app start | guest clock to app start
# Times "after xl create" are dom0's clock (host wall time under QEMU TCG), sampled every 20 ms.
set -euo pipefail
# BOARD: the board to build for and boot on its emulation (qemu-virt, cubieboard2 → qemu-virt32,
# qemu-virt-gicv2); it is named in every result row.
BOARD=${BOARD:-qemu-virt}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=${BENCH_DIR:-/tmp/uni-bench-xen-boot}
mkdir -p "$W"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

echo "== building hello for xen-arm" >&2
(cd "$ROOT/examples/hello" && cargo run -q -p mirage-cli -- build --target xen-arm --board "$BOARD" >&2)
cp "$ROOT/examples/hello/dist/hello.xen" "$W/hello.xen"
# The runtime's boot report: --uni-boot-report ("uni: app started after N us (guest clock)") when
# this runtime has it, else --uni-boot-info ("... platform up in N us").
if grep -rq 'uni-boot-report' "$ROOT/runtime/src/platform/xen"; then ARG=--uni-boot-report; else ARG=--uni-boot-info; fi
sed -e '/^kernel *=/d' -e '/^extra *=/d' "$ROOT/examples/hello/dist/hello.xl" > "$W/hello.xl"
printf 'kernel = "hello.xen"\nextra = "%s"\n' "$ARG" >> "$W/hello.xl"

echo "== building the Linux armhf domU" >&2
"$ROOT/tests/tools/linux-guest.sh" "$W/linux"

echo "== building xen-boot" >&2
# its own workspace: its own target directory
BT=${XEN_BOOT_TARGET_DIR:-$CARGO_TARGET_DIR/xen-boot}
CARGO_TARGET_DIR=$BT cargo build -q --release --manifest-path "$ROOT/bench/xen-boot/Cargo.toml"
BIN=$BT/release/xen-boot

echo "== one board session: hello, then linux" >&2
cd "$W"
set +e
"$BIN" --board "$BOARD" --timeout "${TIMEOUT:-400}" hello.xl=hello linux/linux-boot.xl="LINUX UP" | tee run.out
set -e
size() { stat -c %s "$1"; }
row() { # name image
  local r; r=$(grep "^result board=$BOARD name=$1 " run.out || true)
  local f m g o
  f=$(sed -n 's/.* first_output_s=\([^ ]*\).*/\1/p' <<<"$r"); m=$(sed -n 's/.* marker_s=\([^ ]*\).*/\1/p' <<<"$r")
  g=$(sed -n 's/.* app_start_guest_us=\([^ ]*\).*/\1/p' <<<"$r"); o=$(sed -n 's/.* outcome=\([^ ]*\).*/\1/p' <<<"$r")
  printf '| %s | %s | %s | %s s | %s s | %s | %s |\n' "$BOARD" "$1" "$(size "$2")" "${f:--}" "${m:--}" "${g:--}" "${o:--}"
}
echo
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| board | guest | image bytes | xl create → first console output | xl create → app start | guest clock: first instruction → app start (us) | ended |"
echo "|---|---|---|---|---|---|---|"
row hello hello.xen
row linux-boot linux/zImage
