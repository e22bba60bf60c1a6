#!/usr/bin/env bash
# Runs every test of redovault on this machine, installing what is missing.
#
#   deploy/test.sh
#
# 1. installs the tools a fresh machine lacks (Ceph radosgw and promtool from Debian, LocalStack into a
#    venv, cargo-fuzz), as root;
# 2. starts the real S3 servers that enforce Object Lock (Ceph radosgw and LocalStack), on
#    127.0.0.1 over HTTPS, and stops them again on exit, whatever happens;
# 3. runs cargo fmt --check, the alert rules' promtool checks and unit tests, clippy with
#    warnings denied, every test of the workspace, none of which may skip here
#    (REDOVAULT_TEST_REQUIRE_SERVERS=1; the store conformance suite against both servers; the
#    HTML report in headless Chromium), checks the systemd units, and builds every fuzz target
#    and runs each briefly on its corpus (a regression: a few thousand inputs);
# 4. builds the release programs for glibc 2.28 and the .deb and .rpm (deploy/package.sh:
#    zig and cargo-zigbuild from PyPI into a venv when missing, dpkg-deb and rpmbuild package),
#    and checks them (deploy/check-packages.sh: installs and purges the .deb here); then, on
#    those release binaries (and redovault-drill built in the same run), that the database-host
#    programs neither depend on the drill crate nor carry its S3 admin requests
#    (deploy/check-drill-apart.sh).
#
# Environment: REDOVAULT_TEST_SERVERS (default "ceph localstack"), REDOVAULT_TEST_STATE
# (default .ci/state in the repository), REDOVAULT_ORACLE_REAL (default ../shared/fixtures/oracle-real
# beside the checkout: the real Oracle logs, which must be there), REDOVAULT_OLR (an
# OpenLogReplicator binary built outside the project: deploy/docs/independent-reader.md),
# REDOVAULT_ARTIFACTS (default .ci/artifacts: the console's desktop and phone screenshots).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SERVERS=${REDOVAULT_TEST_SERVERS:-ceph localstack}
STATE=${REDOVAULT_TEST_STATE:-$ROOT/.ci/state}
mkdir -p "$STATE"
export REDOVAULT_S3_CACHE=${REDOVAULT_S3_CACHE:-$STATE/cache}
# What tests leave for people to look at (the console's screenshots): CI keeps .ci/artifacts.
export REDOVAULT_ARTIFACTS=${REDOVAULT_ARTIFACTS:-$ROOT/.ci/artifacts}
mkdir -p "$REDOVAULT_ARTIFACTS"
mkdir -p "$REDOVAULT_S3_CACHE"

# Every test that needs what this script installs or starts (the S3 servers, Chromium,
# promtool, root for network namespaces...) skips with one line on a bare `cargo test`; here
# a missing one fails (tests/drill/src/servers.rs).
export REDOVAULT_TEST_REQUIRE_SERVERS=1

# Each step with the seconds since the start, so a slow step shows in the log.
step() { printf '\n==> %s  [%ss]\n' "$*" "$(( $(date +%s) - t0 ))"; }
t0=$(date +%s)

# The real Oracle logs are third-party data kept beside the checkout, never in it: the tests
# that read them skip when they are absent, so here their absence is a failure.
ORACLE_REAL=${REDOVAULT_ORACLE_REAL:-$ROOT/../shared/fixtures/oracle-real}
if [ ! -f "$ORACLE_REAL/free23-le-512/arch1_15_1224959854.dbf" ]; then
  echo "deploy/test.sh: the real Oracle logs are missing from $ORACLE_REAL (../shared beside the checkout, or set REDOVAULT_ORACLE_REAL)" >&2
  exit 1
fi
export REDOVAULT_ORACLE_REAL=$(cd "$ORACLE_REAL" && pwd)

started=()
cleanup() {
  for kind in "${started[@]}"; do
    bash "$ROOT/deploy/s3/server.sh" down "$kind" "$STATE/$kind" || true
  done
}
trap cleanup EXIT

step "formatting"
cargo fmt --all -- --check

step "tools: headless Chromium (HTML report test), systemd-analyze (unit checks), jq (deploy/rman-delete-shipped.sh)"
if ! command -v chromium >/dev/null 2>&1 || ! command -v systemd-analyze >/dev/null 2>&1 \
  || ! command -v jq >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium systemd jq >/dev/null
fi

step "alert rules: promtool check rules, promtool test rules (deploy/prometheus)"
if ! command -v promtool >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # Only the tool is wanted: not a Prometheus server started by the package.
  systemctl disable --now prometheus >/dev/null 2>&1 || true
  service prometheus stop >/dev/null 2>&1 || true
fi
(cd "$ROOT/deploy/prometheus" \
  && promtool check rules redovault-alerts.yml \
  && promtool test rules redovault-alerts.test.yml)

step "starting real S3 servers: $SERVERS"
targets=()
for kind in $SERVERS; do
  started+=("$kind")
  bash "$ROOT/deploy/s3/server.sh" up "$kind" "$STATE/$kind"
  targets+=("$STATE/$kind/env.sh")
done
REDOVAULT_TEST_S3_TARGETS=$(IFS=,; echo "${targets[*]}")
export REDOVAULT_TEST_S3_TARGETS

step "clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
cargo test --workspace --locked -- --skip attack_drill::

step "the attack drill on the real S3 server (printed: checks, RPO, RTO)"
cargo test -p redovault --test e2e --locked attack_drill:: -- --nocapture --test-threads 1

step "systemd units (systemd-analyze verify against the built binaries)"
cargo build --workspace --bins --locked
bash "$ROOT/deploy/systemd/verify.sh" "${CARGO_TARGET_DIR:-$ROOT/target}/debug"

step "doc tests"
cargo test --workspace --locked --doc

step "independent reader: OpenLogReplicator on the real and simulated logs (REDOVAULT_OLR, skips without it)"
bash "$ROOT/deploy/olr-check.sh" "${REDOVAULT_OLR:-}"

step "fuzz targets: build, then each on its corpus for a few thousand inputs (tests/fuzz)"
if [ -d "$ROOT/tests/fuzz" ]; then
  if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
  fi
  # A regression build (tests/fuzz/README.md): unoptimised (--dev), with debug assertions and
  # overflow checks on (-a: an overflow is a finding), coverage-instrumented, without
  # AddressSanitizer (-s none: the code is #![forbid(unsafe_code)]). The long campaigns of
  # deploy/bench.sh fuzz keep the optimised ASan build (-O -a).
  (cd "$ROOT/tests/fuzz" && RUSTC_BOOTSTRAP=1 cargo fuzz build --fuzz-dir . --dev -a -s none \
    && ./seed.sh && FUZZ_RUNS=3000 FUZZ_BIN=target/x86_64-unknown-linux-gnu/debug ./run.sh ci)
fi

step "release build for glibc 2.28 and packages (.deb installed, units verified, purged; .rpm holds the same files)"
if ! command -v rpmbuild >/dev/null 2>&1 || ! command -v objdump >/dev/null 2>&1 \
  || ! command -v dpkg-deb >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rpm binutils dpkg >/dev/null
fi
rm -rf "$STATE/dist"
# redovault-drill is built beside the release programs (not packaged) for the next step.
REDOVAULT_RELEASE_CACHE="$REDOVAULT_S3_CACHE" REDOVAULT_RELEASE_ALSO=redovault-drill \
  bash "$ROOT/deploy/package.sh" "$STATE/dist"
bash "$ROOT/deploy/check-packages.sh" "$STATE"/dist/redovault_*_amd64.deb "$STATE"/dist/redovault-*.x86_64.rpm

step "the database-host programs without the drill crate (cargo tree; no admin request in the release binaries)"
bash "$ROOT/deploy/check-drill-apart.sh" "${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-unknown-linux-gnu/dist"

step "all tests passed in $(( $(date +%s) - t0 ))s"
