# Sourced by run.sh and cost.sh, in their work directory: one P-256 CA and a server certificate
# for localhost (ca.pem, server.pem, server.key), and examples/tls-echo built for the unix
# target with that certificate (tls_echo_build: ./dist/tls-echo). Needs $root.

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost\n' > ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out server.pem 2>/dev/null

tls_echo_build() {
  cat > unikernel.toml <<TOML
[unikernel]
schema = 1
name = "tls-echo"
app = "$root/examples/tls-echo"
[devices.console]
kind = "console"
[devices.net]
kind = "net"
stack = "socket"
[devices.tls]
kind = "tls"
net = "net"
cert = "server.pem"
key = "server.key"
[devices.args]
kind = "args"
TOML
  (cd "$root" && cargo build -q --release -p mirage-cli)
  "$root/target/release/uni" build --target unix >/dev/null 2>&1 || "$root/target/release/uni" build --target unix
}
