#!/usr/bin/env bash
# The main job on embedded defaults, with no Oracle and no S3 needed:
# a simulated Oracle writes real-format redo and archives it while the watcher runs; the watcher
# validates every archived log with the redo parser (size, block checksums), puts it create-only
# and read-only into the local store under its SHA-256, and records it in the hash-chained
# manifest, sealed into the store at shutdown. With REDOVAULT_S3_ENDPOINT (and AWS_*
# credentials, REDOVAULT_S3_BUCKET, REDOVAULT_S3_CA_FILE, REDOVAULT_S3_PATH_STYLE=true) set,
# the archives go to S3 Object Lock instead.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${REDOVAULT_QUICKSTART_DIR:-$ROOT/redovault-quickstart}
cargo build --release --quiet
RV=$ROOT/target/release/redovault
if [ -n "${CARGO_TARGET_DIR:-}" ]; then RV=$CARGO_TARGET_DIR/release/redovault; fi
rm -rf "$OUT/oracle" "$OUT/state"
mkdir -p "$OUT/oracle/archive"
if [ -n "${REDOVAULT_S3_ENDPOINT:-}" ]; then
  STORE="endpoint = \"$REDOVAULT_S3_ENDPOINT\"
bucket = \"${REDOVAULT_S3_BUCKET:-redovault}\"
ca_file = \"${REDOVAULT_S3_CA_FILE:-}\"
path_style = ${REDOVAULT_S3_PATH_STYLE:-false}
prefix = \"quickstart\""
else
  STORE="kind = \"local\"
dir = \"$OUT/vault\"
prefix = \"quickstart\""
fi
cat > "$OUT/watcher.toml" <<TOML
[watch]
dirs = ["$OUT/oracle/archive"]
scan_interval = "2s"
[state]
dir = "$OUT/state"
status_interval = "500ms"
[store]
$STORE
[telemetry]
log_level = "warn"
TOML
echo "==> configuration $OUT/watcher.toml"
"$RV" check-config "$OUT/watcher.toml"
echo "==> watcher started"
"$RV" watch --config "$OUT/watcher.toml" &
WATCHER=$!
trap 'kill -TERM $WATCHER 2>/dev/null || true' EXIT
echo "==> simulated Oracle: 3 groups of 1 MiB, 4 log switches, into $OUT/oracle"
"$RV" simulate --dir "$OUT/oracle" --groups 3 --log-size 1M --switches 4 --rate 4M --seed 1 >/dev/null
for _ in $(seq 1 100); do
  if "$RV" status --json --state-dir "$OUT/state" 2>/dev/null | grep -q '"manifest_entries": 4'; then break; fi
  sleep 0.2
done
echo "==> one archived log, as the redo parser sees it"
"$RV" inspect "$OUT"/oracle/archive/arch1_1_*.dbf | head -n 3
kill -TERM "$WATCHER"
wait "$WATCHER" || true
trap - EXIT
echo "==> watcher status"
"$RV" status --state-dir "$OUT/state" || true
if [ -z "${REDOVAULT_S3_ENDPOINT:-}" ]; then
  echo "==> stored (content-addressed logs, sealed manifest segments):"
  "$RV" store --store-dir "$OUT/vault" list quickstart/
fi
echo "==> manifest: $OUT/state/manifest/"
