#!/usr/bin/env bash
# Checks every systemd unit in this directory with `systemd-analyze verify`.
#
# Usage: deploy/systemd/verify.sh BIN_DIR
# BIN_DIR holds the built binaries (e.g. target/debug). The units name /usr/bin/redovault...
# (where the .deb and the .rpm install the programs); systemd-analyze checks that ExecStart
# binaries exist, so the units are verified from a copy that points at BIN_DIR instead. Exits
# non-zero on any warning or error.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin_dir="$(cd "${1:?usage: verify.sh BIN_DIR}" && pwd)"
if ! command -v systemd-analyze >/dev/null; then
    echo "verify.sh: systemd-analyze not found (apt-get install systemd)" >&2
    exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for unit in "$here"/*.service; do
    sed "s#/usr/bin/redovault#$bin_dir/redovault#g" "$unit" > "$work/$(basename "$unit")"
done
for b in $(grep -ho '/usr/bin/redovault[a-z-]*' "$here"/*.service | sort -u); do
    if [[ ! -x "$bin_dir/$(basename "$b")" ]]; then
        echo "verify.sh: $bin_dir/$(basename "$b") missing (build the workspace binaries first)" >&2
        exit 1
    fi
done
out="$(cd "$work" && systemd-analyze verify ./*.service 2>&1)" || { echo "$out" >&2; exit 1; }
if [[ -n "$out" ]]; then
    echo "$out" >&2
    echo "verify.sh: systemd-analyze printed warnings" >&2
    exit 1
fi
echo "systemd units OK: $(cd "$here" && ls ./*.service | xargs -n1 basename | tr '\n' ' ')"
