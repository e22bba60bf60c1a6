#!/usr/bin/env bash
# The README's first command: the whole of redovault on this machine, on embedded defaults,
# through the attack drill (`redovault drill`):
#   - a simulated Oracle (five bank tables, at least ten transactions each, plus a background
#     workload) writes real-format redo; the watcher ships every archived log into WORM, the
#     extractor streams the online log over TLS 1.3 (certificates made on the fly) to the
#     collector, which stores it AES-256-GCM encrypted;
#   - the attack: the database crashes, the daemons are killed, zeros over the online logs,
#     rm -rf of the archive destination, the online logs, redovault's state and configuration
#     (and, on S3, deletes / overwrites / retention changes with the database host's keys);
#   - recovery from nothing with read-only keys, then the referee's checks; it prints the
#     verdict, RPO (commits lost) and RTO.
# The store is a local directory unless the S3 test server of `deploy/test.sh` runs
# (`.ci/state/ceph/env.sh`, or `--s3-env FILE`); `--local` forces the directory.
# Extra arguments go to `redovault drill` (see `redovault drill --help`), which runs
# `redovault-drill drill` built beside it (the drill's own program, never packaged).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
echo "==> building redovault, redovault-extractor, redovault-collector, redovault-verifier, redovault-drill (release)"
cargo build --release --quiet --workspace --bins
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
exec "$TARGET/release/redovault" drill --dir "${REDOVAULT_DRILL_DIR:-$ROOT/redovault-drill}" "$@"
