#!/usr/bin/env bash
# The main job on embedded defaults, with no Oracle and no S3 needed:
# a simulated Oracle writes real-format redo and archives it; every archived log is checked
# with the redo parser (block checksums, records, commits) and put, create-only and
# read-only, into the local store. With REDOVAULT_S3_ENDPOINT (and AWS_* credentials,
# REDOVAULT_S3_BUCKET, REDOVAULT_S3_CA_FILE, REDOVAULT_S3_PATH_STYLE=true) set, the same
# archives go to S3 Object Lock instead.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${REDOVAULT_QUICKSTART_DIR:-$ROOT/redovault-quickstart}
cargo build --release --quiet
RV=$ROOT/target/release/redovault
rm -rf "$OUT/oracle"
mkdir -p "$OUT"
echo "==> simulated Oracle: 3 groups of 1 MiB, 4 log switches, into $OUT/oracle"
"$RV" simulate --dir "$OUT/oracle" --groups 3 --log-size 1M --switches 4 --fast --seed 1
echo "==> inspecting and archiving each archived log into the local store $OUT/vault"
for f in "$OUT"/oracle/archive/*.dbf; do
  "$RV" inspect "$f" | head -n 3
  "$RV" store --store-dir "$OUT/vault" put --prefix archive --ledger "$OUT/ledger.jsonl" "$f"
done
echo "==> stored:"
"$RV" store --store-dir "$OUT/vault" list
echo "==> ledger of confirmed uploads: $OUT/ledger.jsonl"
