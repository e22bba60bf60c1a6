#!/usr/bin/env bash
# Makes the recovery key pair that the collector seals its WORM pieces to (HPKE, X25519),
# with openssl. See ARCHITECTURE.md, "The collector's streams in WORM":
#
#   deploy/recovery-key.sh OUT_DIR
#
#   OUT_DIR  output directory (created; existing files are never overwritten)
#
# Writes:
#   recovery.key   the private key, PKCS#8 PEM (`openssl genpkey -algorithm X25519`), mode 0600.
#                  Keep it OFFLINE with the recovery team, never on a collector host: whoever
#                  has it reads every piece; without it nobody can.
#   recovery.pub   the public key, SubjectPublicKeyInfo PEM (`openssl pkey -pubout`), mode 0644:
#                  the only file that goes to the collector (`[worm] recovery_public_key`).
#
# Prints the key id that every piece's header carries: the SHA-256 (hex) of the raw 32-byte
# X25519 public key (the last 32 bytes of the SubjectPublicKeyInfo DER).
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  sed -n '2,17p' "$0" >&2
  exit 2
fi
DIR=$1

command -v openssl >/dev/null || { echo "recovery-key: openssl not found" >&2; exit 1; }
mkdir -p "$DIR"
for f in recovery.key recovery.pub; do
  if [ -e "$DIR/$f" ]; then
    echo "recovery-key: $DIR/$f exists; refusing to overwrite" >&2
    exit 1
  fi
done

umask 077
# Made beside the final files (same file system), so the private key is never copied.
WORK=$(mktemp -d "$DIR/.recovery-key.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

openssl genpkey -algorithm X25519 -out "$WORK/recovery.key" 2>/dev/null
openssl pkey -in "$WORK/recovery.key" -pubout -out "$WORK/recovery.pub"

# SPKI DER of an X25519 key: 12 bytes of algorithm header (OID 1.3.101.110), then the key.
DER_HEX=$(openssl pkey -pubin -in "$WORK/recovery.pub" -outform DER | od -An -v -tx1 | tr -d ' \n')
if [ ${#DER_HEX} -ne 88 ] || [ "${DER_HEX:0:24}" != 302a300506032b656e032100 ]; then
  echo "recovery-key: unexpected public key DER from openssl: $DER_HEX" >&2
  exit 1
fi
KEY_ID=$(openssl pkey -pubin -in "$WORK/recovery.pub" -outform DER | tail -c 32 | openssl dgst -sha256 -r | cut -d' ' -f1)

chmod 0600 "$WORK/recovery.key"
chmod 0644 "$WORK/recovery.pub"
# ln fails if the name exists: no overwrite even if another run raced us since the check.
ln "$WORK/recovery.key" "$DIR/recovery.key"
ln "$WORK/recovery.pub" "$DIR/recovery.pub"

echo "recovery-key: wrote $DIR/recovery.key (private, 0600) and $DIR/recovery.pub"
echo "recovery key id: $KEY_ID"
echo "recovery-key: move recovery.key OFFLINE to the recovery team, never onto a collector host;" \
  "only recovery.pub goes into the collector's [worm] recovery_public_key"
