#!/usr/bin/env bash
# Issue #17's "Done means", timed by hand: a newcomer's walk from a clone of this checkout's HEAD
# (its uncommitted changes left out) to the edited page on unix and on the emulated board.
# `git clone`, `cargo install --locked --path mirage-cli` into a directory of its own (nothing
# in ~/.cargo/bin), then README.md's "Your own app, on unix and on the board" by hand in a fresh
# directory in /tmp, cold (the app's own _build/target), then a second edit, warm. The board
# must already be in ~/.cache/uni (.ci/setup). Uses this machine's port 8080. Prints one
# `STEP` line per step; results in bench/README.md ("uni new: a newcomer's app").
#
#   bench/newcomer/walk.sh [WORKDIR]     # WORKDIR: /tmp/uni-newcomer-walk, emptied first
set -euo pipefail
checkout=$(cd "$(dirname "$0")/../.." && pwd)
W=${1:-/tmp/uni-newcomer-walk}
rm -rf "$W"
mkdir -p "$W"
t() { date +%s.%N; }
step() { printf 'STEP %-52s %6.1f s\n' "$1" "$(echo "$(t) - $2" | bc)"; }
# waits until http://localhost:8080/ says $1 while process $2 lives
page() {
  until curl -s --max-time 2 http://localhost:8080/ 2>/dev/null | grep -qx "$1"; do
    kill -0 "$2"
    sleep 0.2
  done
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); start: $(date -u +%H:%MZ)"
s=$(t); git clone -q "$checkout" "$W/uni"; step "git clone" "$s"
echo "commit: $(git -C "$W/uni" log --oneline -1 | cut -c1-7)"
s=$(t)
(cd "$W/uni" && cargo install -q --locked --path mirage-cli --root "$W/root")
step "cargo install --locked --path mirage-cli" "$s"
export PATH=$W/root/bin:$PATH
mkdir "$W/home" && cd "$W/home"
s=$(t); uni new web --devices console,clock,net,http >/dev/null 2>&1; step "uni new web --devices console,clock,net,http" "$s"
cd web
s=$(t); sed -i 's/hello from web/hello, edited/' src/lib.rs; step "sed (the edit)" "$s"
run() { # NAME TEXT ARGS...: uni run ARGS until the page says TEXT, then stopped
  local name=$1 text=$2 s pid
  shift 2
  s=$(t)
  uni run "$@" >"$W/$name.out" 2>"$W/$name.err" &
  pid=$!
  page "$text" "$pid"
  step "$name: uni run $* to the page" "$s"
  kill "$pid"
  wait "$pid" || true
  grep -h "Finished release\|Built dist\|Started\|Halted" "$W/$name.err" | sed 's/^/     /'
}
run unix-cold "hello, edited"
run xen-cold "hello, edited" --target xen-arm -p 8080:8080 --timeout 600
sed -i 's/hello, edited/hello, edited twice/' src/lib.rs
run unix-warm "hello, edited twice"
run xen-warm "hello, edited twice" --target xen-arm -p 8080:8080 --timeout 600
echo "end: $(date -u +%H:%MZ)"
