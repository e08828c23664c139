#!/usr/bin/env bash
# Boot figures on the emulated Xen ARM board, issue #3 deliverable 6 and issue #16 item 7.
# Run by hand from anywhere in the repo; not part of `cargo test`:
#
#   BOARD=cubieboard2 bench/xen-boot/run.sh      # or qemu-virt, qemu-virt-gicv2
#
# 1. In ONE boot of the board (xen-boot, src/main.rs), one after the other:
#    a. examples/hello (dist/hello.xen, built here) with `--uni-boot-info --uni-timestamps`,
#       three times (hello, hello2, hello3),
#    b. the rig's Linux armhf domU (tests/tools/linux-guest.sh: armmp-lpae zImage + busybox
#       initramfs, no vif), whose /init prints "LINUX UP" and powers off;
#    and prints one markdown table row per guest:
#    image bytes | xl create -> first console output | xl create -> app start | guest clock to app start
#    Times "after xl create" are dom0's clock (host wall time under QEMU TCG), sampled every 20 ms.
# 2. hello's boot stages (`--uni-boot-info`: each stage's own microseconds, guest clock).
# 3. In a second board session, examples/static-website with `--uni-boot-info --uni-timestamps`,
#    stopped once both its sockets listen: the guest clock at each milestone up to the HTTPS socket listening (vif connected, DHCP lease, entropy ready, the
#    TLS certificate and key loaded, its server config built, listening on port 443).
# The issue's goal: <= 10000 us from the first instruction to hello's start, and to
# static-website's listening HTTPS socket.
set -euo pipefail
# BOARD: the board to build for and boot on its emulation (qemu-virt, cubieboard2 → qemu-virt32,
# qemu-virt-gicv2); it is named in every result row.
BOARD=${BOARD:-qemu-virt}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=${BENCH_DIR:-/tmp/uni-bench-xen-boot}
mkdir -p "$W"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
GOAL_US=10000

echo "== building hello and static-website for xen-arm" >&2
(cd "$ROOT/examples/hello" && cargo run -q -p mirage-cli -- build --target xen-arm --board "$BOARD" >&2)
(cd "$ROOT/examples/static-website" && cargo run -q -p mirage-cli -- build --target xen-arm --board "$BOARD" >&2)
UNI=$CARGO_TARGET_DIR/debug/uni
cp "$ROOT/examples/hello/dist/hello.xen" "$W/hello.xen"
sed -e '/^kernel *=/d' -e '/^extra *=/d' "$ROOT/examples/hello/dist/hello.xl" > "$W/hello.xl"
printf 'kernel = "hello.xen"\nextra = "--uni-boot-info --uni-timestamps"\n' >> "$W/hello.xl"
# hello three times (the guest clock under TCG is noisy): hello.xl, hello2.xl, hello3.xl
cp "$W/hello.xl" "$W/hello2.xl"
cp "$W/hello.xl" "$W/hello3.xl"

echo "== building the Linux armhf domU" >&2
"$ROOT/tests/tools/linux-guest.sh" "$W/linux"

echo "== building xen-boot" >&2
# its own workspace: its own target directory
BT=${XEN_BOOT_TARGET_DIR:-$CARGO_TARGET_DIR/xen-boot}
CARGO_TARGET_DIR=$BT cargo build -q --release --manifest-path "$ROOT/bench/xen-boot/Cargo.toml"
BIN=$BT/release/xen-boot

echo "== one board session: hello three times, then linux" >&2
cd "$W"
set +e
"$BIN" --board "$BOARD" --timeout "${TIMEOUT:-400}" hello.xl=hello hello2.xl=hello hello3.xl=hello \
  linux/linux-boot.xl="LINUX UP" | tee run.out
set -e

echo "== a second board session: static-website, until it listens" >&2
rm -f website.out
(cd "$ROOT/examples/static-website" &&
  exec "$UNI" run --target xen-arm --board "$BOARD" --no-build --timeout "${WEBSITE_TIMEOUT:-180}" \
    -- --uni-boot-info --uni-timestamps) > website.out 2> website.err &
UPID=$!
while kill -0 "$UPID" 2>/dev/null && ! grep -q 'http: listening' website.out; do sleep 0.5; done
kill -INT "$UPID" 2>/dev/null || true
wait "$UPID" || true

size() { stat -c %s "$1"; }
row() { # name image
  local r; r=$(grep "^result board=$BOARD name=$1 " run.out || true)
  local f m g o
  f=$(sed -n 's/.* first_output_s=\([^ ]*\).*/\1/p' <<<"$r"); m=$(sed -n 's/.* marker_s=\([^ ]*\).*/\1/p' <<<"$r")
  g=$(sed -n 's/.* app_start_guest_us=\([^ ]*\).*/\1/p' <<<"$r"); o=$(sed -n 's/.* outcome=\([^ ]*\).*/\1/p' <<<"$r")
  printf '| %s | %s | %s | %s s | %s s | %s | %s |\n' "$BOARD" "$1" "$(size "$2")" "${f:--}" "${m:--}" "${g:--}" "${o:--}"
}
met() { # us → "met" / "not met"
  if [ -n "$1" ] && [ "$1" != - ] && [ "$1" -le "$GOAL_US" ]; then echo met; else echo "not met"; fi
}
# the guest clock (us) of the first console line of $2 that contains $1, from its [ s.us ] stamp
stamp_us() {
  local l; l=$(grep -F -m1 -- "$1" "$2" || true)
  sed -n 's/^\[ *\([0-9]*\)\.\([0-9]\{6\}\)\].*/\1\2/p' <<<"$l" | sed 's/^0*\([0-9]\)/\1/'
}
# the "at N us" of a `uni: boot: <what> at N us` milestone line
milestone_us() { sed -n "s/.*uni: boot: $1 at \([0-9]*\) us.*/\1/p" "$2" | head -1; }

echo
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before: $LOAD"
echo "| board | guest | image bytes | xl create → first console output | xl create → app start | guest clock: first instruction → app start (us) | ended |"
echo "|---|---|---|---|---|---|---|"
row hello hello.xen
row hello2 hello.xen
row hello3 hello.xen
row linux-boot linux/zImage

echo
echo "hello's boot stages, $BOARD (guest clock; each stage's own us, then the app's start since the first instruction), one row per boot:"
grep 'uni: boot stages' run.out | head -1 | sed 's/.*): //; s/ [0-9]* ([0-9]*)//g' | tr ',' '\n' | sed 's/^ *//; /^app start$/d' |
  { printf '| board |'; while read -r n; do printf ' %s |' "$n"; done; printf ' app start (us) | goal ≤ %s us |\n' "$GOAL_US"; }
printf '|---|'; for _ in $(seq 1 11); do printf -- '---:|'; done; printf -- '---|\n'
grep 'uni: boot stages' run.out | sed 's/.*): //' | while read -r STAGES; do
  APP=$(tr ',' '\n' <<<"$STAGES" | sed -n 's/^ *app start \([0-9]*\) .*/\1/p')
  printf '| %s |' "$BOARD"; tr ',' '\n' <<<"$STAGES" | sed -n 's/.* [0-9]* (\([0-9]*\))$/\1/p' | head -10 | while read -r v; do printf ' %s |' "$v"; done
  printf ' %s | %s |\n' "${APP:--}" "$(met "${APP:-}")"
done

echo
echo "static-website's boot to its listening HTTPS socket, $BOARD (guest clock, us since the first instruction):"
W_APP=$(sed -n 's/.*uni: app started after \([0-9]*\) us.*/\1/p' website.out | head -1)
W_VIF=$(milestone_us 'vif 0 connected' website.out)
W_DHCP=$(stamp_us '(DHCP) on' website.out)
W_RNG=$(milestone_us 'first [0-9]* random bytes' website.out)
W_KEY=$(milestone_us 'tls: certificate and key loaded' website.out)
W_CFG=$(milestone_us 'tls: server config built' website.out)
W_443=$(milestone_us 'listening on port 443' website.out)
echo "| board | app start | vif 0 connected | DHCP lease | first random bytes (entropy calibrated and read) | TLS certificate and key loaded | TLS server config built | listening on port 443 | goal ≤ $GOAL_US us |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
echo "| $BOARD | ${W_APP:--} | ${W_VIF:--} | ${W_DHCP:--} | ${W_RNG:--} | ${W_KEY:--} | ${W_CFG:--} | ${W_443:--} | $(met "${W_443:-}") |"
