#!/usr/bin/env bash
# TLS server cost (issue #16 item 6): the server's own CPU time (utime + stime of its process,
# from /proc/PID/stat) per full handshake and per MiB of bulk data, under the same client load,
# for examples/tls-echo (uni-tls + uni-crypto, unix target, release) against nginx (1 worker)
# and `gnutls-serv --echo`, all with one ECDSA P-256 certificate, TLS 1.3, on loopback.
# Dividing the server's CPU by the work done takes the client out of the figure: the
# handshakes/s of bench/tls/run.sh are bound by the client, `openssl s_time`.
#
#   per handshake  `openssl s_time -new -tls1_3` (full handshakes, no resumption) for SECONDS s
#   per MiB echoed tls-echo, gnutls-serv: MB MiB of text lines sent by a Python ssl (OpenSSL)
#                  client, every byte decrypted and sent back encrypted, and read back whole
#                  nginx cannot echo: `curl --data-binary` uploads MB MiB to a `return 204`
#                  location (nginx reads and drops the body: decrypt), then curl downloads an
#                  MB MiB file (encrypt); its row is the sum of the two
#
# Usage: bench/tls/cost.sh [SECONDS=10] [MB=256]. Needs openssl, gnutls-bin, nginx, curl.
# UNI_BIN=PATH uses that tls-echo build (it must take --port) instead of building one.
set -euo pipefail
SECONDS_RUN=${1:-10}
MB=${2:-256}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"

# One P-256 CA and server certificate for localhost (bench/tls/common.sh).
. "$root/bench/tls/common.sh"

if [ -n "${UNI_BIN:-}" ]; then
  bin=$UNI_BIN
else
  tls_echo_build
  bin=./dist/tls-echo
fi

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; echo "nothing on port $1" >&2; exit 1; }
# The CPU time of process $1 in clock ticks (utime + stime).
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

P1=$(port); "$bin" --port="$P1" >/dev/null & pid1=$!; wait_port "$P1"
P3=$(port); gnutls-serv --echo -p "$P3" --x509certfile server.pem --x509keyfile server.key >/dev/null 2>&1 & pid3=$!; wait_port "$P3"

P2=$(port)
mkdir -p nginx htdocs
head -c "${MB}M" /dev/zero > htdocs/big.bin
chmod -R a+rX "$work"   # nginx's worker runs as nobody when started as root
cat > nginx.conf <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$P2 ssl;
    ssl_certificate $work/server.pem;
    ssl_certificate_key $work/server.key;
    ssl_protocols TLSv1.3;
    ssl_session_tickets off;
    root $work/htdocs;
    location = /upload { client_max_body_size 0; return 204; }
  }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work/nginx" & wait_port "$P2"
# The one worker does the TLS work; the master only watches it.
pid2=$(pgrep -P "$(cat nginx.pid)" | head -1)

# handshakes PORT PID → "handshakes cpu_seconds"
handshakes() {
  local t0 out
  t0=$(ticks "$2")
  out=$(openssl s_time -connect "127.0.0.1:$1" -new -tls1_3 -time "$SECONDS_RUN" 2>/dev/null)
  awk -v a="$t0" -v b="$(ticks "$2")" -v hz="$hz" '/connections in .* real seconds/ { printf "%d %.2f", $1, (b - a) / hz }' <<<"$out"
}
# echoed PORT PID → "cpu_seconds" for MB MiB sent and all of it read back (Python's ssl, that
# is OpenSSL, as the client: it keeps at most 1 MiB in flight and reads every byte back)
echoed() {
  local t0
  t0=$(ticks "$2")
  python3 - "$1" "$MB" <<'PY'
import socket, ssl, sys
port, total = int(sys.argv[1]), int(sys.argv[2]) << 20
ctx = ssl.create_default_context(cafile="ca.pem")
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
block = (b"a" * 1023 + b"\n") * 64  # text lines: gnutls-serv --echo echoes lines
sent = got = 0
while got < total:
    if sent < total and sent - got < (1 << 20):
        s.sendall(block)
        sent += len(block)
        continue
    data = s.recv(1 << 16)
    if not data:
        sys.exit(f"port {port}: the server closed after echoing {got} bytes of {total}")
    got += len(data)
s.close()
PY
  awk -v a="$t0" -v b="$(ticks "$2")" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }'
}
# nginx_bulk → "upload_cpu download_cpu"
nginx_bulk() {
  local t0 t1 t2
  t0=$(ticks "$pid2")
  curl -fsS --cacert ca.pem --resolve "localhost:$P2:127.0.0.1" --data-binary @htdocs/big.bin -o /dev/null "https://localhost:$P2/upload"
  t1=$(ticks "$pid2")
  curl -fsS --cacert ca.pem --resolve "localhost:$P2:127.0.0.1" -o /dev/null "https://localhost:$P2/big.bin"
  t2=$(ticks "$pid2")
  awk -v a="$t0" -v b="$t1" -v c="$t2" -v hz="$hz" 'BEGIN { printf "%.2f %.2f", (b - a) / hz, (c - b) / hz }'
}

read -r h1 c1 <<<"$(handshakes "$P1" "$pid1")"
read -r h2 c2 <<<"$(handshakes "$P2" "$pid2")"
read -r h3 c3 <<<"$(handshakes "$P3" "$pid3")"
b1=$(echoed "$P1" "$pid1")
read -r u2 d2 <<<"$(nginx_bulk)"
b3=$(echoed "$P3" "$pid3")

cipher=$(echo | openssl s_client -connect "127.0.0.1:$P1" -tls1_3 2>/dev/null | awk '/Cipher is/ { print $NF; exit }')
echo "# $(date -u '+%F %H:%MZ'), $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(openssl version | cut -d' ' -f1-2), $(gnutls-cli --version | head -1), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'); TLS 1.3 $cipher, X25519, ECDSA P-256; s_time ${SECONDS_RUN} s, ${MB} MiB"
echo "| server | handshakes (s_time) | server CPU s | CPU ms per handshake | ×uni | bulk server CPU s | CPU ms per MiB | ×uni |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
row() { # name handshakes cpu bulk_cpu; ratios against uni's
  awk -v n="$1" -v h="$2" -v c="$3" -v b="$4" -v mb="$MB" -v uh="$h1" -v uc="$c1" -v ub="$b1" 'BEGIN {
    ph = 1000 * c / h; pu = 1000 * uc / uh; pm = 1000 * b / mb; pmu = 1000 * ub / mb
    printf "| %s | %d | %.2f | %.3f | %.2f | %.2f | %.2f | %.2f |\n", n, h, c, ph, ph / pu, b, pm, pm / pmu }'
}
row "uni tls-echo (echo: decrypt + encrypt)" "$h1" "$c1" "$b1"
row "nginx, 1 worker (upload $u2 s + download $d2 s)" "$h2" "$c2" "$(awk -v a="$u2" -v b="$d2" 'BEGIN { print a + b }')"
row "gnutls-serv --echo (decrypt + encrypt)" "$h3" "$c3" "$b3"
