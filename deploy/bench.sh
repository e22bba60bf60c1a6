#!/usr/bin/env bash
# Benchmarks against a real S3 server (Ceph radosgw with a memstore OSD on 127.0.0.1 over HTTPS),
# beside curl -T and aws s3 cp on the same files and server in the same run. Figures go to
# BENCHMARKS.md.
#
#   deploy/bench.sh                  # both: store, then watcher
#   deploy/bench.sh store            # store upload: 20 files x 50 MiB (REDOVAULT_BENCH_FILES, _MIB)
#   deploy/bench.sh restore          # restore archive and deep verify vs curl GETs (REDOVAULT_BENCH_FILES, _MIB)
#   deploy/bench.sh watcher          # watcher: 40 x 50 MiB at once beside curl -T (same server),
#                                    # curl -T one at a time and aws s3 cp on the same files, 30
#                                    # more one per second written as ARCn does and 10 linked in
#                                    # whole (latency), one 4 GiB log
#                                    # (REDOVAULT_BENCH_WATCHER_FILES, REDOVAULT_BENCH_MIB,
#                                    # REDOVAULT_BENCH_LATENCY_FILES, REDOVAULT_BENCH_LATENCY_MS,
#                                    # REDOVAULT_BENCH_BIG_GIB)
#   deploy/bench.sh watcher-latency  # only the watcher's latency phase (30 ARCn-style + 10 whole)
#   deploy/bench.sh ship-latency     # extractor -> collector: commit -> durable Ack at 10 MB/s beside
#                                    # the disk's fdatasync (REDOVAULT_BENCH_SECONDS, _RATE_MIB); no S3
#   deploy/bench.sh ship-throughput  # extractor -> collector binaries: a backlog over TLS and legacy
#                                    # Blowfish, MB/s and CPU s per side (REDOVAULT_BENCH_SHIP_MIB); no S3
#   deploy/bench.sh ship             # both ship benchmarks
#   deploy/bench.sh replicate        # replicated collectors: commit -> protected p50/p99 and the
#                                    # extractor's CPU per MB with 1, 2 (ack all) and 3 (majority)
#                                    # collectors at 10 MB/s, one run (REDOVAULT_BENCH_SECONDS, _RATE_MIB)
#   deploy/bench.sh compress         # zstd per chunk at levels 1, 3, 9, 19: ratio, MB/s and CPU per
#                                    # MB for the link and the segments, on the real 23ai log and
#                                    # simulated 23.6 / 19c logs (REDOVAULT_BENCH_LEVELS, _SIM_MIB,
#                                    # _LINK_CHUNK); no S3
#   deploy/bench.sh scale-streams    # one collector (the binary), 1, 4, 16, 64 streams at 10 MiB/s in
#                                    # all: commit -> Ack p50/p99, CPU per MB, RSS and fds per
#                                    # stream, beside the disk's bare group-commit floor at the
#                                    # same arrival rate (REDOVAULT_BENCH_STREAMS, _RATE_MIB,
#                                    # _SECONDS); no S3
#   deploy/bench.sh fuzz             # every fuzz target of tests/fuzz for FUZZ_SECONDS (600) each,
#                                    # two at a time (FUZZ_JOBS): executions, exec/s, cov, ft,
#                                    # crashes, hangs, peak RSS into BENCHMARKS.md; no S3
#   deploy/bench.sh worm             # the collector's [worm], real binaries at 10 MB/s, rounds with and
#                                    # without it interleaved: commit -> in WORM p50/p99, S3 requests
#                                    # per hour, collector CPU per MB, commit -> Ack with / without
#                                    # (REDOVAULT_BENCH_ROUNDS, _SECONDS, _RATE_MIB, _LOG_MIB,
#                                    # _SEAL_INTERVAL); the drill bucket with the collector's keys
#   deploy/bench.sh peers            # redovault watch / restore archive beside pgBackRest
#                                    # archive-push / archive-get (async, process-max 4, none and
#                                    # lz4) and barman-cloud-wal-archive / -restore on real
#                                    # PostgreSQL 15 WAL, same bytes, one Ceph: MB/s, CPU s per GB,
#                                    # peak RSS (REDOVAULT_BENCH_PEERS_MIB, _LOG_MIB); see
#                                    # deploy/bench-peers.sh
#   deploy/bench.sh scale-watcher    # the watcher with 100, 1,000, 10,000 small archived logs already
#                                    # shipped: restart time, rescan ms, CPU per rescan, peak RSS
#                                    # (REDOVAULT_BENCH_WATCHER_STEPS); no S3 (shipped once into a
#                                    # local store, which a rescan never touches)
#   deploy/bench.sh scale-verify     # verify of a sealed manifest of 10k / 100k / 1M entries over 1k /
#                                    # 10k / 100k objects, first run and next run (with its state):
#                                    # time, CPU, peak RSS; on Ceph (REDOVAULT_BENCH_VERIFY_CEPH_STEPS,
#                                    # ENTRIES:OBJECTS,...; one server a step) and on the local store
#                                    # (REDOVAULT_BENCH_VERIFY_STEPS)
#   deploy/bench.sh scale-restore    # restore archive of 1, 2.5, 5, 10 GiB of 64 MiB logs: MB/s, CPU s
#                                    # per GB, peak RSS; on Ceph up to what its memstore holds here
#                                    # (REDOVAULT_BENCH_RESTORE_CEPH_GIB, 1,2.5; one server a step)
#                                    # and on the local store (REDOVAULT_BENCH_RESTORE_GIB)
#   deploy/bench.sh scale            # every scale curve: scale-streams, scale-watcher, scale-verify,
#                                    # scale-restore
#
# Ceph's ports come from the environment as in deploy/s3/server.sh (REDOVAULT_S3_CEPH_HTTPS_PORT,
# _HTTP_PORT, _MON_PORT; CEPH_ARGS="--ms_bind_port_min=... --ms_bind_port_max=..." for the OSD),
# so that several benches can run on one machine.
#
# Each benchmark (and each watcher phase) gets a fresh server whose in-memory store is sized for
# what it uploads: every uploader's objects stay locked until the server is stopped, and Ceph's
# memstore OSD takes about twice the bytes it stores, so the phases do not pile up in one
# server. Run it on a machine with at least 16 GiB of free memory.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STATE=${REDOVAULT_TEST_STATE:-$ROOT/.ci/state}
export REDOVAULT_S3_CACHE=${REDOVAULT_S3_CACHE:-$STATE/cache}
mkdir -p "$REDOVAULT_S3_CACHE"
MIB=${REDOVAULT_BENCH_MIB:-50}
WHICH=${*:-store watcher}
AWS=
trap 'bash deploy/s3/server.sh down ceph "$STATE/bench-ceph" || true' EXIT
# run_bench MEMSTORE_BYTES BENCH_TARGET [VAR=value...]: a fresh server, the bench, the server down.
run_bench() {
  local mem=$1 target=$2
  shift 2
  if [ -z "$AWS" ] && [ "${NEED_AWS:-1}" = 1 ]; then
    command -v curl >/dev/null && command -v openssl >/dev/null || { apt-get update && apt-get install -y curl openssl; }
    AWS=$(bash deploy/s3/bench-tools.sh "$REDOVAULT_S3_CACHE")
  fi
  local try
  for try in 1 2 3; do
    # A server just stopped can still hold its monitor port for a moment: try again.
    if REDOVAULT_S3_CEPH_MEMSTORE_BYTES=$mem bash deploy/s3/server.sh up ceph "$STATE/bench-ceph"; then
      break
    fi
    [ "$try" -lt 3 ] || exit 1
    sleep 10
  done
  env REDOVAULT_TEST_S3_TARGETS="$STATE/bench-ceph/env.sh" REDOVAULT_BENCH_AWS="$AWS" \
    REDOVAULT_BENCH_MIB="$MIB" "$@" cargo bench -p "${PKG:-redovault}" --bench "$target"
  bash deploy/s3/server.sh down ceph "$STATE/bench-ceph"
}
for bench in $WHICH; do
  case "$bench" in
    store)
      FILES=${REDOVAULT_BENCH_FILES:-20}
      # Five uploaders' worth of locked objects, plus slack.
      run_bench $(( (FILES * MIB * 7 + 1024) << 20 )) store_upload REDOVAULT_BENCH_FILES="$FILES"
      ;;
    restore)
      FILES=${REDOVAULT_BENCH_FILES:-20}
      # The objects once (restores and deep verification only read), plus slack.
      PKG=redovault-verifier run_bench $(( (FILES * MIB * 2 + 1024) << 20 )) restore \
        REDOVAULT_BENCH_FILES="$FILES"
      ;;
    watcher)
      FILES=${REDOVAULT_BENCH_WATCHER_FILES:-40}
      LAT=${REDOVAULT_BENCH_LATENCY_FILES:-30}
      BIG=${REDOVAULT_BENCH_BIG_GIB:-4}
      FILES_DIR=${REDOVAULT_BENCH_DIR:-$STATE/bench-files}
      RESULTS=$STATE/watcher-bench.jsonl
      rm -f "$RESULTS"
      mkdir -p "$FILES_DIR"
      COMMON=(REDOVAULT_BENCH_FILES="$FILES" REDOVAULT_BENCH_DIR="$FILES_DIR"
              REDOVAULT_BENCH_RESULTS="$RESULTS" REDOVAULT_BENCH_LATENCY_FILES="$LAT"
              REDOVAULT_BENCH_BIG_GIB="$BIG")
      # Three uploaders of the set (the watcher, curl, curl with the SHA-256 signed), plus slack.
      run_bench $(( (3 * FILES * MIB + 1024) << 20 )) watcher_ship "${COMMON[@]}" REDOVAULT_BENCH_PHASE=set
      run_bench $(( (2 * FILES * MIB + 1024) << 20 )) watcher_ship "${COMMON[@]}" REDOVAULT_BENCH_PHASE=reference
      # Disk is freed as soon as a phase is done with its logs (Ceph's monitor refuses to start
      # when its filesystem has less than 5% free).
      rm -rf "$FILES_DIR/set"
      run_bench $(( ((LAT + 10) * MIB + 1024) << 20 )) watcher_ship "${COMMON[@]}" REDOVAULT_BENCH_PHASE=latency
      rm -rf "$FILES_DIR/latency"
      if [ "$BIG" -gt 0 ]; then
        run_bench $(( (BIG * 1024 + 1024) << 20 )) watcher_ship "${COMMON[@]}" REDOVAULT_BENCH_PHASE=big
        rm -rf "$FILES_DIR/big"
      fi
      env "${COMMON[@]}" REDOVAULT_BENCH_PHASE=report cargo bench --bench watcher_ship
      rm -rf "$FILES_DIR"
      ;;
    watcher-latency)
      # Only the watcher's latency phase (detection -> upload start / durable), and its report.
      LAT=${REDOVAULT_BENCH_LATENCY_FILES:-30}
      FILES_DIR=${REDOVAULT_BENCH_DIR:-$STATE/bench-files}
      RESULTS=$STATE/watcher-bench.jsonl
      rm -f "$RESULTS"
      mkdir -p "$FILES_DIR"
      COMMON=(REDOVAULT_BENCH_DIR="$FILES_DIR" REDOVAULT_BENCH_RESULTS="$RESULTS"
              REDOVAULT_BENCH_LATENCY_FILES="$LAT")
      run_bench $(( ((LAT + 10) * MIB + 1024) << 20 )) watcher_ship "${COMMON[@]}" REDOVAULT_BENCH_PHASE=latency
      env "${COMMON[@]}" REDOVAULT_BENCH_PHASE=report cargo bench --bench watcher_ship
      rm -rf "$FILES_DIR"
      ;;
    ship-latency)
      cargo bench -p redovault --bench ship_latency
      ;;
    ship-throughput)
      cargo bench -p redovault --bench ship_throughput
      ;;
    ship)
      cargo bench -p redovault --bench ship_latency
      cargo bench -p redovault --bench ship_throughput
      ;;
    replicate)
      cargo bench -p redovault --bench replicate
      ;;
    worm)
      ROUNDS=${REDOVAULT_BENCH_ROUNDS:-4}
      SECS=${REDOVAULT_BENCH_SECONDS:-20}
      RATE=${REDOVAULT_BENCH_RATE_MIB:-10}
      # The pieces of the rounds with [worm] (drained a few seconds after each), twice over for
      # memstore, plus slack. No aws CLI needed.
      NEED_AWS=0 run_bench $(( ((ROUNDS + 1) / 2 * (SECS + 10) * RATE * 2 + 1024) << 20 )) worm_ship
      ;;
    compress)
      cargo bench -p redovault --bench compress
      ;;
    scale-streams)
      cargo bench -p redovault --bench scale_streams
      ;;
    fuzz)
      bash deploy/fuzz-bench.sh
      ;;
    peers)
      # Its own Ceph (sized for every tool's objects), PostgreSQL cluster and work directory.
      bash deploy/bench-peers.sh
      ;;
    scale-watcher)
      RESULTS=$STATE/scale-watcher.jsonl
      rm -f "$RESULTS"
      mkdir -p "$STATE/bench-files"
      env REDOVAULT_BENCH_SCALE=watcher REDOVAULT_BENCH_RESULTS="$RESULTS" \
        REDOVAULT_BENCH_DIR="${REDOVAULT_BENCH_DIR:-$STATE/bench-files}" \
        cargo bench -p redovault --bench scale_store
      REDOVAULT_BENCH_SCALE=report REDOVAULT_BENCH_RESULTS="$RESULTS" cargo bench -p redovault --bench scale_store
      ;;
    scale-verify)
      RESULTS=$STATE/scale-verify.jsonl
      rm -f "$RESULTS"
      mkdir -p "$STATE/bench-files"
      for step in $(echo "${REDOVAULT_BENCH_VERIFY_CEPH_STEPS-10000:1000,100000:10000}" | tr , ' '); do
        # The entries (about 550 bytes each) and the 512-byte objects, twice over, plus slack.
        entries=${step%%:*}
        NEED_AWS=0 run_bench $(( (entries * 1200 + (2048 << 20)) )) scale_store \
          REDOVAULT_BENCH_SCALE=verify REDOVAULT_BENCH_STORE=ceph REDOVAULT_BENCH_VERIFY_STEPS="$step" \
          REDOVAULT_BENCH_RESULTS="$RESULTS" REDOVAULT_BENCH_DIR="${REDOVAULT_BENCH_DIR:-$STATE/bench-files}"
      done
      env REDOVAULT_BENCH_SCALE=verify REDOVAULT_BENCH_STORE=local REDOVAULT_BENCH_RESULTS="$RESULTS" \
        REDOVAULT_BENCH_DIR="${REDOVAULT_BENCH_DIR:-$STATE/bench-files}" \
        cargo bench -p redovault --bench scale_store
      REDOVAULT_BENCH_SCALE=report REDOVAULT_BENCH_RESULTS="$RESULTS" cargo bench -p redovault --bench scale_store
      ;;
    scale-restore)
      RESULTS=$STATE/scale-restore.jsonl
      rm -f "$RESULTS"
      mkdir -p "$STATE/bench-files"
      for gib in $(echo "${REDOVAULT_BENCH_RESTORE_CEPH_GIB-1,2.5}" | tr , ' '); do
        # Memstore takes about twice the bytes it stores: twice the step, plus slack.
        mem=$(awk -v g="$gib" 'BEGIN { printf "%d", (2 * g + 1) * 1073741824 }')
        NEED_AWS=0 run_bench "$mem" scale_store REDOVAULT_BENCH_SCALE=restore REDOVAULT_BENCH_STORE=ceph \
          REDOVAULT_BENCH_RESTORE_GIB="$gib" REDOVAULT_BENCH_RESULTS="$RESULTS" \
          REDOVAULT_BENCH_DIR="${REDOVAULT_BENCH_DIR:-$STATE/bench-files}"
      done
      env REDOVAULT_BENCH_SCALE=restore REDOVAULT_BENCH_STORE=local REDOVAULT_BENCH_RESULTS="$RESULTS" \
        REDOVAULT_BENCH_DIR="${REDOVAULT_BENCH_DIR:-$STATE/bench-files}" \
        cargo bench -p redovault --bench scale_store
      REDOVAULT_BENCH_SCALE=report REDOVAULT_BENCH_RESULTS="$RESULTS" cargo bench -p redovault --bench scale_store
      ;;
    scale)
      bash "$ROOT/deploy/bench.sh" scale-streams scale-watcher scale-verify scale-restore
      ;;
    *) echo "bench.sh: unknown benchmark $bench (store, restore, watcher, watcher-latency, ship-latency, ship-throughput, ship, replicate, worm, compress, fuzz, peers, scale, scale-streams, scale-watcher, scale-verify, scale-restore)" >&2; exit 2 ;;
  esac
done
