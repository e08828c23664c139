#!/usr/bin/env bash
# The Xen figures of the website bench (issue #6, deliverable 5), on the emulated Xen ARM board
# (boards/qemu-virt: QEMU TCG, Xen 4.17 arm64, arm64 dom0, the guests in AArch32). Run by hand;
# not part of `cargo test`. Needs curl and readelf (binutils); no root: the board's LAN, and
# every fetch, stay inside a network namespace that the driver makes for itself.
#
#   bench/website/xen.sh [MIB...]        default sizes: 32 16 8 4 3 2 1
#   EXAMPLES="hello echo" bench/website/xen.sh 4 3 2     other examples too (default: none)
#
# 1. builds examples/static-website for xen-arm and prints the size of dist/static-website.xen
#    (a flat image, zImage header, no symbols) and of the ELF sections it was made from;
# 2. builds the rig's Linux armhf domU (tests/tools/linux-guest.sh) and the driver
#    (bench/website/xen, its own workspace);
# 3. in ONE session of the board (bench/website/xen/src/main.rs): the Linux domU (no vif; it
#    prints LINUX UP at /init and powers off), then static-website once per size, its xl file's
#    `memory=` set to MIB, while the host fetches https://10.0.0.2/ from each guest over the
#    board's TAP with `curl --cacert examples/static-website/pki/ca.pem`; then each example
#    of $EXAMPLES once per size, working once its console shows its marker (below: the line it
#    prints when it is up). A script in dom0 destroys each guest 2 s after its marker (for
#    static-website: the request) or after a time limit, so the run ends by itself. The
#    smallest size at which a guest works is the example's smallest working `memory=`.
# Times "after xl create" are dom0's clock (host wall time under QEMU TCG), sampled every 20 ms.
# The board must not run twice at once: on a shared machine, BOARD_LOCK=/tmp/uni-qemu.lock (or
# whatever lock its users agreed on) runs the board session under `flock $BOARD_LOCK`; the
# builds stay outside the lock.
set -euo pipefail
# BOARD: the board to build for and boot on its emulation (qemu-virt, cubieboard2 → qemu-virt32,
# qemu-virt-gicv2); it is named in every result row.
BOARD=${BOARD:-qemu-virt}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=${BENCH_DIR:-/tmp/uni-bench-website-xen}
SIZES=("$@"); [ ${#SIZES[@]} -gt 0 ] || SIZES=(32 16 8 4 3 2 1)
mkdir -p "$W"
EX=$ROOT/examples/static-website

echo "== building static-website for xen-arm" >&2
# (uni builds into CARGO_TARGET_DIR when it is set, else into the example's _build/target)
(cd "$EX" && cargo run -q -p mirage-cli -- build --target xen-arm --board "$BOARD" >&2)
XEN=$EX/dist/static-website.xen
ELF=${CARGO_TARGET_DIR:-$EX/_build/target}/armv7a-none-eabihf/release/static-website

# the console line that says an example works (lookup needs a DNS server and notes a disk,
# which this run does not give them)
marker() {
  case $1 in
  hello) echo "world" ;;
  echo) echo "echo: listening on" ;;
  tls-echo) echo "tls-echo: listening on" ;;
  xeninfo) echo "boot argument: greeting" ;;
  crash) echo "crash: deliberate panic" ;;
  *) echo "xen.sh: no marker for example $1" >&2; exit 2 ;;
  esac
}
EXTRA=()
for e in ${EXAMPLES:-}; do
  m=$(marker "$e")
  echo "== building $e for xen-arm" >&2
  (cd "$ROOT/examples/$e" && cargo run -q -p mirage-cli -- build --target xen-arm --board "$BOARD" >&2)
  EXTRA+=(--example "$ROOT/examples/$e/dist/$e.xl" "$m")
done

echo "== building the Linux armhf domU" >&2
"$ROOT/tests/tools/linux-guest.sh" "$W/linux"

echo "== building the driver" >&2
BT=${WEBSITE_XEN_TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/website-xen}
CARGO_TARGET_DIR=$BT cargo build -q --release --manifest-path "$ROOT/bench/website/xen/Cargo.toml"
BIN=$BT/release/website-xen

echo "== one board session: linux, then static-website at ${SIZES[*]} MiB" >&2
cd "$W"
set +e
LOCK=(); [ -z "${BOARD_LOCK:-}" ] || LOCK=(flock "$BOARD_LOCK")
# the load average is taken once the board is ours, just before it boots
"${LOCK[@]}" bash -c 'cut -d" " -f1-3 /proc/loadavg > load-before; exec "$@"' _ "$BIN" --board "$BOARD" --timeout "${TIMEOUT:-1500}" --ca "$EX/pki/ca.pem" --linux linux/linux-boot.xl \
  --site "$EX/dist/static-website.xl" "${EXTRA[@]}" "${SIZES[@]}" | tee run.out
set -e
LOAD=$(cat load-before 2>/dev/null || echo "?")

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
# how a guest ended, in words: a static-website guest destroyed by the dom0 script after it served
# shows up as a "failed" xl create (xl -F saw no shutdown reason), which it was not
ended() {
  local v o; v=$(field verdict "$2"); o=$(field outcome "$2"); [ "$v" != - ] || v=
  # its marker seen: it worked (the dom0 script then destroyed it, or it ended by itself)
  if [ "$(field marker_s "$2")" != - ]; then v=served_; fi
  case $v in
  served_*)
    case $1 in
    static-website-*) echo "served; then destroyed by the bench" ;;
    *) echo "works (its marker line), then $o" | sed 's/did_not_boot.*/destroyed by the bench/; s/_/ /g' ;;
    esac ;;
  *) case $o in
     crashed) echo "crashed: $(grep "^console name=$1 " run.out | tail -n 1 | sed 's/^console name=[^ ]* | //')" ;;
     did_not_boot:*) echo "xl create failed: $(sed 's/.*xc_dom_alloc_pad:_//; s/;.*//; s/_/ /g' <<<"$o")" ;;
     *) echo "${o//_/ }${v:+ (${v//_/ })}" ;;
     esac ;;
  esac
}
echo
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before the boot: $LOAD; after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| file | bytes |"
echo "|---|---:|"
echo "| dist/static-website.xen (flat image, no symbols) | $(stat -c %s "$XEN") |"
if [ -f "$ELF" ] && command -v readelf >/dev/null; then
  # name size(hex) for the allocated sections
  readelf -SW "$ELF" | awk '$0 ~ /^ *\[ *[0-9]+\]/ { sub(/^ *\[ *[0-9]+\] */, ""); if ($1 != "" && $1 != "NULL" && $7 ~ /A/) print $1, $5, $2 }' |
    while read -r name hex type; do
      echo "| ELF $name${type:+ ($type)} | $((16#$hex)) |"
    done
  echo "| the ELF, with symbols | $(stat -c %s "$ELF") |"
fi
echo
echo "| guest | memory (MiB) | xl create → first console output | xl create → app ready | host: first 200 (curl time_total) | how it ended |"
echo "|---|---:|---:|---:|---:|---|"
while read -r r; do
  n=$(field name "$r"); [ -n "$n" ] || continue
  printf '| %s | %s | %s s | %s s | %s | %s |\n' "$n" "$(field memory "$r")" "$(field first_output_s "$r")" \
    "$(field marker_s "$r")" "$(field curl_time_total_s "$r")" "$(ended "$n" "$r")"
done < <(grep '^result board=' run.out)
