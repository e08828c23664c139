#!/bin/busybox sh
# dom0 /init of the qemu-virt board. mirage-cli/src/emu puts it into the dom0 initramfs.
#
# It starts the xl toolstack, creates the one guest described by /guest/run.env, copies the
# guest's console to the serial line and reports how the guest ended. Every line meant for the
# host starts with "@@uni:" followed by a tag. The host parser is mirage-cli/src/emu/serial.rs.
#   @@uni:s <text>              dom0 progress ("dom0 up", "guest created domid=1", ...)
#   @@uni:g <text>              one line of the guest's console, in order
#   @@uni:x <text>              one line of `xl create`'s log, printed when the create failed
#   @@uni:d <text>              diagnostics: xl dmesg and xenctx, for a crash or a silent guest
#   @@uni:end <reason> <detail> the last line. <reason> is one of: poweroff reboot suspend crash
#                               watchdog soft_reset (the guest's shutdown code), create-failed
#                               (xl create failed), dom0-failed (the toolstack did not come up)
# Every @@uni:g line is printed before @@uni:end.
#
# Facts from the proven rig (xen-rig/NOTES.md): call the real tools in /usr/lib/xen-4.17/bin,
# not Debian's wrappers; /var/run is /run on a tmpfs; xen-init-dom0 runs after xenstored;
# xenconsoled --log=guest is the only place a domU's console shows up; the hotplug scripts
# are bash; busybox has no `sed -u` and no `brctl show`.

/bin/busybox --install -s /bin
export PATH=/usr/lib/xen-4.17/bin:/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/lib/aarch64-linux-gnu:/usr/lib/aarch64-linux-gnu:/usr/lib/xen-4.17/lib/aarch64-linux-gnu

s() { echo "@@uni:s $*"; }
end() {
	echo "@@uni:end $*"
	poweroff -f
	sleep 60
}
fail() {
	s "dom0 failed: $*"
	end dom0-failed "$*"
}
# diag FILE...: print files as diagnostic lines
diag() { cat "$@" 2>/dev/null | while IFS= read -r l; do echo "@@uni:d $l"; done; }

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/xen /run/xenstored /var/log/xen/console /var/lib/xen
s "dom0 up: $(uname -r) $(uname -m)"

# NAME (the domain name, from the xl file) and CFG (the xl file), written by the host per run.
. /guest/run.env || fail "no /guest/run.env"

for m in $(cat /lib/modules/order); do
	insmod /lib/modules/$m || fail "insmod $m"
done
mount -t xenfs xenfs /proc/xen || fail "mount xenfs"

xenstored --pid-file /run/xen/xenstored.pid || fail "xenstored"
i=0
while ! xenstore-read / >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "xenstored does not answer"
	sleep 0.1
done
xen-init-dom0 >/tmp/xen-init-dom0.log 2>&1 || { diag /tmp/xen-init-dom0.log; fail "xen-init-dom0"; }
xenconsoled --pid-file=/run/xen/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console ||
	fail "xenconsoled"

ip link add name xenbr0 type bridge stp_state 0 forward_delay 0 || fail "bridge xenbr0"
ip addr add 10.0.0.1/24 dev xenbr0
ip link set xenbr0 up
s "toolstack up; bridge xenbr0 10.0.0.1/24"

# The guest console: xenconsoled appends everything the guest writes to $L. A reader copies it
# to serial line by line until it meets the end line that this script appends once the guest
# has shut down.
L=/var/log/xen/console/guest-$NAME.log
EOF_LINE="@@uni-console-end@@"
: >"$L"
mkfifo /tmp/console
tail -n +1 -f "$L" >/tmp/console &
TAIL=$!
while IFS= read -r l; do
	case "$l" in
	*"$EOF_LINE"*)
		l=${l%%"$EOF_LINE"*}
		[ -z "$l" ] || echo "@@uni:g $l"
		break
		;;
	esac
	echo "@@uni:g $l"
done </tmp/console &
READER=$!

# drain: wait for the reader to reach the end line (at most 10 s), then stop tail
drain() {
	(
		sleep 10
		kill $READER
	) 2>/dev/null &
	wait $READER
	kill $TAIL
}

# -F keeps xl in the foreground: it returns when the domain shuts down and says why.
s "xl create $CFG"
xl -vvv create -F "$CFG" >/tmp/xl.log 2>&1 &
XL=$!
DOMID=
while kill -0 $XL 2>/dev/null; do
	if [ -z "$DOMID" ]; then
		DOMID=$(sed -n 's/^Waiting for domain .* (domid \([0-9]*\)) to die.*/\1/p' /tmp/xl.log)
		[ -z "$DOMID" ] || s "guest created domid=$DOMID"
	fi
	sleep 0.2
done
wait $XL
RC=$?

CODE=$(sed -n 's/^Domain [0-9]* has shut down, reason code \([0-9]*\) .*/\1/p' /tmp/xl.log | head -n 1)
if [ -z "$CODE" ]; then
	# the domain was never built, or xl died: its log says why
	grep -v ': debug: ' /tmp/xl.log | while IFS= read -r l; do echo "@@uni:x $l"; done
	echo "$EOF_LINE" >>"$L"
	drain
	end create-failed "xl create exited with status $RC"
fi
case $CODE in
0) REASON=poweroff ;;
1) REASON=reboot ;;
2) REASON=suspend ;;
3) REASON=crash ;;
4) REASON=watchdog ;;
5) REASON=soft_reset ;;
*) REASON=unknown ;;
esac
s "guest shut down: code $CODE ($REASON)"

# The domain is preserved (the host set on_* = "preserve"), so its console ring is intact.
# Let xenconsoled write out what is left, then close the log with the end line.
prev=-1
size=$(stat -c %s "$L")
while [ "$size" != "$prev" ]; do
	prev=$size
	sleep 0.3
	size=$(stat -c %s "$L")
done
if [ -n "$(tail -c 1 "$L")" ]; then
	printf '\n%s\n' "$EOF_LINE" >>"$L"
else
	echo "$EOF_LINE" >>"$L"
fi
drain
s "console drained"

if [ "$REASON" != poweroff ] || [ "$size" = 0 ]; then
	xl dmesg 2>/dev/null | grep -E "d${DOMID:-1}v|\(d${DOMID:-1}\)" | tail -n 40 |
		while IFS= read -r l; do echo "@@uni:d $l"; done
	[ -z "$DOMID" ] || xenctx -a "$DOMID" 0 2>&1 | head -n 30 | while IFS= read -r l; do echo "@@uni:d $l"; done
fi
end "$REASON" "code=$CODE domid=$DOMID"
