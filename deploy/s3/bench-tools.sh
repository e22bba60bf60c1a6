#!/usr/bin/env bash
# usage: deploy/s3/bench-tools.sh STATE_DIR_PARENT
#
# Installs the aws CLI v1 (`pip install awscli`) into STATE_DIR_PARENT/venv-awscli, beside the LocalStack venv,
# with the system python3, if it is not there yet, and prints the path of its `aws` binary on stdout (the only
# line on stdout). The system Python is not modified. Used by the store benchmark (our uploader vs curl -T vs
# aws s3 cp). Against Ceph, run aws with AWS_REQUEST_CHECKSUM_CALCULATION=when_required (Ceph refuses the
# aws-chunked bodies the CLI sends by default). See README.md for the exact commands.
#
# Environment: REDOVAULT_AWSCLI_SPEC (default: awscli, the newest v1 on PyPI), REDOVAULT_SYSTEM_PYTHON.
set -euo pipefail

die() { echo "bench-tools.sh: ERROR: $*" >&2; exit 1; }
if [ $# -ne 1 ] || [ -z "$1" ]; then die "usage: $0 STATE_DIR_PARENT"; fi
PARENT=$(realpath -m -- "$1")
VENV=$PARENT/venv-awscli
STAMP=$VENV/.installed-awscli
SPEC=${REDOVAULT_AWSCLI_SPEC:-awscli}

if [ -f "$STAMP" ] && [ -x "$VENV/bin/aws" ] && "$VENV/bin/aws" --version >/dev/null 2>&1; then
  echo "$VENV/bin/aws"
  exit 0
fi

# The system python3 (Debian's /usr/bin/python3 first; a pyenv shim on PATH is the fallback).
PY=
for c in "${REDOVAULT_SYSTEM_PYTHON:-}" /usr/bin/python3 python3; do
  [ -n "$c" ] || continue
  if "$c" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 9) else 1)' >/dev/null 2>&1; then
    PY=$c
    break
  fi
done
[ -n "$PY" ] || die "no python3 >= 3.9 with the venv module (Debian: apt-get install -y python3-venv)"
[ "$(id -u)" -eq 0 ] || [ -w "$PARENT" ] || die "cannot write $PARENT (run as root)"

echo "bench-tools.sh: installing $SPEC into $VENV with $PY" >&2
start=$(date +%s)
mkdir -p "$PARENT"
rm -rf -- "$VENV"
"$PY" -m venv "$VENV" || die "$PY -m venv $VENV failed"
"$VENV/bin/pip" install -q --disable-pip-version-check "$SPEC" >&2 || die "pip install $SPEC failed"
"$VENV/bin/aws" --version >&2 || die "$VENV/bin/aws does not run"
touch "$STAMP"
echo "bench-tools.sh: aws CLI installed in $(($(date +%s) - start))s" >&2
echo "$VENV/bin/aws"
