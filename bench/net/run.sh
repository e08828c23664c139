#!/usr/bin/env bash
# Network figures on the emulated Xen ARM board (boards/qemu-virt), issue #4 deliverable 6.
# Run by hand from anywhere in the repo, as any user; not part of `cargo test`. The board's LAN and
# every measurement stay inside a network namespace that net-bench makes for itself:
#
#   bench/net/run.sh [net-bench options: --mib N --repeat R --seconds S --timeout SECS]
#
# In ONE boot of the board it runs, one after the other (net-bench, src/main.rs):
#   1. bench/net/app (dist/netbench.xen, built here): smoltcp over uni's netfront, DHCP;
#   2. the rig's Linux armhf domU (tests/tools/linux-guest.sh, linux-net.xl): Linux's own
#      TCP/IP and xen-netfront, DHCP, the same services from busybox nc;
# and measures each from the host over the board's TAP device and bridge: TCP bulk throughput
# both ways and connections per second. It prints one markdown table row per guest for
# bench/README.md.
set -euo pipefail
# BOARD: the board to build for and boot on its emulation (qemu-virt, cubieboard2 → qemu-virt32,
# qemu-virt-gicv2); it is named in every result row.
BOARD=${BOARD:-qemu-virt}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=${BENCH_DIR:-/tmp/uni-bench-net}
mkdir -p "$W"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

echo "== building bench/net/app for xen-arm" >&2
(cd "$ROOT/bench/net/app" && cargo run -q --manifest-path "$ROOT/Cargo.toml" -p mirage-cli -- build --target xen-arm --board "$BOARD" >&2)

echo "== building the Linux armhf domU" >&2
"$ROOT/tests/tools/linux-guest.sh" "$W/linux"

echo "== building net-bench" >&2
# its own workspace: its own target directory
BT=${NET_BENCH_TARGET_DIR:-$CARGO_TARGET_DIR/net-bench}
CARGO_TARGET_DIR=$BT cargo build -q --release --manifest-path "$ROOT/bench/net/Cargo.toml"

echo "== one board session: netbench, then linux" >&2
cd "$W"
# Each guest gets pCPU 1 to itself and dom0 (netback, the bridge) pCPU 0: the xl files say
# cpus = "1" (linux-guest.sh's already do), and once the first guest exists dom0 takes its
# second vCPU offline and pins the first to pCPU 0 (DOM0_SETUP; two dom0 vCPUs sharing pCPU 0
# add scheduling latency).
sed -e '/^cpus *=/d' "$ROOT/bench/net/app/dist/netbench.xl" > netbench.xl
echo 'cpus = "1"' >> netbench.xl
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# Linux three times: the later boots are spares, measured only if the earlier ones did not
# come up (see bench/README.md)
L="linux/linux-net.xl=LINUX NET UP"
DOM0_SETUP=${DOM0_SETUP:-'echo 0 > /sys/devices/system/cpu/cpu1/online && xl vcpu-pin Domain-0 0 0 && xl vcpu-list'}
"$BT/release/net-bench" --board "$BOARD" --dom0-check "$DOM0_SETUP" "$@" \
  "netbench.xl=netbench: ready" "$L" "$L" "$L"
