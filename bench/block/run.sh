#!/usr/bin/env bash
# Block device figures on the emulated Xen ARM board, issue #14: uni's blkfront against the
# Linux domU's xen-blkfront, on the same board, in the same session. Run by hand from anywhere
# in the repo; not part of `cargo test`:
#
#   BOARD=cubieboard2 bench/block/run.sh
#
# In ONE boot of the board it runs, one after the other, ROUNDS times (block-bench, src/main.rs):
#   1. bench/block/app (dist/blkbench.xen, built here): uni's Block over blkfront;
#   2. the rig's Linux armhf domU (tests/tools/linux-guest.sh's zImage and busybox initramfs),
#      with bench/block/linux (a static ARM program, O_DIRECT on /dev/xvda, fdatasync as the
#      flush) and xen-blkfront.ko added to its initramfs, and an /init that runs it;
# each on a disk image of its own, DISK_MIB MiB of the same random bytes, in $BENCH_DIR, which
# the board attaches as a virtio disk of dom0 and blkback serves to the guest. Both do the same
# four workloads with the same offsets: SEQ_MIB MiB written (CHUNK_KIB KiB per transfer, then
# one flush) and read back, OPS random 4 KiB reads, OPS random 4 KiB writes each followed by a
# flush (each random workload stops after SECS seconds), timed with the guest's monotonic clock.
# It prints the guests' consoles, `result` lines and a markdown table for bench/README.md.
#
# Environment: BOARD (qemu-virt; cubieboard2 → qemu-virt32, qemu-virt-gicv2), SEQ_MIB (16),
# CHUNK_KIB (1024), OPS (2000), SECS (60), SEED (1), DISK_MIB (64), ROUNDS (3: the guests
# alternate, uni first, each booting ROUNDS times on its own image), TIMEOUT (1500),
# BENCH_DIR (/tmp/uni-bench-block), and on a shared machine HEAVY_LOCK / BOARD_LOCK: lock files
# that the builds / the board session run under (`flock`).
set -euo pipefail
BOARD=${BOARD:-qemu-virt}
SEQ_MIB=${SEQ_MIB:-16} CHUNK_KIB=${CHUNK_KIB:-1024} OPS=${OPS:-2000} SECS=${SECS:-60}
SEED=${SEED:-1} DISK_MIB=${DISK_MIB:-64} ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=${BENCH_DIR:-/tmp/uni-bench-block}
mkdir -p "$W"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
HEAVY=(); [ -z "${HEAVY_LOCK:-}" ] || HEAVY=(flock "$HEAVY_LOCK")
LOCK=(); [ -z "${BOARD_LOCK:-}" ] || LOCK=(flock "$BOARD_LOCK")

echo "== building bench/block/app for xen-arm" >&2
APP=$ROOT/bench/block/app
# `uni build` needs the unikernel.toml's disk file to exist; the run uses its own images
[ -s "$APP/disk.img" ] || truncate -s 1M "$APP/disk.img"
(cd "$APP" && "${HEAVY[@]}" cargo run -q --manifest-path "$ROOT/Cargo.toml" -p mirage-cli -- build --target xen-arm --board "$BOARD" >&2)
cp "$APP/dist/blkbench.xen" "$W/blkbench.xen"

echo "== building bench/block/linux (armv7a-none-eabihf, a static Linux executable)" >&2
"${HEAVY[@]}" env RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$CARGO_TARGET_DIR/bench-block-linux" \
  cargo build -q --release --manifest-path "$ROOT/bench/block/linux/Cargo.toml" \
  --target armv7a-none-eabihf -Zbuild-std=core -Zbuild-std-features=compiler-builtins-mem
LBIN=$CARGO_TARGET_DIR/bench-block-linux/armv7a-none-eabihf/release/blkbench-linux

echo "== building the Linux armhf domU" >&2
"$ROOT/tests/tools/linux-guest.sh" "$W/linux"
# its initramfs, with xen-blkfront.ko (from the kernel package linux-guest.sh took: the newest),
# the program and a new /init appended as a second archive (the kernel unpacks both; later
# files replace earlier ones)
DEBS=${UNI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/uni}/linux-guest/debs
KDEB=$(ls -t "$DEBS"/linux-image-*-armmp-lpae_*_armhf.deb | head -1)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
dpkg-deb -x "$KDEB" "$T/k"
mkdir -p "$T/root/lib/modules" "$T/root/bin"
find "$T/k/lib/modules" -name xen-blkfront.ko -exec cp {} "$T/root/lib/modules/" \;   # no dependencies
[ -s "$T/root/lib/modules/xen-blkfront.ko" ] || { echo "run.sh: no xen-blkfront.ko in $KDEB" >&2; exit 1; }
cp "$LBIN" "$T/root/bin/blkbench"
cat > "$T/root/init" <<'S'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
echo "LINUX UP $(cut -d' ' -f1 /proc/uptime)s uname -r $(uname -r)"
insmod /lib/modules/xen-blkfront.ko
i=0; while [ ! -b /dev/xvda ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
# blkbench=SEQ_MIB,CHUNK_KIB,OPS,SECONDS,SEED on the kernel command line
set -- $(sed -n 's/.*blkbench=\([0-9,]*\).*/\1/p' /proc/cmdline | tr , ' ')
q=/sys/block/xvda/queue
echo "blkbench-linux: xvda $(cat /sys/block/xvda/size) sectors; scheduler $(cat $q/scheduler); max_sectors_kb $(cat $q/max_sectors_kb); max_segments $(cat $q/max_segments); write cache: $(cat $q/write_cache)"
dmesg | grep -i 'blkfront' | sed 's/^/blkbench-linux: dmesg: /'
/bin/blkbench /dev/xvda "$@"
# a cross-check of the sequential figures with busybox dd (one process, O_DIRECT)
# (Debian's busybox dd prints no rate: busybox time, 10 ms resolution)
n=$(($1 * 1024 / $2))
echo "blkbench-linux: dd write $1 MiB, bs=${2}k oflag=direct conv=fsync: $(time dd if=/dev/zero of=/dev/xvda bs=${2}k count=$n oflag=direct conv=fsync 2>&1 | grep real)"
echo "blkbench-linux: dd read $1 MiB, bs=${2}k iflag=direct: $(time dd if=/dev/xvda of=/dev/null bs=${2}k count=$n iflag=direct 2>&1 | grep real)"
poweroff -f
S
chmod +x "$T/root/init" "$T/root/bin/blkbench"
(cd "$T/root" && find . | cpio -o -H newc --quiet | gzip -9) > "$T/extra.gz"
cat "$W/linux/initrd.gz" "$T/extra.gz" > "$W/linux/initrd-blk.gz"

echo "== disk images and xl files" >&2
cd "$W"
head -c $((DISK_MIB << 20)) /dev/urandom > uni.img
cp uni.img linux.img
sync uni.img linux.img
ARGS="--seq-mib=$SEQ_MIB --chunk-kib=$CHUNK_KIB --ops=$OPS --seconds=$SECS --seed=$SEED"
# both guests on pCPU 1, one vCPU each, as in bench/net
sed -e '/^kernel *=/d' -e '/^extra *=/d' -e '/^cpus *=/d' -e '/^disk *=/d' "$APP/dist/blkbench.xl" > blkbench.xl
cat >> blkbench.xl <<X
kernel = "blkbench.xen"
extra = "$ARGS"
cpus = "1"
disk = [ 'format=raw, vdev=xvda, access=rw, target=$W/uni.img' ]
X
cat > linux/linux-blk.xl <<X
name    = "linux-blk"
kernel  = "zImage"
ramdisk = "initrd-blk.gz"
memory  = 128
vcpus   = 1
cpus    = "1"
extra   = "console=hvc0 rdinit=/init quiet oops=panic panic=-1 blkbench=$SEQ_MIB,$CHUNK_KIB,$OPS,$SECS,$SEED"
disk    = [ 'format=raw, vdev=xvda, access=rw, target=$W/linux.img' ]
X

echo "== building block-bench" >&2
# its own workspace: its own target directory
BT=${BLOCK_BENCH_TARGET_DIR:-$CARGO_TARGET_DIR/block-bench}
"${HEAVY[@]}" env CARGO_TARGET_DIR="$BT" cargo build -q --release --manifest-path "$ROOT/bench/block/Cargo.toml"

echo "== one board session: blkbench, then linux-blk, $ROUNDS times" >&2
GUESTS=()
for _ in $(seq "$ROUNDS"); do GUESTS+=("blkbench.xl=blkbench: done" "linux/linux-blk.xl=blkbench: done"); done
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); disk images on $(df --output=fstype "$W" | tail -1) ($(df --output=source,target "$W" | tail -1 | xargs)); commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' (with local changes)')"
echo "workloads: $ARGS, disks of $DISK_MIB MiB, $ROUNDS rounds"
set +e
"${LOCK[@]}" bash -c 'echo "load before: $(cut -d" " -f1-3 /proc/loadavg)"; exec "$@"' _ \
  "$BT/release/block-bench" --board "$BOARD" --timeout "${TIMEOUT:-1500}" "${GUESTS[@]}" | tee run.out
rc=${PIPESTATUS[0]}
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$rc"
