#!/bin/busybox sh
# dom0 /init of the emulated boards (qemu-virt, qemu-virt-gicv2, qemu-virt32). mirage-cli/src/emu puts it into the dom0 initramfs.
#
# It starts the xl toolstack, creates the guests described by /guest/run.env one after another,
# copies each guest's console to the serial line and reports how each guest ended. Every line
# meant for the host starts with "@@uni:" followed by a tag. The host parser is
# mirage-cli/src/emu/serial.rs.
#   @@uni:s <text>              dom0 progress ("dom0 up", "guest created domid=1", ...)
#   @@uni:g <text>              one line of the current guest's console, in order
#   @@uni:x <text>              one line of `xl create`'s log, printed when the create failed
#   @@uni:d <text>              diagnostics: xl dmesg and xenctx, for a crash or a silent guest
#   @@uni:t <what> <seconds>    a timing of the current guest, seconds since `xl create` began
#                               (dom0's clock): first-output, marker (its G<i>_MARK line)
#   @@uni:c <text>              output of the dom0 check (DOM0_CHECK), once it has finished
#   @@uni:cend <status>         the dom0 check's exit status
#   @@uni:gend <reason> <detail> the current guest has ended (same reasons as below)
#   @@uni:T <base64>            one line of the ended guest's trace ring (TRACE=1), then
#   @@uni:Terr <text>           the reader's errors, and
#   @@uni:Tend <status>         its exit status (all before the guest's @@uni:gend)
#   @@uni:end <reason> <detail> the last line. <reason> is one of: poweroff reboot suspend crash
#                               watchdog soft_reset (the last guest's shutdown code), create-failed
#                               (xl create failed), dom0-failed (the toolstack did not come up)
# Every @@uni:g line of a guest is printed before its @@uni:gend.
#
# Facts learned on the first hand-built board: call the real tools in /usr/lib/xen-4.17/bin,
# not Debian's wrappers; /var/run is /run on a tmpfs; xen-init-dom0 runs after xenstored;
# xenconsoled --log=guest is the only place a domU's console shows up; the hotplug scripts
# are bash; busybox has no `sed -u` and no `brctl show`.

/bin/busybox --install -s /bin
export PATH=/usr/lib/xen-4.17/bin:/bin:/sbin:/usr/bin:/usr/sbin
# the multiarch directory of dom0's libraries: arm64 or armhf (qemu-virt32)
case $(uname -m) in
aarch64) T=aarch64-linux-gnu ;;
*) T=arm-linux-gnueabihf ;;
esac
export LD_LIBRARY_PATH=/lib/$T:/usr/lib/$T:/usr/lib/xen-4.17/lib/$T

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
# seconds since dom0 booted, to 10 ms
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" '{ printf "%.2f", $1 - a }' /proc/uptime; }

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
# what udev would add: the block hotplug script's lock stats /dev/stdin (and loops until it can)
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
# /var/lock: xenconsole (`xl console`) takes its lock file there
mkdir -p /run/xen /run/xenstored /var/log/xen/console /var/lib/xen /var/lock
s "dom0 up: $(uname -r) $(uname -m)"

# Written by the host per run:
#   DISKS              how many disk images QEMU attached: virtio disks with serial uni-disk<i>
#                      (i from 0), made /guest/disk<i> for the guests' xl files to name
#   GUESTS             how many guests; guest i (1..GUESTS) is G<i>_NAME (the domain name, from
#                      its xl file), G<i>_CFG (the xl file) and G<i>_MARK (a console line to time)
#   NET                1: the run has networking (a guest has a vif)
#   NIC                1: QEMU gave dom0 a NIC (virtio-net, the host's tap) for the bridge,
#                      with MAC NIC_MAC
#   DHCP_STATIC        "mac ip;mac ip;..." static leases for udhcpd
#   GUEST_IP           the first guest's address (for DOM0_CHECK)
#   DOM0_CHECK         a command run once the first guest exists; its output and status reported
#   TRACE              1: after each guest ends, send its trace ring (uni run --trace), read by
#                      /guest/uni-trace-dump
#   SSH                1: serve (`uni run --dom0`): no guests of its own; an SSH server on the NIC
#                      with MAC SSH_MAC (QEMU's user network, 10.0.2.15), for `uni deploy`. The
#                      host put root's authorized_keys in /root/.ssh and the session's host key
#                      (OpenSSH format) in /etc/dropbear/host_key.openssh.
. /guest/run.env || fail "no /guest/run.env"

# nic MAC: the name of the interface with that address, once it appears (at most 5 s)
nic() {
	i=0
	while [ $i -lt 50 ]; do
		for n in /sys/class/net/*; do
			[ "$(cat "$n/address")" != "$1" ] || {
				echo "${n##*/}"
				return 0
			}
		done
		i=$((i + 1))
		sleep 0.1
	done
	return 1
}

# load LIST: the modules of /lib/modules/LIST, in order, skipping those already loaded (an
# optional list may share one with another: virtio_mmio); fails with the first that does not load
load() {
	for m in $(cat /lib/modules/$1); do
		n=$(echo "${m%.ko}" | tr - _)
		grep -q "^$n " /proc/modules || insmod /lib/modules/$m || return 1
	done
}
load order || fail "loading the modules of /lib/modules/order"
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

# ---------------------------------------------------------------------------------------------
# Disks: each of the host's images is a virtio disk; /guest/disk<i> is the block device the
# guests' xl files name, served to them by blkback
# ---------------------------------------------------------------------------------------------
if [ "${DISKS:-0}" -gt 0 ]; then
	load order-disk || fail "loading the disk modules of /lib/modules/order-disk"
	i=0
	while [ $i -lt "$DISKS" ]; do
		dev=
		j=0
		while [ -z "$dev" ] && [ $j -lt 50 ]; do
			for b in /sys/block/vd*; do
				[ "$(cat "$b/serial" 2>/dev/null)" != "uni-disk$i" ] || dev=${b##*/}
			done
			[ -n "$dev" ] || sleep 0.1
			j=$((j + 1))
		done
		[ -n "$dev" ] || fail "no virtio disk with serial uni-disk$i appeared"
		mknod /guest/disk$i b $(tr : ' ' </sys/block/$dev/dev) || fail "mknod /guest/disk$i"
		s "disk $i: /dev/$dev ($(cat /sys/block/$dev/size) sectors) as /guest/disk$i"
		i=$((i + 1))
	done
fi

# ---------------------------------------------------------------------------------------------
# Networking: the host's tap (QEMU's virtio-net) joins the bridge; udhcpd serves the guests
# ---------------------------------------------------------------------------------------------
if [ "$NET" = 1 ]; then
	if [ "$NIC" = 1 ]; then
		load order-net || s "loading the network modules failed"
		ETH=$(nic "$NIC_MAC")
		if [ -n "$ETH" ]; then
			ip link set "$ETH" master xenbr0
			ip link set "$ETH" up
			s "host link: $ETH ($(cat /sys/class/net/$ETH/address)) on xenbr0"
		else
			s "host link: no NIC appeared; the host cannot reach the guests"
		fi
	fi
	{
		echo "interface xenbr0"
		echo "start 10.0.0.100"
		echo "end 10.0.0.199"
		echo "lease_file /run/udhcpd.leases"
		echo "option subnet 255.255.255.0"
		echo "option router 10.0.0.1"
		echo "option lease 86400"
		echo "$DHCP_STATIC" | tr ';' '\n' | while read -r mac ip; do
			[ -z "$ip" ] || echo "static_lease $mac $ip"
		done
	} >/etc/udhcpd.conf
	: >/run/udhcpd.leases
	udhcpd -f /etc/udhcpd.conf 2>&1 | while IFS= read -r l; do s "dhcp: ${l#udhcpd: }"; done &
	s "dhcp server on xenbr0: $(echo "$DHCP_STATIC" | tr ';' ',')"
fi

# ---------------------------------------------------------------------------------------------
# Serving: dropbear on the SSH NIC; guests come and go through `xl` over SSH
# ---------------------------------------------------------------------------------------------
if [ "$SSH" = 1 ]; then
	load order-net || s "loading the network modules failed"
	SSHIF=$(nic "$SSH_MAC") || fail "no NIC with MAC $SSH_MAC for the SSH server"
	ip addr add 10.0.2.15/24 dev "$SSHIF"
	ip link set "$SSHIF" up
	# root logs in to a shell that finds the real xl tools and their libraries (dropbear passes
	# no environment on)
	{
		echo '#!/bin/sh'
		echo "export PATH=$PATH"
		echo "export LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
		echo 'exec /bin/sh "$@"'
	} >/bin/uni-shell
	chmod 755 /bin/uni-shell
	echo /bin/uni-shell >/etc/shells
	echo root:x:0:0:root:/root:/bin/uni-shell >/etc/passwd
	echo root:x:0: >/etc/group
	chmod 700 /root /root/.ssh
	chmod 600 /root/.ssh/authorized_keys
	# `uni deploy` puts unikernels here; a tmpfs of its own, so df tells how much space is left
	mkdir -p /var/lib/uni /var/log/xen
	mount -t tmpfs -o size=64m,mode=755 tmpfs /var/lib/uni
	KEY=/etc/dropbear/dropbear_ed25519_host_key
	dropbearconvert openssh dropbear /etc/dropbear/host_key.openssh $KEY >/tmp/hostkey.log 2>&1 ||
		{ diag /tmp/hostkey.log; fail "dropbearconvert of the host key"; }
	# -s: keys only, no passwords
	dropbear -F -E -s -p 22 -r $KEY 2>&1 | while IFS= read -r l; do s "ssh: $l"; done &
	i=0
	while ! netstat -ltn 2>/dev/null | grep -q ':22 '; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "dropbear does not listen on port 22"
		sleep 0.1
	done
	s "ssh ready: $SSHIF 10.0.2.15 port 22"
	while :; do sleep 3600; done
fi

# ---------------------------------------------------------------------------------------------
# One guest
# ---------------------------------------------------------------------------------------------
EOF_LINE="@@uni-console-end@@"
CHECK=

# run_guest N: creates guest N, streams its console, waits for it to end; sets REASON and DETAIL
run_guest() {
	n=$1
	eval "NAME=\$G${n}_NAME CFG=\$G${n}_CFG MARK=\$G${n}_MARK"

	# The guest console: xenconsoled appends everything the guest writes to $L. A reader copies
	# it to serial line by line until it meets the end line that this script appends once the
	# guest has shut down.
	L=/var/log/xen/console/guest-$NAME.log
	: >"$L"
	rm -f /tmp/console
	mkfifo /tmp/console
	tail -n +1 -f "$L" >/tmp/console &
	TAIL=$!
	# awk, not a `read` loop: ash's read takes a syscall per byte from a fifo, which under TCG
	# holds a chatty guest (one line per HTTP request) back by tens of seconds.
	awk -v eof="$EOF_LINE" '{
		i = index($0, eof)
		if (i) { if (i > 1) print "@@uni:g " substr($0, 1, i - 1); exit }
		print "@@uni:g " $0; fflush()
	}' </tmp/console &
	READER=$!

	# -F keeps xl in the foreground: it returns when the domain shuts down and says why.
	s "xl create $CFG"
	T0=$(now)
	xl -vvv create -F "$CFG" >/tmp/xl.log 2>&1 &
	XL=$!
	# timings: the log's first byte (tail -f polls once a second; this looks every 20 ms)
	(
		first=
		i=0
		while [ $i -lt 3000 ] && kill -0 $XL 2>/dev/null; do
			if [ -z "$first" ] && [ -s "$L" ]; then
				first=$(since "$T0")
				echo "@@uni:t first-output $first"
				[ -n "$MARK" ] || break
			fi
			if [ -n "$first" ] && grep -qF -- "$MARK" "$L"; then
				echo "@@uni:t marker $(since "$T0")"
				break
			fi
			i=$((i + 1))
			sleep 0.02
		done
	) &
	TIMER=$!
	DOMID=
	while kill -0 $XL 2>/dev/null; do
		if [ -z "$DOMID" ]; then
			DOMID=$(sed -n 's/^Waiting for domain .* (domid \([0-9]*\)) to die.*/\1/p' /tmp/xl.log)
			if [ -n "$DOMID" ]; then
				echo "$DOMID" >/tmp/uni-domid
				s "guest created domid=$DOMID"
				if [ "$n" = 1 ] && [ -n "$DOM0_CHECK" ]; then
					(
						GUEST_IP=$GUEST_IP sh -c "$DOM0_CHECK" >/tmp/check.log 2>&1
						rc=$?
						while IFS= read -r l; do echo "@@uni:c $l"; done </tmp/check.log
						echo "@@uni:cend $rc"
					) &
					CHECK=$!
				fi
			fi
		fi
		sleep 0.2
	done
	wait $XL
	RC=$?
	rm -f /tmp/uni-domid
	kill $TIMER 2>/dev/null
	# a guest that ended within the first poll (a crash at boot) was never seen running
	if [ -z "$DOMID" ]; then
		DOMID=$(sed -n 's/^Waiting for domain .* (domid \([0-9]*\)) to die.*/\1/p' /tmp/xl.log)
		[ -z "$DOMID" ] || s "guest created domid=$DOMID"
	fi

	CODE=$(sed -n 's/^Domain [0-9]* has shut down, reason code \([0-9]*\) .*/\1/p' /tmp/xl.log | head -n 1)
	if [ -z "$CODE" ]; then
		# the domain was never built, or xl died: its log says why
		grep -v ': debug: ' /tmp/xl.log | while IFS= read -r l; do echo "@@uni:x $l"; done
		# a failed hotplug script (vif-bridge, block) says why here
		cat /var/log/xen/xen-hotplug.log 2>/dev/null | while IFS= read -r l; do echo "@@uni:x hotplug: $l"; done
		echo "$EOF_LINE" >>"$L"
		drain
		REASON=create-failed
		DETAIL="xl create exited with status $RC"
		return
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
	DETAIL="code=$CODE domid=$DOMID"
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
	# uni run --trace: the guest's trace ring, copied from the pages it granted while the
	# domain is still there (preserved, even crashed)
	[ "$TRACE" != 1 ] || [ -z "$DOMID" ] || trace_dump "$DOMID"

	if [ "$REASON" != poweroff ] || [ "$size" = 0 ]; then
		xl dmesg 2>/dev/null | grep -E "d${DOMID:-1}v|\(d${DOMID:-1}\)" | tail -n 40 |
			while IFS= read -r l; do echo "@@uni:d $l"; done
		[ -z "$DOMID" ] || xenctx -a "$DOMID" 0 2>&1 | head -n 30 | while IFS= read -r l; do echo "@@uni:d $l"; done
	fi
	# the next guest needs the memory; this one has told all it will
	[ -z "$DOMID" ] || [ "$n" -ge "$GUESTS" ] || xl destroy "$DOMID" >/dev/null 2>&1
}

# trace_dump DOMID: the guest's trace ring (/guest/uni-trace-dump) as base64 @@uni:T lines, the
# reader's errors as @@uni:Terr lines, then @@uni:Tend and its exit status
trace_dump() {
	/guest/uni-trace-dump "$1" >/tmp/trace.bin 2>/tmp/trace.err
	rc=$?
	base64 /tmp/trace.bin | sed 's/^/@@uni:T /'
	sed 's/^/@@uni:Terr /' /tmp/trace.err
	echo "@@uni:Tend $rc"
	rm -f /tmp/trace.bin /tmp/trace.err
}

# drain: wait for the reader to reach the end line (at most 10 s), then stop tail
drain() {
	(
		sleep 10
		kill $READER
	) 2>/dev/null &
	wait $READER
	kill $TAIL
}

# uni run --trace, stopped by a signal or its timeout: the host asks for the running guest's
# trace with the line "uni-trace-now" on the serial input, before it stops the board
if [ "$TRACE" = 1 ]; then
	stty -echo </dev/console 2>/dev/null
	while IFS= read -r l; do
		case $l in
		*uni-trace-now*)
			if [ -s /tmp/uni-domid ]; then
				trace_dump "$(cat /tmp/uni-domid)"
			else
				echo "@@uni:Terr no guest is running"
				echo "@@uni:Tend 3"
			fi
			;;
		esac
	done </dev/console &
fi

n=1
while [ $n -le "${GUESTS:-0}" ]; do
	run_guest $n
	echo "@@uni:gend $REASON $DETAIL"
	n=$((n + 1))
done
# a dom0 check still running gets 10 s more
if [ -n "$CHECK" ] && kill -0 $CHECK 2>/dev/null; then
	(
		sleep 10
		kill $CHECK
	) 2>/dev/null &
	wait $CHECK
fi
end "$REASON" "$DETAIL"
