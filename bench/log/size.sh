#!/bin/sh
# bench/log/size.sh BASE [COMMIT]: what log levels and metrics (issue #18 items 5, 6) add to the
# xen-arm images of examples/hello and examples/static-website. Builds each at BASE (before
# them), at COMMIT (default HEAD: the log crate's release_max_level_debug, uni-runtime's
# default), and at COMMIT with release_max_level_off (every log record compiled out), each in a
# git worktree of its own under a temporary directory, with the uni binary of this checkout
# (target/debug/uni: `cargo build -p mirage-cli` first) and one shared target directory.
# Prints `variant example image-bytes site-bytes` lines; static-website's site (its kv_ro pack)
# is the same in all three.
set -eu
base=${1:?usage: bench/log/size.sh BASE [COMMIT]}
commit=${2:-HEAD}
root=$(cd "$(dirname "$0")/../.." && pwd)
uni=$root/target/debug/uni
work=$(mktemp -d)
trap 'for w in "$work"/base "$work"/mine "$work"/off; do [ -d "$w" ] && git -C "$root" worktree remove --force "$w"; done; rm -rf "$work"' EXIT
export CARGO_TARGET_DIR=$root/target/bench-log-size NO_COLOR=1
git -C "$root" worktree add -q --detach "$work/base" "$base"
git -C "$root" worktree add -q --detach "$work/mine" "$commit"
git -C "$root" worktree add -q --detach "$work/off" "$commit"
sed -i 's/release_max_level_debug/release_max_level_off/' "$work/off/runtime/Cargo.toml"
grep -q release_max_level_off "$work/off/runtime/Cargo.toml"
for v in base mine off; do
	for ex in hello static-website; do
		d=$work/$v/examples/$ex
		(cd "$d" && UNI_HOME=$work/$v "$uni" -q build --target xen-arm >"$work/$v-$ex.log" 2>&1) ||
			{ echo "$v $ex: build failed"; tail -n 5 "$work/$v-$ex.log"; exit 1; }
		kv=0
		[ -f "$d/_build/xen-arm/kv/htdocs.kv" ] && kv=$(stat -c %s "$d/_build/xen-arm/kv/htdocs.kv")
		echo "$v $ex $(stat -c %s "$d/dist/$ex.xen") $kv"
	done
done
