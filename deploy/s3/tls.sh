#!/usr/bin/env bash
# usage: deploy/s3/tls.sh DIR
#
# Makes a throwaway test CA and a leaf server certificate for 127.0.0.1 / localhost in DIR:
#   DIR/ca.crt  DIR/ca.key  DIR/server.crt  DIR/server.key  DIR/server-bundle.pem (key + cert, for LocalStack)
# rustls refuses a self-signed CA certificate used as the server certificate (CaUsedAsEndEntity),
# so the server gets a leaf (CA:FALSE) signed by the CA, and clients trust ca.crt.
# Idempotent: if a valid pair already exists (leaf verifies against the CA and is valid for at least
# one more day), nothing is changed.
set -euo pipefail

die() { echo "tls.sh: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 DIR"
command -v openssl >/dev/null || die "openssl not found (apt-get install -y openssl)"

DIR=$1
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
DAYS=${REDOVAULT_TLS_DAYS:-30}
# One more IP address the server certificate names (multi-host tests), besides 127.0.0.1.
ALSO_IP=${REDOVAULT_TLS_ALSO_IP:-}

valid() {
  [ -s "$DIR/ca.crt" ] && [ -s "$DIR/ca.key" ] && [ -s "$DIR/server.crt" ] && [ -s "$DIR/server.key" ] \
    && [ -s "$DIR/server-bundle.pem" ] \
    && openssl verify -CAfile "$DIR/ca.crt" "$DIR/server.crt" >/dev/null 2>&1 \
    && openssl x509 -in "$DIR/server.crt" -noout -checkend 86400 >/dev/null 2>&1 \
    && openssl x509 -in "$DIR/server.crt" -noout -checkip 127.0.0.1 2>/dev/null | grep -q 'does match' \
    && { [ -z "$ALSO_IP" ] || openssl x509 -in "$DIR/server.crt" -noout -checkip "$ALSO_IP" 2>/dev/null | grep -q 'does match'; }
}

if valid; then
  echo "tls.sh: reusing $DIR/ca.crt and $DIR/server.crt"
  exit 0
fi

# Build in a temporary directory, then move into place, so an interrupted run never leaves a half pair.
TMP=$(mktemp -d "$DIR/.tls.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
(
  cd "$TMP"
  umask 077
  openssl req -x509 -newkey rsa:2048 -nodes -days "$DAYS" -subj "/CN=redovault-s3-test-ca" \
    -keyout ca.key -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
  printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost${ALSO_IP:+,IP:$ALSO_IP}" 'basicConstraints=critical,CA:FALSE' \
    'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' > server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days "$DAYS" \
    -out server.crt -extfile server.ext 2>/dev/null
  cat server.key server.crt > server-bundle.pem
  chmod 644 ca.crt server.crt
)
for f in ca.key server.key server-bundle.pem server.crt ca.crt; do mv -f "$TMP/$f" "$DIR/$f"; done
valid || die "generated certificates in $DIR do not verify"
echo "tls.sh: new CA $DIR/ca.crt, server certificate $DIR/server.crt (127.0.0.1, localhost, $DAYS days)"
