#!/usr/bin/env bash
# Benchmarks against a real S3 server (Ceph radosgw with a memstore OSD on 127.0.0.1 over HTTPS),
# beside curl -T and aws s3 cp on the same files and server in the same run. Figures go to
# BENCHMARKS.md.
#
#   deploy/bench.sh                  # both: store, then watcher
#   deploy/bench.sh store            # store upload: 20 files x 50 MiB (REDOVAULT_BENCH_FILES, _MIB)
#   deploy/bench.sh restore          # restore archive and deep verify vs curl GETs (REDOVAULT_BENCH_FILES, _MIB)
#   deploy/bench.sh watcher          # watcher: 40 x 50 MiB at once, 30 more one per second for
#                                    # latency, one 4 GiB log (REDOVAULT_BENCH_WATCHER_FILES,
#                                    # REDOVAULT_BENCH_MIB, REDOVAULT_BENCH_LATENCY_FILES,
#                                    # REDOVAULT_BENCH_LATENCY_MS, REDOVAULT_BENCH_BIG_GIB)
#
# Each benchmark gets a fresh server whose in-memory store is sized for what it uploads (every
# uploader's objects stay locked until the server is stopped).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STATE=${REDOVAULT_TEST_STATE:-$ROOT/.ci/state}
export REDOVAULT_S3_CACHE=${REDOVAULT_S3_CACHE:-$STATE/cache}
mkdir -p "$REDOVAULT_S3_CACHE"
MIB=${REDOVAULT_BENCH_MIB:-50}
WHICH=${*:-store watcher}
command -v curl >/dev/null || { apt-get update && apt-get install -y curl; }
AWS=$(bash deploy/s3/bench-tools.sh "$REDOVAULT_S3_CACHE")
trap 'bash deploy/s3/server.sh down ceph "$STATE/bench-ceph" || true' EXIT
for bench in $WHICH; do
  case "$bench" in
    store)
      FILES=${REDOVAULT_BENCH_FILES:-20}
      # Five uploaders' worth of locked objects, plus slack.
      MEM=$(( (FILES * MIB * 7 + 1024) << 20 ))
      TARGET=store_upload
      ;;
    restore)
      FILES=${REDOVAULT_BENCH_FILES:-20}
      # The objects once, plus slack (restores only read).
      MEM=$(( (FILES * MIB * 2 + 1024) << 20 ))
      TARGET=restore
      PKG=redovault-verifier
      ;;
    watcher)
      FILES=${REDOVAULT_BENCH_WATCHER_FILES:-40}
      LAT=${REDOVAULT_BENCH_LATENCY_FILES:-30}
      BIG=${REDOVAULT_BENCH_BIG_GIB:-4}
      # Watcher, two curl runs and aws on the set, the latency set, the big log, plus slack.
      MEM=$(( ((FILES * 4 + LAT) * MIB + BIG * 1024 + 1024) << 20 ))
      TARGET=watcher_ship
      export REDOVAULT_BENCH_LATENCY_FILES=$LAT REDOVAULT_BENCH_BIG_GIB=$BIG
      ;;
    *) echo "bench.sh: unknown benchmark $bench (store, restore, watcher)" >&2; exit 2 ;;
  esac
  REDOVAULT_S3_CEPH_MEMSTORE_BYTES=$MEM bash deploy/s3/server.sh up ceph "$STATE/bench-ceph"
  REDOVAULT_TEST_S3_TARGETS=$STATE/bench-ceph/env.sh REDOVAULT_BENCH_AWS=$AWS \
    REDOVAULT_BENCH_FILES=$FILES REDOVAULT_BENCH_MIB=$MIB \
    cargo bench -p "${PKG:-redovault}" --bench "$TARGET"
  PKG=
  bash deploy/s3/server.sh down ceph "$STATE/bench-ceph"
done
