#!/usr/bin/env bash
# Makes the Python venv of the independent piece reader, tests/interop/open_piece.py: pyhpke
# (RFC 9180 HPKE on pyca/cryptography, which comes with it) and zstandard (compressed chunks)
# from PyPI, pinned.
#
#   deploy/interop-venv.sh VENV_DIR
#
#   VENV_DIR  the venv (created if missing; kept and reused once it imports pyhpke)
#
# Prints the venv's python on its last line (and nothing else on stdout), so:
#   PY=$(deploy/interop-venv.sh .ci/state/venv-interop | tail -n1)
#   "$PY" tests/interop/open_piece.py --key recovery.key PIECE...
# Safe to run concurrently (flock on VENV_DIR.lock). The system Python is not modified.
#
# Environment: REDOVAULT_SYSTEM_PYTHON (a python3 >= 3.10 with the venv module; default:
# /usr/bin/python3, then python3 on PATH).
set -euo pipefail

PYHPKE=pyhpke==0.6.5
ZSTANDARD=zstandard==0.23.0

die() { echo "interop-venv: $*" >&2; exit 1; }
if [ $# -ne 1 ] || [ -z "$1" ]; then
  sed -n '2,15p' "$0" >&2
  exit 2
fi
VENV=$(realpath -m -- "$1")
STAMP=$VENV/.installed-$PYHPKE-$ZSTANDARD

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9

ready() { [ -f "$STAMP" ] && "$VENV/bin/python" -c 'import pyhpke, zstandard' >/dev/null 2>&1; }
if ready; then
  echo "$VENV/bin/python"
  exit 0
fi

PY=
for c in "${REDOVAULT_SYSTEM_PYTHON:-}" /usr/bin/python3 python3; do
  [ -n "$c" ] || continue
  if "$c" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 10) else 1)' >/dev/null 2>&1; then
    PY=$c
    break
  fi
done
[ -n "$PY" ] || die "no python3 >= 3.10 with the venv module (Debian: apt-get install -y python3-venv)"

# Only ever remove a venv (or an empty directory), never whatever else VENV_DIR names.
if [ -e "$VENV" ]; then
  if [ -f "$VENV/pyvenv.cfg" ] || [ -z "$(ls -A "$VENV")" ]; then
    rm -rf -- "$VENV"
  else
    die "$VENV exists and is not a venv; refusing to replace it"
  fi
fi
echo "interop-venv: installing $PYHPKE $ZSTANDARD into $VENV with $PY" >&2
"$PY" -m venv "$VENV" || die "$PY -m venv $VENV failed"
"$VENV/bin/pip" install -q --disable-pip-version-check "$PYHPKE" "$ZSTANDARD" >&2 ||
  die "pip install $PYHPKE $ZSTANDARD failed"
"$VENV/bin/python" -c 'import pyhpke, zstandard' || die "pyhpke or zstandard does not import in $VENV"
touch "$STAMP"
echo "$VENV/bin/python"
