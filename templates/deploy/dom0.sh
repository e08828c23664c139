# uni deploy's side in a Xen dom0. mirage-cli/src/cmd/deploy.rs sends this file over SSH to
# `sh -s`, followed by one call of a function below. POSIX sh: it runs under Debian's dash and
# busybox ash alike.
#
# Results for the host are lines `uni: <key> <value>`; a failure is one line `uni-error: <kind>
# <text>` and exit status 1. Kinds: no-xl, xl, space, checksum, start, none.
# Files: <dir>/<name>/<name>.xen and .xl (the deployed image), its disk images beside them
# (uploaded once, then the guest's), .new/ (an upload), .old/ (the previous image and any disk
# it replaced, until the next deploy), .failed/ (an image that did not start).

fail() {
	echo "uni-error: $*"
	exit 1
}

need_xl() {
	command -v xl >/dev/null 2>&1 || fail no-xl "no \`xl\` on the PATH ($PATH)"
}

# probe DIR NAME [DISK...]: what the host checks before uploading; for each disk image name,
# its size in dom0 or - when there is none
probe() {
	need_xl
	info=$(xl info 2>&1) || fail xl "\`xl info\` failed: $(echo "$info" | tail -n 1)"
	echo "uni: caps $(echo "$info" | sed -n 's/^xen_caps *: *//p')"
	echo "uni: machine $(echo "$info" | sed -n 's/^machine *: *//p')"
	echo "uni: free_memory $(echo "$info" | sed -n 's/^free_memory *: *//p')"
	mkdir -p "$1/$2/.new" || fail space "cannot create $1/$2/.new"
	echo "uni: avail_kb $(df -Pk "$1/$2/.new" 2>/dev/null | awk 'NR == 2 { print $4 }')"
	d=$1/$2
	shift 2
	for b in "$@"; do
		if [ -f "$d/$b" ]; then
			echo "uni: disk $b $(stat -c %s "$d/$b")"
		else
			echo "uni: disk $b -"
		fi
	done
}

# state NAME: the domain's xl state letters (r b p s c d), empty when there is no such domain
state() {
	xl list "$1" 2>/dev/null | awk 'NR == 2 { print $5 }' | tr -d -
}

# start DIR NAME SETTLE: creates the domain; it must not crash within SETTLE seconds. Sets DOMID,
# or WHY and fails. Each domain created is a line of DIR/.boots (`logs` separates the boots in
# the console log with it): the console log's size before it, the domain id, the time.
start() {
	before=$(stat -c %s "/var/log/xen/console/guest-$2.log" 2>/dev/null || echo 0)
	out=$(xl create "$1/$2.xl" </dev/null 2>&1) || {
		WHY="\`xl create\` failed: $(echo "$out" | grep -i -m 3 -e error -e fail | tr '\n' ' ')"
		return 1
	}
	DOMID=$(xl domid "$2" 2>/dev/null)
	echo "$before ${DOMID:-?} $(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$1/.boots"
	i=0
	while [ $i -lt $(($3 * 5)) ]; do
		case $(state "$2") in
		*c*)
			WHY="the domain crashed as it started (xl list state c; see \`uni logs\`)"
			return 1
			;;
		esac
		i=$((i + 1))
		sleep 0.2
	done
	return 0
}

# activate DIR NAME SHA256 SETTLE WAIT_IP [DISK=SHA256...]: puts the uploaded image (and the
# uploaded disk images) in place of the deployed ones and starts it; if it fails to start, puts
# the previous ones back and restarts it (when it was running).
activate() {
	d=$1/$2
	n=$2
	need_xl
	got=$(sha256sum "$d/.new/$n.xen" | cut -d ' ' -f 1)
	[ "$got" = "$3" ] || fail checksum "the uploaded $d/.new/$n.xen has sha256 $got, not $3"
	settle=$4
	wait_ip=$5
	shift 5
	disks=
	for a in "$@"; do
		b=${a%%=*}
		got=$(sha256sum "$d/.new/$b" | cut -d ' ' -f 1)
		[ "$got" = "${a#*=}" ] || fail checksum "the uploaded disk image $d/.new/$b has sha256 $got, not ${a#*=}"
		disks="$disks $b"
	done
	log=/var/log/xen/console/guest-$n.log
	offset=$(stat -c %s "$log" 2>/dev/null || echo 0)
	was=
	if xl domid "$n" >/dev/null 2>&1; then
		was=$(xl domid "$n")
		xl destroy "$n" || fail xl "\`xl destroy $n\` failed"
		echo "uni: stopped $was"
	fi
	rm -rf "$d/.old" "$d/.failed"
	mkdir "$d/.old"
	if [ -f "$d/$n.xen" ]; then
		mv "$d/$n.xen" "$d/$n.xl" "$d/.old/"
	fi
	for b in $disks; do
		[ ! -f "$d/$b" ] || mv "$d/$b" "$d/.old/"
		mv "$d/.new/$b" "$d/"
	done
	mv "$d/.new/$n.xen" "$d/.new/$n.xl" "$d/"
	if start "$d" "$n" "$settle"; then
		echo "uni: domid $DOMID"
	else
		why=$WHY
		xl destroy "$n" >/dev/null 2>&1
		mkdir "$d/.failed" && mv "$d/$n.xen" "$d/$n.xl" "$d/.failed/"
		for b in $disks; do
			mv "$d/$b" "$d/.failed/"
			[ ! -f "$d/.old/$b" ] || mv "$d/.old/$b" "$d/"
		done
		if [ -f "$d/.old/$n.xen" ]; then
			mv "$d/.old/$n.xen" "$d/.old/$n.xl" "$d/" && rmdir "$d/.old"
			if [ -n "$was" ]; then
				if start "$d" "$n" "$settle"; then
					echo "uni: restored $DOMID"
				else
					echo "uni: restore-failed $WHY"
				fi
			fi
		fi
		fail start "$why"
	fi
	# the address the guest prints (`net: 10.0.0.2/24 via …`), from this boot's console log
	i=0
	while [ "$wait_ip" -gt 0 ] && [ $i -lt $((wait_ip * 5)) ] && [ -n "$(state "$n")" ]; do
		ip=$(tail -c +$((offset + 1)) "$log" 2>/dev/null | sed -n 's/^.*net: \([0-9.]*\)\/[0-9]*.*$/\1/p' | head -n 1)
		if [ -n "$ip" ]; then
			echo "uni: ip $ip"
			break
		fi
		i=$((i + 1))
		sleep 0.2
	done
	echo "uni: state $(state "$n")"
	echo "uni: log $log"
	echo "uni: offset $offset"
}

# ps DIR: every deployed unikernel, with its domain when it runs
ps() {
	need_xl
	for x in "$1"/*/*.xl; do
		[ -f "$x" ] || continue
		n=$(basename "$x" .xl)
		line=$(xl list "$n" 2>/dev/null | awk 'NR == 2 { print $2, $3, $5 }')
		echo "uni: unikernel $n ${line:--}"
	done
}

# stop DIR NAME
stop() {
	need_xl
	[ -f "$1/$2/$2.xl" ] || fail none "no unikernel \`$2\` deployed in $1"
	if id=$(xl domid "$2" 2>/dev/null); then
		xl destroy "$2" || fail xl "\`xl destroy $2\` failed"
		echo "uni: stopped $id"
	else
		echo "uni: stopped -"
	fi
}

# stats NAME: asks the running domain for its counters (runtime/src/platform/xen/stats.rs: it
# watches data/uni-stats/request and answers with data/uni-stats/<counter> and then the
# request's value in data/uni-stats/answered), and prints each as `uni: stat COUNTER VALUE`
# (with dashes for the dots of its name: xenstore refuses dots in node names)
stats() {
	need_xl
	command -v xenstore-read >/dev/null 2>&1 || fail no-xl "no \`xenstore-read\` on the PATH (Debian: apt-get install xenstore-utils)"
	id=$(xl domid "$1" 2>/dev/null) || fail none "no domain \`$1\` is running"
	d=/local/domain/$id/data/uni-stats
	xenstore-read "$d/request" >/dev/null 2>&1 ||
		fail stats "\`$1\` (domain $id) keeps no counters in xenstore: a unikernel without a network, an image built before \`uni stats\` existed, or one still booting"
	req=$(date +%s%N)
	xenstore-write "$d/request" "$req" || fail stats "cannot write $d/request"
	i=0
	while [ "$(xenstore-read "$d/answered" 2>/dev/null)" != "$req" ]; do
		i=$((i + 1))
		[ $i -le 100 ] || fail stats "\`$1\` (domain $id) did not answer within 10 s"
		sleep 0.1
	done
	xenstore-ls "$d" | sed -n 's/^\([a-z0-9_-]*\) = "\([0-9]*\)"$/uni: stat \1 \2/p' |
		grep -v -e '^uni: stat request ' -e '^uni: stat answered '
	echo "uni: domid $id"
}

# logs DIR NAME FOLLOW: the guest's console, as dom0's xenconsoled logged it, with a line
# `--- uni: domain ID started TIME ---` before each boot that `start` recorded
logs() {
	log=/var/log/xen/console/guest-$2.log
	[ -f "$log" ] || fail none "no console log $log (is $2 deployed here, and does xenconsoled run with --log=guest?)"
	size=$(stat -c %s "$log")
	at=0
	if [ -f "$1/$2/.boots" ]; then
		while read -r off id when; do
			# a log that was rotated or truncated since: its older boots are gone
			[ "$off" -ge "$at" ] && [ "$off" -le "$size" ] || continue
			if [ "$off" -gt "$at" ]; then
				tail -c +$((at + 1)) "$log" | head -c $((off - at))
				# the previous boot's last line may lack its newline
				[ "$(tail -c +"$off" "$log" | head -c 1 | od -An -tx1 | tr -d ' ')" = 0a ] || echo
			fi
			echo "--- uni: domain $id started $when ---"
			at=$off
		done <"$1/$2/.boots"
	fi
	if [ "$3" = 1 ]; then
		exec tail -c +$((at + 1)) -f "$log"
	fi
	tail -c +$((at + 1)) "$log"
}
