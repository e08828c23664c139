#!/usr/bin/env bash
# HTTPS on the emulated Xen ARM board, uni against Linux + nginx (issue #16 item 4). Run by hand;
# not part of `cargo test` or CI (one board session holds both of the host's cores for minutes).
#
#   bench/website/nginx.sh [MIB]            cubieboard2's emulation (qemu-virt32); MIB default 64
#   BOARD=qemu-virt bench/website/nginx.sh  the 64-bit hypervisor
#   bench/website/nginx.sh qemu-virt [MIB]  the same
#
# Environment:
#   SECONDS_WRK (20)   wrk's duration; CONNS (16) its connections
#   ALSO_CONNS (0)     when set, wrk runs a second time with this many connections, reported as
#                      also_wrk=cN:<requests/s>/<p50>/<p99>/<errors>
#   SPLIT (0)          1: the dom0 script also prints `split` lines, the steps of each
#                      static-website guest's xl create → first 200 (its looks take dom0 time
#                      from the xl create it times: the first-200 figures are then not clean)
#   SECONDS_NEW (10)   openssl s_time -new's duration
#   URL_PATH           the path wrk fetches (/index.html)
#   LINUX_TRIES (1)    Linux boots to list; with 2, the second is measured if the first does not
#                      come up, and destroyed as soon as it exists if it did (which slowed the
#                      next guest's `xl create` by about 4 s in a trial run)
#   UNI_ALSO_MIB (4)   static-website once more at these sizes, after the like-for-like pair
#                      ("" for none)
#   TIMEOUT (900)      the whole board session
#   BENCH_DIR          /tmp/uni-bench-website-nginx
#   HEAVY_LOCK         a lock file the builds and the board session each run under (`flock`);
#                      or run the whole script under `flock /tmp/uni-heavy.lock` on the shared
#                      machine
#
# 1. builds examples/static-website for xen-arm (its own unikernel.toml: TLS 1.3, X25519,
#    ECDSA P-256, AES-128-GCM / ChaCha20-Poly1305);
# 2. builds the rig's Linux armhf domU (tests/tools/linux-guest.sh: Debian's armmp-lpae zImage
#    and a busybox initramfs) and appends to its initramfs a second archive with Debian
#    bookworm's armhf nginx-light (the `nginx` binary it depends on) and the shared libraries
#    that binary needs (libc6, libssl3's libssl and libcrypto, libpcre2-8-0, zlib1g, libcrypt1),
#    downloaded once with apt-get (armhf lists, the same cache as linux-guest.sh), an nginx.conf
#    serving examples/static-website/htdocs with examples/static-website/pki's certificate and
#    key, TLS 1.3 only with static-website's suites and group, and an /init that brings up
#    xen-netfront, takes a DHCP lease from dom0, starts nginx and prints `NGINX FIRST 200` once
#    nginx's access log has its first 200;
# 3. in ONE board session (bench/website/xen's `website-nginx` driver): the Linux domU, then
#    static-website, one after the other, both with memory = MIB, one vCPU on pCPU 1
#    (cpus = "1"), dom0 on pCPU 0 alone (its second vCPU taken offline, as bench/net does). For
#    each, from inside the driver's own network namespace (the board's LAN; nothing touches the
#    host's network): xl create → first HTTPS 200 (dom0's clock), a byte-for-byte check of
#    three files against htdocs/, the negotiated TLS version and suite (openssl s_client),
#    keep-alive requests/s with p50/p99 (wrk --latency), new TLS connections/s
#    (openssl s_time -new), then the guest is ended (Linux: its quit port; static-website:
#    a dom0 script destroys it when its console logs the request for /bench-done).
# Prints the driver's `result` lines and a markdown table for bench/README.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
case ${1:-} in
qemu-virt | qemu-virt-gicv2 | cubieboard2) BOARD=$1; shift ;;
esac
BOARD=${BOARD:-cubieboard2}
MIB=${1:-64}
[[ $MIB =~ ^[0-9]+$ ]] || { echo "nginx.sh: $MIB: not a memory size in MiB" >&2; exit 2; }
W=${BENCH_DIR:-/tmp/uni-bench-website-nginx}
mkdir -p "$W"
EX=$ROOT/examples/static-website
HEAVY=(); [ -z "${HEAVY_LOCK:-}" ] || HEAVY=(flock "$HEAVY_LOCK")
for t in wrk openssl curl apt-get dpkg-deb cpio gzip; do
  command -v $t >/dev/null || { echo "nginx.sh: $t not found (apt-get install wrk openssl curl apt dpkg cpio gzip)" >&2; exit 1; }
done

echo "== building static-website for xen-arm ($BOARD)" >&2
(cd "$EX" && "${HEAVY[@]}" cargo run -q --manifest-path "$ROOT/Cargo.toml" -p mirage-cli -- build --target xen-arm --board "$BOARD" >&2)

echo "== building the Linux armhf domU" >&2
"$ROOT/tests/tools/linux-guest.sh" "$W/linux"

echo "== nginx-light (armhf) and its libraries" >&2
C=${UNI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/uni}/linux-guest
ND=$C/nginx-debs
mkdir -p "$ND"
# the same apt setup as linux-guest.sh: bookworm's armhf lists in the cache, the host's apt
# untouched (linux-guest.sh has written sources.list and fetched the lists)
APT=(-oAPT::Architecture=armhf -oAPT::Architectures=armhf -oDir::State::Lists="$C/apt/lists"
     -oDir::Cache="$C/apt/cache" -oDir::Etc::SourceList="$C/apt/sources.list"
     -oDir::Etc::SourceParts=/dev/null -oDir::State::status=/dev/null -oAcquire::Languages=none
     -oAPT::Sandbox::User=root -qq)
PKGS=(nginx-light nginx libc6 libssl3 libpcre2-8-0 zlib1g libcrypt1)
have() { ls "$ND"/"$1"_*.deb >/dev/null 2>&1; }
missing=0; for p in "${PKGS[@]}"; do have "$p" || missing=1; done
if [ $missing = 1 ]; then
  echo "nginx.sh: downloading armhf packages (about 5 MB, once)" >&2
  apt-get "${APT[@]}" update >&2
  (cd "$ND" && apt-get "${APT[@]}" download "${PKGS[@]}")
fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
for p in "${PKGS[@]}"; do dpkg-deb -x "$(ls -t "$ND"/"$p"_*.deb | head -1)" "$T/x"; done
NGINX_VERSION=$(dpkg-deb -f "$(ls -t "$ND"/nginx_*_armhf.deb | head -1)" Version)
OPENSSL_VERSION=$(dpkg-deb -f "$(ls -t "$ND"/libssl3_*_armhf.deb | head -1)" Version)
R=$T/root
mkdir -p "$R"/{lib/arm-linux-gnueabihf,usr/sbin,etc/nginx/pki,srv,var/log/nginx,var/lib/nginx,run,bin}
cp "$T/x/usr/sbin/nginx" "$R/usr/sbin/nginx"
# the libraries nginx's ELF names (readelf -d: NEEDED), no more; the loader at its PT_INTERP path
for l in ld-linux-armhf.so.3 libc.so.6 libcrypt.so.1 libz.so.1; do
  cp -L "$T/x/lib/arm-linux-gnueabihf/$l" "$R/lib/arm-linux-gnueabihf/$l"
done
for l in libpcre2-8.so.0 libssl.so.3 libcrypto.so.3; do
  cp -L "$T/x/usr/lib/arm-linux-gnueabihf/$l" "$R/lib/arm-linux-gnueabihf/$l"
done
ln -s arm-linux-gnueabihf/ld-linux-armhf.so.3 "$R/lib/ld-linux-armhf.so.3"
cp "$T/x/etc/nginx/mime.types" "$R/etc/nginx/mime.types" 2>/dev/null ||
  dpkg-deb --fsys-tarfile "$(ls -t "$ND"/nginx-common_*.deb 2>/dev/null | head -1)" | tar -xO ./etc/nginx/mime.types > "$R/etc/nginx/mime.types"
cp -r "$EX/htdocs" "$R/srv/site"
cp "$EX/pki/server.pem" "$EX/pki/server.key" "$R/etc/nginx/pki/"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$R/etc/group"
cat > "$R/etc/nginx/nginx.conf" <<'N'
# bench/website/nginx.sh: static-website's site, certificate and protocol choice. One worker
# (the domU has one vCPU), the access log on (static-website logs every request to its console),
# no limit on requests per keep-alive connection (static-website has none; nginx's default of
# 1000 would make wrk reconnect, with a full handshake, mid-run).
user root;
worker_processes 1;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log warn;
events { worker_connections 512; }
http {
    sendfile on;
    tcp_nopush on;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /var/log/nginx/access.log;
    keepalive_requests 1000000;
    server {
        listen 443 ssl;
        ssl_certificate /etc/nginx/pki/server.pem;
        ssl_certificate_key /etc/nginx/pki/server.key;
        ssl_protocols TLSv1.3;
        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256;
        ssl_ecdh_curve X25519;
        root /srv/site;
        index index.html;
    }
    server {
        # static-website's port 80: a redirect to https
        listen 80;
        return 301 https://$host$request_uri;
    }
}
N
cat > "$R/init" <<'S'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/sbin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
echo "LINUX UP $(cut -d' ' -f1 /proc/uptime)s $(uname -r) MemTotal $(sed -n 's/MemTotal: *//p' /proc/meminfo)"
insmod /lib/modules/xen-netfront.ko
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
ip link set lo up; ip link set eth0 up
udhcpc -i eth0 -s /bin/dhcp-script -t 20 -T 1 -n -q >/tmp/udhcpc.log 2>&1 || cat /tmp/udhcpc.log
: > /var/log/nginx/access.log
if LD_LIBRARY_PATH=/lib/arm-linux-gnueabihf /usr/sbin/nginx -c /etc/nginx/nginx.conf; then
  echo "NGINX UP $(cut -d' ' -f1 /proc/uptime)s $(cat /tmp/ip 2>/dev/null) MemAvailable $(sed -n 's/MemAvailable: *//p' /proc/meminfo)"
else
  echo "NGINX FAILED"; cat /var/log/nginx/error.log
fi
# the first 200 nginx logs, on the console for dom0's clock (then this loop ends)
(until grep -q '" 200 ' /var/log/nginx/access.log; do sleep 0.02; done
 echo "NGINX FIRST 200 $(cut -d' ' -f1 /proc/uptime)s: $(grep -m1 '" 200 ' /var/log/nginx/access.log)") &
# the quit port: the driver's connection when it has measured; the access log's size first
(nc -l -p 99 -e /bin/true
 echo "LINUX QUIT: $(wc -l < /var/log/nginx/access.log) requests logged; MemAvailable $(sed -n 's/MemAvailable: *//p' /proc/meminfo)"
 grep -v '^$' /var/log/nginx/error.log | tail -n 5
 poweroff -f) &
while true; do sleep 3600; done
S
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -9) > "$T/nginx.gz"
cat "$W/linux/initrd.gz" "$T/nginx.gz" > "$W/linux/initrd-nginx.gz"
echo "nginx.sh: initramfs $(stat -c %s "$W/linux/initrd-nginx.gz") bytes (nginx $NGINX_VERSION, OpenSSL $OPENSSL_VERSION; the libraries and nginx $(du -sb "$R" | cut -f1) bytes unpacked)" >&2

# the xl files: both one vif (no MAC: the board numbers them, so Linux gets 10.0.0.2 and
# static-website 10.0.0.3), memory = MIB, pCPU 1
cat > "$W/linux-nginx.xl" <<X
name    = "linux-nginx"
kernel  = "linux/zImage"
ramdisk = "linux/initrd-nginx.gz"
memory  = $MIB
vcpus   = 1
cpus    = "1"
extra   = "console=hvc0 rdinit=/init quiet oops=panic panic=-1"
vif     = [ 'bridge=xenbr0' ]
X
sed -e '/^ *\(name\|memory\|vif\|cpus\|vcpus\) *=/d' "$EX/dist/static-website.xl" > "$W/static-website.xl"
cat >> "$W/static-website.xl" <<X
name    = "static-website"
memory  = $MIB
vcpus   = 1
cpus    = "1"
vif     = [ 'bridge=xenbr0' ]
X

# static-website once more at another size (default its unikernel.toml's 4 MiB), after the
# like-for-like pair: UNI_ALSO_MIB="" to leave it out
ALSO_MIB=${UNI_ALSO_MIB-4}
ALSO=()
for m in $ALSO_MIB; do
  sed -e '/^ *\(name\|memory\) *=/d' "$W/static-website.xl" > "$W/static-website-m$m.xl"
  printf 'name    = "static-website-m%s"\nmemory  = %s\n' "$m" "$m" >> "$W/static-website-m$m.xl"
  ALSO+=(--uni "$W/static-website-m$m.xl")
done

echo "== building the driver" >&2
BT=${WEBSITE_XEN_TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/website-xen}
"${HEAVY[@]}" env CARGO_TARGET_DIR="$BT" cargo build -q --release --manifest-path "$ROOT/bench/website/xen/Cargo.toml" --bin website-nginx
BIN=$BT/release/website-nginx

LINUX=()
for _ in $(seq "${LINUX_TRIES:-1}"); do LINUX+=(--nginx "$W/linux-nginx.xl"); done
echo "== one board session ($BOARD): Linux + nginx (up to ${LINUX_TRIES:-1} boots), then static-website; memory = $MIB MiB${ALSO_MIB:+; then static-website at $ALSO_MIB MiB}" >&2
cd "$W"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" status --porcelain -- examples/static-website libs runtime 2>/dev/null | grep -q . && echo ' (with local changes in the guests'"'"' code)')"
  echo "nginx $NGINX_VERSION, OpenSSL $OPENSSL_VERSION (Debian bookworm armhf); static-website $(stat -c %s "$EX/dist/static-website.xen") bytes; memory = $MIB MiB for both"
} | tee head.out
set +e
"${HEAVY[@]}" bash -c 'echo "load before: $(cut -d" " -f1-3 /proc/loadavg)"; exec "$@"' _ \
  timeout --kill-after=30 $((${TIMEOUT:-900} + 60)) "$BIN" --board "$BOARD" --timeout "${TIMEOUT:-900}" \
  --ca "$EX/pki/ca.pem" --htdocs "$EX/htdocs" --path "${URL_PATH:-/index.html}" \
  --wrk-seconds "${SECONDS_WRK:-20}" --conns "${CONNS:-16}" --new-seconds "${SECONDS_NEW:-10}" --also-conns "${ALSO_CONNS:-0}" \
  $( [ "${SPLIT:-0}" = 1 ] && echo --split ) \
  "${LINUX[@]}" --uni "$W/static-website.xl" "${ALSO[@]}" | tee run.out
rc=${PIPESTATUS[0]}
set -e
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a run.out

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
echo
echo "| board | server | memory (MiB) | xl create → first console output | xl create → first HTTPS 200 (dom0 clock) | TLS | keep-alive requests/s (wrk -c${CONNS:-16}, ${SECONDS_WRK:-20} s) | p50 | p99 | new TLS connections/s (s_time -new, ${SECONDS_NEW:-10} s) | same files | how it ended |"
echo "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---|---|"
while read -r r; do
  g=$(field guest "$r"); m=$MIB; [[ $g != static-website-m* ]] || m=${g#static-website-m}
  printf '| %s | %s | %s | %s s | %s s | %s | %s | %s | %s | %s | %s | %s |\n' "$BOARD" "$(field server "$r")" "$m" \
    "$(field first_output_s "$r")" "$(field first_200_s "$r")" "$(field tls "$r")" "$(field rps "$r")" "$(field p50 "$r")" \
    "$(field p99 "$r")" "$(field new_per_s "$r")" "$(field same_files "$r")" "$(field outcome "$r" | tr _ ' ')"
done < <(grep '^result server=' run.out)
exit "$rc"
