#!/usr/bin/env bash
# The size libs/crypto and libs/tls add to a no_std armv7a-none-eabihf image (opt-level s,
# LTO, panic=abort): the same minimal program built bare, with the provider (feature crypto),
# and with rustls on top (feature tls). Prints a Markdown table row per build.
set -euo pipefail
cd "$(dirname "$0")/size"
root=$(cd ../../.. && pwd)
# As `uni build --target xen-arm` links an image: the real linker script, Thumb-2, the Cubieboard 2 CPU.
export RUSTFLAGS="-Clink-arg=-T$root/templates/xen-arm/link.ld -Ctarget-cpu=cortex-a7 -Ctarget-feature=+thumb-mode"
export RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/../../../target/bench-tls-size}"
# Section sizes from the ELF header table (readelf prints them in hex).
text() {
  readelf -S -W "$1" | sed 's/^ *\[ *[0-9]*\] *//' | while read -r name _type _addr _off size _rest; do
    case "$name" in .text|.rodata|.data|.bss) echo "$name $((16#$size))";; esac
  done | awk '{ s[$1]+=$2 } END { printf "%d %d %d\n", s[".text"], s[".rodata"], s[".data"]+s[".bss"] }'
}
printf '| build | .text | .rodata | .data+.bss  |\n|---|---:|---:|---:|\n'
for f in "" crypto tls; do
  cargo build -q --release --target armv7a-none-eabihf -Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem ${f:+--features $f}
  read -r t r d < <(text "$CARGO_TARGET_DIR/armv7a-none-eabihf/release/tls-size")
  printf '| %s | %d | %d | %d |\n' "${f:-bare unikernel (runtime only)}" "$t" "$r" "$d"
done
