#!/usr/bin/env bash
# The first request on a new keep-alive connection: N new TLS connections to static-website
# (unix target) and to nginx (1 worker) serving the same files, one request each with curl; per
# server, the time from the handshake's end to the response's first byte (curl's
# time_starttransfer - time_appconnect): how many took over 20 ms, the largest, the mean. A
# response held back by Nagle's algorithm until the client's delayed ACK shows as ~40 ms.
#
# Usage: UNI_BIN=PATH [UNI_BASELINE=PATH] bench/website/first-request.sh [N=40]
# (UNI_BIN, UNI_BASELINE: builds of examples/static-website, as in run.sh). Needs curl and nginx.
set -euo pipefail
N=${1:-40}
root=$(cd "$(dirname "$0")/../.." && pwd)
ex="$root/examples/static-website"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"' EXIT
# port, wait_port, start_nginx, nginx_version
. "$root/bench/website/common.sh"
measure() {
  for _ in $(seq "$N"); do
    curl -s -o /dev/null --cacert "$ex/pki/ca.pem" -w '%{time_appconnect} %{time_starttransfer}\n' "https://localhost:$1/index.html"
  done | awk -v n="$N" '{d=($2-$1)*1000; if (d>20) k++; if (d>m) m=d; s+=d} END {printf "%d of %d over 20 ms, largest %.1f ms, mean %.2f ms\n", k, n, m, s/NR}'
}
echo "$N new connections each, $(date -u "+%F %H:%MZ"), load average before: $(cut -d" " -f1-3 /proc/loadavg)"
for bin in "${UNI_BIN:?UNI_BIN: a build of static-website}" ${UNI_BASELINE:+"$UNI_BASELINE"}; do
  p=$(port); r=$(port)
  "$bin" --https-port="$p" --http-port="$r" >/dev/null 2>&1 & pid=$!; wait_port "$p"
  echo "uni $(basename "$bin"): $(measure "$p")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
p=$(port)
start_nginx "$p"
echo "nginx $(nginx_version): $(measure "$p")"
