#!/usr/bin/env bash
# TLS 1.3 on loopback: examples/tls-echo (uni-tls + uni-crypto, unix target, release) against
# `openssl s_server` and `gnutls-serv --echo`, with the same ECDSA P-256 key, in one run.
#
#   handshakes/s  `openssl s_time -new` (full handshakes, no resumption) for SECONDS seconds
#   bulk MB/s     MB bytes pushed through `openssl s_client` until its close_notify; tls-echo and
#                 gnutls-serv --echo also send every byte back (s_server only reads)
#
# Usage: bench/tls/run.sh [SECONDS=10] [MB=256]. Needs openssl, gnutls-bin.
set -euo pipefail
SECONDS_RUN=${1:-10}
MB=${2:-256}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"

# One P-256 CA and server certificate for localhost, and tls-echo built with it.
. "$root/bench/tls/common.sh"
tls_echo_build

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; echo "nothing on port $1" >&2; exit 1; }

P1=$(port); ./dist/tls-echo --port="$P1" >/dev/null & wait_port "$P1"
P2=$(port); openssl s_server -accept "$P2" -cert server.pem -key server.key -quiet >/dev/null 2>&1 & wait_port "$P2"
P3=$(port); gnutls-serv --echo -p "$P3" --x509certfile server.pem --x509keyfile server.key >/dev/null 2>&1 & wait_port "$P3"

handshakes() {
  openssl s_time -connect "127.0.0.1:$1" -new -tls1_3 -time "$SECONDS_RUN" 2>/dev/null \
    | awk '/connections in .* real seconds/ { printf "%.0f", $1 / $4 }'
}
bulk() {
  local t0 t1
  t0=$(date +%s.%N)
  head -c "${MB}M" /dev/zero | openssl s_client -connect "127.0.0.1:$1" -tls1_3 -quiet -no_ign_eof >/dev/null 2>&1 || true
  t1=$(date +%s.%N)
  awk -v mb="$MB" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", mb / (b - a) }'
}

cipher=$(echo | openssl s_client -connect "127.0.0.1:$P1" -tls1_3 2>/dev/null | awk '/Cipher is/ { print $NF; exit }')
echo "# $(date -u +%F), $(nproc) cores, $(openssl version | cut -d' ' -f1-2), $(gnutls-cli --version | head -1), TLS 1.3 $cipher, X25519, ECDSA P-256"
echo "| server | handshakes/s | bulk MB/s (${MB} MiB) |"
echo "|---|---:|---:|"
echo "| uni tls-echo (uni-tls/uni-crypto, unix) | $(handshakes "$P1") | $(bulk "$P1") (echoed) |"
echo "| openssl s_server | $(handshakes "$P2") | $(bulk "$P2") (read only) |"
echo "| gnutls-serv --echo | $(handshakes "$P3") | $(bulk "$P3") (echoed) |"
