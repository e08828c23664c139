#!/bin/sh
# Makes the fixtures of tests/bad_config.rs's tls cases (run once; the files are committed):
# a P-256 CA and a certificate it issued for localhost, with its key in PKCS#8 and SEC1 form,
# the chain in order and reversed, keys that are not the certificate's (another P-256 key,
# Ed25519, RSA in PKCS#8 and PKCS#1, an encrypted one), and a self-signed Ed25519 certificate.
set -eu
cd "$(dirname "$0")"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
openssl req -x509 -new -key ca.key -subj "/CN=uni bad-tls CA" -days 36500 -out ca.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key
openssl ec -in server.key -out server-sec1.key 2>/dev/null
openssl req -new -key server.key -subj /CN=localhost -out server.csr
printf 'subjectAltName=DNS:localhost\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 36500 \
    -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl ca.key
cat server.pem ca.pem > chain.pem
cat ca.pem server.pem > reversed.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key
openssl genpkey -algorithm ED25519 -out ed25519.key
openssl req -x509 -new -key ed25519.key -subj /CN=localhost -days 36500 -out ed25519.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key
openssl pkey -in rsa.key -traditional -out rsa-pkcs1.key
openssl pkey -in server.key -aes256 -passout pass:uni -out encrypted.key
printf 'not a certificate\n' > garbage.pem
