#!/usr/bin/env bash
# Builds a Linux armhf domU as a guest for uni's emulated board (boards/qemu-virt):
# Debian's armmp-lpae zImage plus a tiny busybox initramfs.
# It is the reference the unikernels are compared with (bench/xen-boot) and a stand-in server
# for testing the board's network before a unikernel has one.
#
#   tests/tools/linux-guest.sh OUT
#
# writes OUT/zImage, OUT/initrd.gz and two xl files (kernel/ramdisk relative to OUT):
#   OUT/linux-boot.xl  no vif. /init prints "LINUX UP", then powers the domain off.
#   OUT/linux-net.xl   one vif. /init loads xen-netfront, asks the board's udhcpd for an address
#                      (udhcpc), prints "LINUX NET UP <ip>", and serves until destroyed or quit:
#                      busybox httpd on port 80 (GET / answers "hello from the Linux domU"),
#                      and, as bench/net/app does on a unikernel, TCP echo on port 7
#                      (nc -ll -e cat), discard on port 9 (answers the byte count at the end,
#                      nc -ll -e wc -c), source on port 19 (a line "N" in, N zero bytes out)
#                      and quit on port 99 (the first connection powers the domain off).
# A kernel oops panics and reboots the domain (oops=panic panic=-1), which the board reports as
# "asked to reboot" instead of waiting for a hung guest until its timeout. The domU's vCPU is
# pinned to pCPU 1 (cpus = "1"): on the emulated board, floating between pCPUs it oopsed early in
# most boots and pinned it has not (bench/README.md, net).
# The xl files run with `emu::run_guests` (bench/xen-boot) or `xl create` in any ARM dom0.
#
# The Debian packages (armhf: linux-image-armmp-lpae's kernel, busybox-static) are downloaded once
# with apt-get into ${UNI_CACHE_DIR:-~/.cache/uni}/linux-guest/ (no root needed, the host's apt
# setup is untouched). Needs apt-get, dpkg-deb, cpio, gzip.
set -euo pipefail

OUT=${1:?usage: $0 OUT}
C=${UNI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/uni}/linux-guest
DEBS=$C/debs
mkdir -p "$OUT" "$DEBS" "$C/apt/lists/partial" "$C/apt/cache/archives/partial"
for t in apt-get dpkg-deb cpio gzip; do
  command -v $t >/dev/null || { echo "$0: $t not found (apt-get install apt dpkg cpio gzip)" >&2; exit 1; }
done

cat > "$C/apt/sources.list" <<'L'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
L
APT=(-oAPT::Architecture=armhf -oAPT::Architectures=armhf -oDir::State::Lists="$C/apt/lists"
     -oDir::Cache="$C/apt/cache" -oDir::Etc::SourceList="$C/apt/sources.list"
     -oDir::Etc::SourceParts=/dev/null -oDir::State::status=/dev/null -oAcquire::Languages=none
     -oAPT::Sandbox::User=root -qq)
have() { ls "$DEBS"/"$1"_*_armhf.deb >/dev/null 2>&1; }
if ! have busybox-static || ! ls "$DEBS"/linux-image-*-armmp-lpae_*_armhf.deb >/dev/null 2>&1; then
  echo "linux-guest: downloading armhf packages (about 45 MB, once)" >&2
  apt-get "${APT[@]}" update >&2
  kver=$(apt-cache "${APT[@]}" depends linux-image-armmp-lpae | sed -n 's/.*Depends: \(linux-image-6[^ ]*\)$/\1/p' | head -1)
  [ -n "$kver" ] || { echo "linux-guest: cannot resolve linux-image-armmp-lpae" >&2; exit 1; }
  (cd "$DEBS" && apt-get "${APT[@]}" download busybox-static "$kver")
fi
KDEB=$(ls -t "$DEBS"/linux-image-*-armmp-lpae_*_armhf.deb | head -1)
BDEB=$(ls -t "$DEBS"/busybox-static_*_armhf.deb | head -1)

W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
dpkg-deb -x "$KDEB" "$W/k"
dpkg-deb -x "$BDEB" "$W/bb"
cp "$(ls "$W"/k/boot/vmlinuz-* | head -1)" "$OUT/zImage"

G=$W/root; mkdir -p $G/{bin,proc,sys,dev,tmp,www,lib/modules}
cp $W/bb/bin/busybox $G/bin/busybox
find "$W/k/lib/modules" -name 'xen-netfront.ko' -exec cp {} $G/lib/modules/ \;   # no dependencies
echo 'hello from the Linux domU' > $G/www/index.html
cat > $G/bin/dhcp-script <<'S'
#!/bin/busybox sh
case "$1" in
bound|renew)
  ip addr flush dev "$interface"
  ip addr add "$ip/${mask:-24}" dev "$interface"
  [ -z "$router" ] || ip route add default via "${router%% *}" 2>/dev/null
  echo "$ip" > /tmp/ip ;;
esac
S
cat > $G/bin/source <<'S'
#!/bin/busybox sh
read n; head -c "$n" /dev/zero
S
cat > $G/init <<'S'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
echo "LINUX UP $(cut -d' ' -f1 /proc/uptime)s uname -m $(uname -m)"
case " $(cat /proc/cmdline) " in
*" uni.mode=serve "*)
  insmod /lib/modules/xen-netfront.ko
  i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  ip link set lo up; ip link set eth0 up
  udhcpc -i eth0 -s /bin/dhcp-script -t 20 -T 1 -n -q >/tmp/udhcpc.log 2>&1 || cat /tmp/udhcpc.log
  httpd -p 80 -h /www
  nc -ll -p 7 -e /bin/cat &
  nc -ll -p 9 -e /bin/wc -c &
  nc -ll -p 19 -e /bin/source &
  (nc -l -p 99 -e /bin/true; echo "LINUX QUIT"; poweroff -f) &
  echo "LINUX NET UP $(cat /tmp/ip 2>/dev/null) $(cat /sys/class/net/eth0/address)"
  while true; do sleep 3600; done ;;
*)
  poweroff -f ;;
esac
S
chmod +x $G/init $G/bin/dhcp-script $G/bin/source
(cd $G && find . | cpio -o -H newc --quiet | gzip -9) > "$OUT/initrd.gz"

cat > "$OUT/linux-boot.xl" <<'X'
name    = "linux"
kernel  = "zImage"
ramdisk = "initrd.gz"
memory  = 128
vcpus   = 1
cpus    = "1"
extra   = "console=hvc0 rdinit=/init oops=panic panic=-1 uni.mode=boot"
X
cat > "$OUT/linux-net.xl" <<'X'
name    = "linux"
kernel  = "zImage"
ramdisk = "initrd.gz"
memory  = 128
vcpus   = 1
cpus    = "1"
extra   = "console=hvc0 rdinit=/init quiet oops=panic panic=-1 uni.mode=serve"
vif     = [ 'bridge=xenbr0' ]
X
echo "linux-guest: $OUT/zImage ($(stat -c %s "$OUT/zImage") bytes, $(basename "$KDEB")), $OUT/initrd.gz ($(stat -c %s "$OUT/initrd.gz") bytes)" >&2
