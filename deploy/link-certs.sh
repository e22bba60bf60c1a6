#!/usr/bin/env bash
# Makes the certificates of the extractor-collector link (TLS 1.3, mutual authentication)
# with openssl, for production. Same files as `redovault::crypto::tls::generate_pki`:
#
#   deploy/link-certs.sh DIR [CLIENT_NAME [SERVER_NAME...]]
#
#   DIR          output directory (created; existing files are never overwritten)
#   CLIENT_NAME  the extractor's id: CN and DNS SAN of client.pem (default redovault-extractor)
#   SERVER_NAME  names the extractor uses to reach the collector: DNS names or IP addresses,
#                the first is also the CN (default: localhost 127.0.0.1 redovault-collector)
#
# Writes (keys are PKCS#8 ECDSA P-256, mode 0600):
#   ca.pem, ca.key           the link CA. Keep ca.key OFFLINE: whoever has it can mint
#                            extractors. Both sides trust ca.pem.
#   server.pem, server.key   the collector (extendedKeyUsage serverAuth)
#   client.pem, client.key   the extractor (extendedKeyUsage clientAuth)
#
# Environment: LINK_CA_DAYS (3650), LINK_DAYS (825).
set -euo pipefail

if [ $# -lt 1 ]; then
  sed -n '2,20p' "$0" >&2
  exit 2
fi
DIR=$1
CLIENT=${2:-redovault-extractor}
if [ $# -ge 3 ]; then
  SERVERS=("${@:3}")
else
  SERVERS=(localhost 127.0.0.1 redovault-collector)
fi
CA_DAYS=${LINK_CA_DAYS:-3650}
DAYS=${LINK_DAYS:-825}

command -v openssl >/dev/null || { echo "link-certs: openssl not found" >&2; exit 1; }
mkdir -p "$DIR"
for f in ca.pem ca.key server.pem server.key client.pem client.key; do
  if [ -e "$DIR/$f" ]; then
    echo "link-certs: $DIR/$f exists; refusing to overwrite" >&2
    exit 1
  fi
done

umask 077
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
serial() { echo "0x$(openssl rand -hex 16)"; }

# SAN list: IP: for addresses, DNS: for names.
san() {
  local out="" n
  for n in "$@"; do
    if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then out+="IP:$n,"; else out+="DNS:$n,"; fi
  done
  echo "${out%,}"
}

# CA.
newkey "$WORK/ca.key"
openssl req -x509 -new -key "$WORK/ca.key" -sha256 -days "$CA_DAYS" \
  -subj "/CN=redovault link CA" -set_serial "$(serial)" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash" \
  -out "$WORK/ca.pem"

# leaf NAME EKU SAN...
leaf() {
  local name=$1 eku=$2 cn=$3
  shift 3
  newkey "$WORK/$name.key"
  openssl req -new -key "$WORK/$name.key" -subj "/CN=$cn" -out "$WORK/$name.csr"
  cat >"$WORK/$name.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=$eku
subjectAltName=$(san "$@")
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
  openssl x509 -req -in "$WORK/$name.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
    -set_serial "$(serial)" -days "$DAYS" -sha256 -extfile "$WORK/$name.ext" \
    -out "$WORK/$name.pem" 2>/dev/null
}
leaf server serverAuth "${SERVERS[0]}" "${SERVERS[@]}"
leaf client clientAuth "$CLIENT" "$CLIENT"

openssl verify -CAfile "$WORK/ca.pem" "$WORK/server.pem" "$WORK/client.pem" >/dev/null

for f in ca.key server.key client.key; do install -m 0600 "$WORK/$f" "$DIR/$f"; done
for f in ca.pem server.pem client.pem; do install -m 0644 "$WORK/$f" "$DIR/$f"; done
echo "link-certs: wrote $DIR/{ca,server,client}.{pem,key} (client $CLIENT; server ${SERVERS[*]}); keep ca.key offline"
