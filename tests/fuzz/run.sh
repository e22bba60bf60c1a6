#!/usr/bin/env bash
# Runs the fuzz targets (already built with `cargo fuzz build --fuzz-dir . -O -a`, or for the
# regression of deploy/test.sh with `--dev -a -s none` and FUZZ_BIN=target/<triple>/debug: see
# README.md) on their corpora (seed.sh makes them).
#
#   ./run.sh ci [TARGET...]           each target for FUZZ_RUNS inputs (default 3000): the
#                                     regression step of deploy/test.sh; fails on any finding
#   ./run.sh time SECONDS TARGET...   each target for SECONDS, two at a time (FUZZ_JOBS), logs
#                                     in $FUZZ_LOGS (default target/fuzz-logs), then one table
#                                     row per target on stdout (deploy/bench.sh fuzz)
#
# Every run: -rss_limit_mb=512, -timeout=10 (a hang is an input that takes longer), and the
# target's -max_len below. FUZZ_BIN: where the built targets are (default target/<triple>/release;
# another --target-dir of `cargo fuzz build`).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
BIN=${FUZZ_BIN:-$here/target/x86_64-unknown-linux-gnu/release}
ALL="decode wire_frame wire_message legacy_handshake segment chunk key_file manifest s3_xml config zstd_frame"

# Longest input per target: a few redo blocks more than the largest seed for the redo decoder,
# a few records for a segment, a few messages or lines elsewhere.
max_len() {
  case "$1" in
    decode) echo 12000 ;;
    segment) echo 8192 ;;
    chunk|wire_frame|legacy_handshake) echo 4096 ;;
    zstd_frame) echo 65536 ;;
    *) echo 16384 ;;
  esac
}

flags() {
  echo "-rss_limit_mb=512 -timeout=10 -max_len=$(max_len "$1") -print_final_stats=1"
  echo "-artifact_prefix=$here/artifacts/$1/"
}

run_one() {
  local target=$1
  shift
  mkdir -p "corpus/$target" "artifacts/$target"
  # shellcheck disable=SC2046
  "$BIN/$target" $(flags "$target") "$@" "corpus/$target"
}

mkdir -p artifacts
mode=${1:-ci}
shift || true
case "$mode" in
  ci)
    targets=("$@")
    [ "${#targets[@]}" -gt 0 ] || read -ra targets <<<"$ALL"
    for t in "${targets[@]}"; do
      echo "fuzz $t: ${FUZZ_RUNS:-3000} runs"
      run_one "$t" -runs="${FUZZ_RUNS:-3000}" 2>"artifacts/$t.ci.log" \
        || { tail -n 40 "artifacts/$t.ci.log"; echo "fuzz $t: FAILED (input in artifacts/$t/)"; exit 1; }
      grep -h '^#[0-9]*[[:space:]]*DONE' "artifacts/$t.ci.log" || true
    done
    ;;
  time)
    secs=$1
    shift
    logs=${FUZZ_LOGS:-$here/target/fuzz-logs}
    mkdir -p "$logs"
    targets=("$@")
    [ "${#targets[@]}" -gt 0 ] || read -ra targets <<<"$ALL"
    export -f run_one flags max_len
    export BIN here
    # shellcheck disable=SC2016
    printf '%s\n' "${targets[@]}" | xargs -P "${FUZZ_JOBS:-2}" -I{} bash -c \
      'start=$(date +%s); run_one {} -max_total_time='"$secs"' >"'"$logs"'/{}.log" 2>&1; rc=$?;
       echo "rc=$rc seconds=$(( $(date +%s) - start ))" >>"'"$logs"'/{}.log"' || true
    for t in "${targets[@]}"; do
      "$here/stats.sh" "$t" "$logs/$t.log"
    done
    ;;
  *) echo "run.sh: unknown mode $mode (ci, time)" >&2; exit 2 ;;
esac
