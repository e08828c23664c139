#!/bin/sh
# The cost of `uni build`'s progress total (issue #17 item 8): `cargo build --unit-graph`, the
# dry run uni starts once the first crate compiles, timed for examples/hello on unix and on
# xen-arm, against what it rides along with in the same run: a rebuild of the app crate and
# its main (`touch src/lib.rs; uni build`, which also runs the unit graph) and a no-op
# `uni build` (which does not). Usage: bench/build-progress/run.sh [RUNS]   (default 5)
# Run it under the shared heavy lock: flock /tmp/uni-heavy.lock bench/build-progress/run.sh
set -eu
runs=${1:-5}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build -q -p mirage-cli --bin uni
uni="$root/target/debug/uni"
export CARGO_TARGET_DIR="$root/target/bench-build-progress" NO_COLOR=1
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# A copy of examples/hello outside the checkout, so the checkout's files stay untouched.
app=$(mktemp -d)/hello
trap 'rm -rf "$(dirname "$app")"' EXIT
mkdir -p "$app/src"
cp examples/hello/src/lib.rs "$app/src/"
cp examples/hello/unikernel.toml "$app/"
printf '[package]\nname = "hello"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\nuni-runtime = { path = "%s/runtime" }\n\n[workspace]\n' "$root" > "$app/Cargo.toml"

now() { date +%s.%N; }
# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# seconds each of $runs runs of "$@" took, one a line
timed() { for _ in $(seq "$runs"); do t0=$(now); "$@" >/dev/null 2>&1; t1=$(now); echo "$t1 - $t0" | bc -l; done; }

cd "$app"
for target in unix xen-arm; do
    # a board is the xen-arm target's: `uni build --target unix --board X` is refused
    board=""
    if [ "$target" = xen-arm ]; then board="--board cubieboard2"; fi
    "$uni" build --target "$target" $board >/dev/null 2>&1   # cold: everything once
    manifest="$app/_build/$target/Cargo.toml"
    set -- build --release --manifest-path "$manifest" -Zunstable-options --unit-graph --locked
    if [ "$target" = xen-arm ]; then
        set -- "$@" --target armv7a-none-eabihf -Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem
    fi
    units=$(RUSTC_BOOTSTRAP=1 cargo "$@" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["units"]))')
    graph=$(RUSTC_BOOTSTRAP=1 timed cargo "$@" | median)
    rebuild=$(timed sh -c "touch src/lib.rs && '$uni' build --target $target $board" | median)
    noop=$(timed "$uni" build --target "$target" $board | median)
    printf '%s: %s units; unit graph %.3f s; rebuild of app + main %.2f s (ratio %.3f); no-op uni build %.2f s\n' \
        "$target" "$units" "$graph" "$rebuild" "$(echo "$graph / $rebuild" | bc -l)" "$noop"
done
