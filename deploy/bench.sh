#!/usr/bin/env bash
# Store upload benchmark: our uploader vs curl -T vs aws s3 cp, same files, same Ceph radosgw,
# same run. Prints MB/s and client CPU seconds. Figures go to BENCHMARKS.md.
#
#   deploy/bench.sh [store|restore|all]     # 20 files x 50 MiB; default: all
#   REDOVAULT_BENCH_FILES=8 REDOVAULT_BENCH_MIB=50 deploy/bench.sh store
#
# store:   our uploader vs curl -T vs aws s3 cp
# restore: `restore archive` (verified, fsynced, in order) vs curl GETs
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
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
WHICH=${1:-all}
if [[ $WHICH == store || $WHICH == all ]]; then
  cargo bench -p redovault --bench store_upload
fi
if [[ $WHICH == restore || $WHICH == all ]]; then
  cargo bench -p redovault-verifier --bench restore
fi
