#!/usr/bin/env bash
# The xen-arm image of examples/static-website per `tls` device choice (issue #16 item 2): the
# same app, site and certificate, built by the real `uni build --target xen-arm` with each
# choice of `versions`, `cipher-suites`, `kx-groups` and `signature-schemes`. Prints a
# Markdown table: image bytes, .text and .rodata of the ELF, and the ratio to the image with
# everything (the keys unset, as before they existed). Usage: bench/tls/image.sh [uni args…]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
ex=$root/examples/static-website
uni=${UNI:-"cargo run -q --manifest-path $root/Cargo.toml -p mirage-cli --"}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/bench-tls-image}

# name | tls keys (one per line, `;` separated)
configs=(
  "everything (keys unset)|"
  "TLS 1.2+1.3, ECDSA only (no RSA)|signature-schemes = [\"ECDSA_NISTP256_SHA256\", \"ECDSA_NISTP384_SHA384\", \"ED25519\"];cipher-suites = [\"TLS13_AES_128_GCM_SHA256\", \"TLS13_AES_256_GCM_SHA384\", \"TLS13_CHACHA20_POLY1305_SHA256\", \"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\", \"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\", \"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256\"]"
  "TLS 1.3 only, every group and scheme|versions = [\"TLSv1_3\"]"
  "TLS 1.3, X25519, ECDSA P-256, AES-128-GCM + ChaCha20 (the example's)|versions = [\"TLSv1_3\"];cipher-suites = [\"TLS13_AES_128_GCM_SHA256\", \"TLS13_CHACHA20_POLY1305_SHA256\"];kx-groups = [\"X25519\"];signature-schemes = [\"ECDSA_NISTP256_SHA256\"]"
)

section() { # ELF, section name -> size in bytes (readelf prints it in hex)
  readelf -S -W "$1" | sed 's/^ *\[ *[0-9]*\] *//' | while read -r n _t _a _o size _r; do
    if [ "$n" = "$2" ]; then echo $((16#$size)); fi
  done
}

printf '| tls choice | image (bytes) | KiB | .text | .rodata | vs everything | goal ≤ 524,288 |\n|---|---:|---:|---:|---:|---:|---|\n'
base=
i=0
for c in "${configs[@]}"; do
  i=$((i + 1))
  name=${c%%|*}
  keys=${c#*|}
  d=$scratch/c$i
  mkdir -p "$d"
  {
    printf '[unikernel]\nschema = 1\nname = "sw-tls-%d"\napp = "%s"\n\n' "$i" "$ex"
    printf '[devices.console]\nkind = "console"\n[devices.net]\nkind = "net"\n'
    printf '[devices.htdocs]\nkind = "kv_ro"\ndir = "%s/htdocs"\n' "$ex"
    printf '[devices.tls]\nkind = "tls"\nnet = "net"\ncert = "%s/pki/server.pem"\nkey = "%s/pki/server.key"\nalpn = ["http/1.1"]\n' "$ex" "$ex"
    [ -n "$keys" ] && printf '%s\n' "$keys" | tr ';' '\n'
    printf '[devices.https]\nkind = "http"\nnet = "net"\ntls = "tls"\n[devices.http]\nkind = "http"\nnet = "net"\n'
  } > "$d/unikernel.toml"
  (cd "$d" && $uni build --target xen-arm "$@" >/dev/null 2>"$d/err") || { cat "$d/err" >&2; exit 1; }
  img=$(stat -c %s "$d/dist/sw-tls-$i.xen")
  elf=$CARGO_TARGET_DIR/armv7a-none-eabihf/release/sw-tls-$i
  t=$(section "$elf" .text)
  r=$(section "$elf" .rodata)
  base=${base:-$img}
  goal=$([ "$img" -le 524288 ] && echo met || echo "not met ($((img - 524288)) over)")
  printf '| %s | %d | %.1f | %d | %d | %.2f | %s |\n' "$name" "$img" "$(echo "$img / 1024" | bc -l)" "$t" "$r" "$(echo "$img / $base" | bc -l)" "$goal"
done
