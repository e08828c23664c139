#!/usr/bin/env bash
# HTTPS with keep-alive on loopback: examples/static-website (unix target, release: uni-http over
# uni-tls/uni-crypto on host sockets, one thread) against nginx (1 worker) serving the same files
# with the same certificate, measured in the same run by the same wrk.
#
#   for each path: requests/s, latency p50 / p99, with `wrk -t1 -c$CONNS -d$SECONDS --latency`
#
# Usage: bench/website/run.sh [SECONDS=10] [CONNS=16]. Needs wrk and nginx (nginx-light).
# UNI_BIN=PATH serves with that build of static-website instead of building one.
# UNI_BASELINE=PATH adds a third server, another build of static-website (an earlier commit's,
# say), measured in the same run, its console to a file of its own.
set -euo pipefail
SECONDS_RUN=${1:-10}
CONNS=${2:-16}
root=$(cd "$(dirname "$0")/../.." && pwd)
ex="$root/examples/static-website"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"' EXIT

bin=${UNI_BIN:-$ex/dist/static-website}
if [ -z "${UNI_BIN:-}" ]; then
  (cd "$root" && cargo build -q -p mirage-cli)   # uni itself; it builds the unikernel in release
  "$root/target/debug/uni" -q -f "$ex/unikernel.toml" build --target unix
fi

# port, wait_port, start_nginx, nginx_version
. "$root/bench/website/common.sh"

P1=$(port); P1R=$(port)
# The request log goes to a file, as nginx's access log does.
"$bin" --https-port="$P1" --http-port="$P1R" >"$work/uni.log" 2>&1 & wait_port "$P1"

servers=("uni static-website:$P1")
if [ -n "${UNI_BASELINE:-}" ]; then
  P0=$(port); P0R=$(port)
  "$UNI_BASELINE" --https-port="$P0" --http-port="$P0R" >"$work/baseline.log" 2>&1 & wait_port "$P0"
  servers+=("uni baseline ($(basename "$UNI_BASELINE")):$P0")
fi

P2=$(port)
start_nginx "$P2"
servers+=("nginx $(nginx_version):$P2")

echo "wrk -t1 -c$CONNS -d${SECONDS_RUN}s --latency, $(nproc) cores, $(date -u "+%F %H:%MZ"), load average before: $(cut -d" " -f1-3 /proc/loadavg)"
echo
echo "| server | path | requests/s | p50 | p99 | transfer/s |"
echo "|---|---|---:|---:|---:|---:|"
for path in /index.html /css/site.css /img/logo.svg; do
  for s in "${servers[@]}"; do
    name=${s%:*}; p=${s##*:}
    out=$(wrk -t1 -c"$CONNS" -d"${SECONDS_RUN}s" --latency "https://localhost:$p$path")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    tps=$(awk '/Transfer\/sec/ {print $2}' <<<"$out")
    errs=$(grep -E "Non-2xx|Socket errors" <<<"$out" | tr '\n' ' ' || true)
    echo "| $name | $path | $rps | $p50 | $p99 | $tps |${errs:+ $errs}"
  done
done
echo
echo "uni's console: $(grep -c '" 200 ' "$work/uni.log" || true) request lines logged; last: $(grep '" 200 ' "$work/uni.log" | tail -1)"
