#!/usr/bin/env bash
# The cost of tracing on the emulated Xen board (issue #18 item 2): examples/static-website built
# for xen-arm without tracing and with it (`uni build --trace`: every event recorded into the
# ring, whose pages are granted to dom0 but not read during the run), served one after the other
# in ONE board session by bench/website/xen's website-nginx driver (no Linux guest): plain,
# traced, plain, traced, ... (ROUNDS pairs). Each guest is measured as bench/website/nginx.sh
# measures static-website: keep-alive requests/s with p50 and p99 (wrk), and new TLS 1.3
# connections/s (openssl s_time -new), from inside the board's own network namespace. Run by
# hand; not part of `cargo test` or CI.
#
#   bench/trace/xen.sh [MIB]          cubieboard2's emulation; MIB (default 64) for both builds
#   BOARD=qemu-virt bench/trace/xen.sh
#
# Environment: ROUNDS (2), SECONDS_WRK (20), CONNS (16), SECONDS_NEW (10), TIMEOUT (1200),
# BENCH_DIR (/tmp/uni-bench-trace-xen), HEAVY_LOCK (a lock file the builds and the board session
# each run under; or run the whole script under `flock /tmp/uni-heavy.lock`).
# Prints the driver's `result` lines and a markdown table for bench/README.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BOARD=${BOARD:-cubieboard2}
MIB=${1:-64}
[[ $MIB =~ ^[0-9]+$ ]] || { echo "xen.sh: $MIB: not a memory size in MiB" >&2; exit 2; }
ROUNDS=${ROUNDS:-2}
W=${BENCH_DIR:-/tmp/uni-bench-trace-xen}
HEAVY=(); [ -z "${HEAVY_LOCK:-}" ] || HEAVY=(flock "$HEAVY_LOCK")
EX=$ROOT/examples/static-website
mkdir -p "$W/site"

# A copy of the example's config, so that its _build and dist are this script's.
sed -e "s|^app = \".\"|app = \"$EX\"|" -e "s|\"pki/|\"$EX/pki/|g" \
  -e "s|dir = \"htdocs\"|dir = \"$EX/htdocs\"|" "$EX/unikernel.toml" >"$W/site/unikernel.toml"
"${HEAVY[@]}" cargo build -q --manifest-path "$ROOT/Cargo.toml" -p mirage-cli
uni="${CARGO_TARGET_DIR:-$ROOT/target}/debug/uni"
echo "== building static-website for xen-arm ($BOARD), without and with tracing" >&2
"${HEAVY[@]}" "$uni" -q -f "$W/site/unikernel.toml" build --target xen-arm --board "$BOARD"
cp "$W/site/dist/static-website.xen" "$W/plain.xen"
"${HEAVY[@]}" "$uni" -q -f "$W/site/unikernel.toml" build --target xen-arm --board "$BOARD" --trace
cp "$W/site/dist/static-website.xen" "$W/traced.xen"
# the xl files: one vif without a MAC (the board numbers the guests), memory = MIB, pCPU 1
for b in plain traced; do
  sed -e '/^ *\(name\|kernel\|memory\|vif\|cpus\|vcpus\) *=/d' "$W/site/dist/static-website.xl" > "$W/$b.xl"
  cat >> "$W/$b.xl" <<X
name    = "$b"
kernel  = "$b.xen"
memory  = $MIB
vcpus   = 1
cpus    = "1"
vif     = [ 'bridge=xenbr0' ]
X
done
GUESTS=()
for _ in $(seq "$ROUNDS"); do GUESTS+=(--uni "$W/plain.xl" --uni "$W/traced.xl"); done

echo "== building the driver" >&2
BT=${WEBSITE_XEN_TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/website-xen}
"${HEAVY[@]}" env CARGO_TARGET_DIR="$BT" cargo build -q --release --manifest-path "$ROOT/bench/website/xen/Cargo.toml" --bin website-nginx
BIN=$BT/release/website-nginx

echo "== one board session ($BOARD): plain and traced static-website, $ROUNDS rounds, memory = $MIB MiB" >&2
cd "$W"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "static-website plain $(stat -c %s plain.xen) bytes, traced $(stat -c %s traced.xen) bytes; memory = $MIB MiB"
} | tee head.out
set +e
"${HEAVY[@]}" bash -c 'echo "load before: $(cut -d" " -f1-3 /proc/loadavg)"; exec "$@"' _ \
  timeout --kill-after=30 $((${TIMEOUT:-1200} + 60)) "$BIN" --board "$BOARD" --timeout "${TIMEOUT:-1200}" \
  --ca "$EX/pki/ca.pem" --htdocs "$EX/htdocs" --path /index.html \
  --wrk-seconds "${SECONDS_WRK:-20}" --conns "${CONNS:-16}" --new-seconds "${SECONDS_NEW:-10}" \
  "${GUESTS[@]}" | tee run.out
rc=${PIPESTATUS[0]}
set -e
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a run.out

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
echo
echo "| board | guest | keep-alive requests/s (wrk -c${CONNS:-16}, ${SECONDS_WRK:-20} s) | p50 | p99 | new TLS connections/s (s_time -new, ${SECONDS_NEW:-10} s) | same files | how it ended |"
echo "|---|---|---:|---:|---:|---:|---|---|"
while read -r r; do
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$BOARD" "$(field guest "$r")" "$(field rps "$r")" \
    "$(field p50 "$r")" "$(field p99 "$r")" "$(field new_per_s "$r")" "$(field same_files "$r")" "$(field outcome "$r" | tr _ ' ')"
done < <(grep '^result server=' run.out)
exit "$rc"
