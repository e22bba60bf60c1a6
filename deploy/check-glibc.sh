#!/usr/bin/env bash
# Checks that each binary runs on glibc 2.28 (Oracle Linux / RHEL 8) or newer: no dynamic symbol
# it imports may need a newer glibc symbol version.
#
#   deploy/check-glibc.sh BIN...
#
# Reads the version needs of each binary's dynamic symbols (`objdump -T`), prints the highest
# GLIBC_ version each one needs, and fails naming every symbol and version above the limit.
# Environment: REDOVAULT_MAX_GLIBC (default 2.28).
set -euo pipefail

MAX=${REDOVAULT_MAX_GLIBC:-2.28}
[ $# -gt 0 ] || { echo "usage: $0 BIN..." >&2; exit 2; }
command -v objdump >/dev/null || { echo "check-glibc.sh: objdump not found (apt-get install binutils)" >&2; exit 2; }

# True when version $1 is above version $2 (dotted numbers).
above() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n1)" = "$1" ]; }

failed=0
for bin in "$@"; do
  [ -f "$bin" ] || { echo "check-glibc.sh: $bin: no such file" >&2; failed=1; continue; }
  # Lines such as `0000000000000000      DF *UND*  0000000000000000 (GLIBC_2.34) __libc_start_main`
  # (`GLIBC_2.2.5` without parentheses when it is the only version of the symbol).
  syms=$(objdump -T "$bin" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\(?GLIBC_[0-9.]+\)?$/) {
           v = $i; gsub(/[()]/, "", v); sub(/^GLIBC_/, "", v); print v, $NF } }') \
    || { echo "check-glibc.sh: objdump -T $bin failed" >&2; failed=1; continue; }
  if [ -z "$syms" ]; then
    echo "check-glibc.sh: $bin: no GLIBC symbol versions found (not a dynamic glibc binary?)" >&2
    failed=1
    continue
  fi
  highest=$(cut -d' ' -f1 <<<"$syms" | sort -uV | tail -n1)
  bad=0
  while read -r version symbol; do
    if above "$version" "$MAX"; then
      echo "check-glibc.sh: $bin needs $symbol@GLIBC_$version (above GLIBC_$MAX)" >&2
      bad=1
    fi
  done <<<"$syms"
  if [ "$bad" -eq 0 ]; then
    echo "$bin: highest GLIBC_$highest (limit GLIBC_$MAX): OK"
  else
    echo "$bin: highest GLIBC_$highest, above the limit GLIBC_$MAX" >&2
    failed=1
  fi
done
exit "$failed"
