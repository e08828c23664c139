#!/usr/bin/env bash
# The cost of tracing (issue #18): examples/static-website on unix built twice, with tracing
# compiled in (`uni build --trace`: every event recorded into the ring, no dump) and without,
# served side by side and measured in the same run by the same wrk:
#   1. keep-alive requests (bench/website/run.sh with UNI_BIN = traced, UNI_BASELINE = plain,
#      nginx alongside), per path: requests/s, p50, p99;
#   2. a new connection per request (`Connection: close`: a TCP accept and a TLS handshake each),
#      two rounds, alternating: requests/s, p50, p99.
#
# Usage: bench/trace/run.sh [SECONDS=10] [CONNS=16]. Needs wrk and nginx.
set -euo pipefail
SECONDS_RUN=${1:-10}
CONNS=${2:-16}
root=$(cd "$(dirname "$0")/../.." && pwd)
ex="$root/examples/static-website"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# A copy of the example's config, so that its _build and dist are this script's.
sed -e "s|^app = \".\"|app = \"$ex\"|" -e "s|\"pki/|\"$ex/pki/|g" \
  -e "s|dir = \"htdocs\"|dir = \"$ex/htdocs\"|" "$ex/unikernel.toml" >"$work/unikernel.toml"
(cd "$root" && cargo build -q -p mirage-cli)
uni="$root/target/debug/uni"
"$uni" -q -f "$work/unikernel.toml" build --target unix
cp "$work/dist/static-website" "$work/plain"
"$uni" -q -f "$work/unikernel.toml" build --target unix --trace
cp "$work/dist/static-website" "$work/traced"

echo "## keep-alive"
UNI_BIN="$work/traced" UNI_BASELINE="$work/plain" "$root/bench/website/run.sh" "$SECONDS_RUN" "$CONNS"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; echo "nothing on port $1" >&2; exit 1; }
declare -A P
for b in traced plain; do
  P[$b]=$(port)
  "$work/$b" --https-port="${P[$b]}" --http-port="$(port)" >"$work/$b.log" 2>&1 &
  wait_port "${P[$b]}"
done
echo
echo "## a new connection (TCP accept, TLS 1.3 handshake) per request"
echo "wrk -t1 -c$CONNS -d${SECONDS_RUN}s --latency -H 'Connection: close', $(date -u "+%F %H:%MZ"), load average before: $(cut -d" " -f1-3 /proc/loadavg)"
echo
echo "| round | build | requests/s | p50 | p99 |"
echo "|---|---|---:|---:|---:|"
for round in 1 2; do
  for b in traced plain; do
    out=$(wrk -t1 -c"$CONNS" -d"${SECONDS_RUN}s" --latency -H "Connection: close" "https://localhost:${P[$b]}/index.html")
    errs=$(grep -E "Non-2xx|Socket errors" <<<"$out" | tr '\n' ' ' || true)
    echo "| $round | $b | $(awk '/Requests\/sec/ {print $2}' <<<"$out") | $(awk '$1=="50%" {print $2}' <<<"$out") | $(awk '$1=="99%" {print $2}' <<<"$out") |${errs:+ $errs}"
  done
done
