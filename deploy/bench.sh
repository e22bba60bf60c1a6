#!/usr/bin/env bash
# Benchmarks that print figures for BENCHMARKS.md: the store (our uploader vs curl -T vs
# aws s3 cp on the same Ceph radosgw, MB/s and client CPU), restore, and extractor -> collector
# shipping (latency and throughput).
#
#   deploy/bench.sh [store|restore|ship-latency|ship-throughput|ship|all]   # default: all
#   REDOVAULT_BENCH_FILES=8 REDOVAULT_BENCH_MIB=50 deploy/bench.sh store
#
# store:           our uploader vs curl -T vs aws s3 cp (20 files x 50 MiB)
# restore:         `restore archive` (verified, fsynced, in order) vs curl GETs
# ship-latency:    commit -> durable Ack at 10 MB/s, extractor to collector, beside the
#                  disk's fdatasync (REDOVAULT_BENCH_SECONDS, REDOVAULT_BENCH_RATE_MIB)
# ship-throughput: a backlog shipped extractor -> collector, TLS and legacy Blowfish, MB/s
#                  and CPU seconds per side (REDOVAULT_BENCH_SHIP_MIB, default 1024)
# ship:            both ship benchmarks (no S3 server needed)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
WHICH=${1:-all}
case $WHICH in
  store|restore|ship-latency|ship-throughput|ship|all) ;;
  *) echo "unknown benchmark $WHICH (store, restore, ship-latency, ship-throughput, ship, all)" >&2; exit 2 ;;
esac
if [[ $WHICH == store || $WHICH == restore || $WHICH == all ]]; then
  STATE=${REDOVAULT_TEST_STATE:-$ROOT/.ci/state}
  export REDOVAULT_S3_CACHE=${REDOVAULT_S3_CACHE:-$STATE/cache}
  mkdir -p "$REDOVAULT_S3_CACHE"
  FILES=${REDOVAULT_BENCH_FILES:-20}
  MIB=${REDOVAULT_BENCH_MIB:-50}
  # Five uploaders' worth of locked objects, kept in memory by the memstore OSD, plus slack.
  export REDOVAULT_S3_CEPH_MEMSTORE_BYTES=$(( (FILES * MIB * 7 + 1024) << 20 ))
  command -v curl >/dev/null || { apt-get update && apt-get install -y curl; }
  AWS=$(bash deploy/s3/bench-tools.sh "$REDOVAULT_S3_CACHE")
  trap 'bash deploy/s3/server.sh down ceph "$STATE/bench-ceph" || true' EXIT
  bash deploy/s3/server.sh up ceph "$STATE/bench-ceph"
  export REDOVAULT_TEST_S3_TARGETS=$STATE/bench-ceph/env.sh REDOVAULT_BENCH_AWS=$AWS \
    REDOVAULT_BENCH_FILES=$FILES REDOVAULT_BENCH_MIB=$MIB
fi
if [[ $WHICH == store || $WHICH == all ]]; then
  cargo bench -p redovault --bench store_upload
fi
if [[ $WHICH == restore || $WHICH == all ]]; then
  cargo bench -p redovault-verifier --bench restore
fi
if [[ $WHICH == ship-latency || $WHICH == ship || $WHICH == all ]]; then
  cargo bench -p redovault --bench ship_latency
fi
if [[ $WHICH == ship-throughput || $WHICH == ship || $WHICH == all ]]; then
  cargo bench -p redovault --bench ship_throughput
fi
