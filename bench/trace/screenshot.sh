#!/usr/bin/env bash
# docs/tracing-handshake.png (issue #18 item 4): examples/static-website on unix, traced
# (`uni run --trace`), answers one HTTPS request from curl and is stopped with SIGTERM; then
# bench/trace/screenshot.mjs opens the trace in Chromium's DevTools (Performance panel), headless,
# and takes the picture of that connection's TCP accept, TLS handshake and HTTP request.
#
# Usage: bench/trace/screenshot.sh [OUT.png]   (default docs/tracing-handshake.png)
# UNI_SHOT_TRACE=FILE keeps the trace (Chrome JSON) as FILE.
# Needs chromium (Debian's `chromium`), node and npm (for puppeteer-core, installed into
# ~/.cache/uni/screenshot on first use). Not run by the tests or CI.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(realpath -m "${1:-$root/docs/tracing-handshake.png}")
ex="$root/examples/static-website"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# puppeteer-core, pinned, outside the checkout
node_dir=${UNI_CACHE_DIR:-$HOME/.cache/uni}/screenshot
if [ ! -d "$node_dir/node_modules/puppeteer-core" ]; then
  mkdir -p "$node_dir"
  (cd "$node_dir" && npm install --silent --no-audit --no-fund puppeteer-core@25.19.0 >&2)
fi

# A copy of the example's config, so that its _build and dist are this script's.
sed -e "s|^app = \".\"|app = \"$ex\"|" -e "s|\"pki/|\"$ex/pki/|g" \
  -e "s|dir = \"htdocs\"|dir = \"$ex/htdocs\"|" "$ex/unikernel.toml" >"$work/unikernel.toml"
(cd "$root" && cargo build -q -p mirage-cli)
uni="$root/target/debug/uni"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
https=$(port)
"$uni" -q -f "$work/unikernel.toml" run --target unix --trace "$work/trace.json" -- \
  --https-port="$https" --http-port="$(port)" >"$work/run.out" 2>"$work/run.err" &
pid=$!
for _ in $(seq 1200); do
  grep -q "https: listening" "$work/run.out" "$work/run.err" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/run.err" >&2; exit 1; }
  sleep 0.5
done
curl --silent --show-error --max-time 60 --cacert "$ex/pki/ca.pem" -o /dev/null \
  -w 'curl: HTTP %{http_code}\n' "https://localhost:$https/" >&2
kill -TERM "$pid"
wait "$pid" || true # 143: stopped by SIGTERM, the trace written
if [ -n "${UNI_SHOT_TRACE:-}" ]; then cp "$work/trace.json" "$UNI_SHOT_TRACE"; fi
PUPPETEER_DIR="$node_dir" node "$root/bench/trace/screenshot.mjs" "$work/trace.json" "$out"
echo "wrote $out" >&2
