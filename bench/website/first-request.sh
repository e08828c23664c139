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
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; echo "nothing on port $1" >&2; exit 1; }
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
mkdir -p "$work/nginx"
cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  access_log $work/nginx/access.log;
  client_body_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$p ssl;
    ssl_certificate $ex/pki/server.pem;
    ssl_certificate_key $ex/pki/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 1000000;
    root $ex/htdocs;
  }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work/nginx" & wait_port "$p"
echo "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'): $(measure "$p")"
