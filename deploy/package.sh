#!/usr/bin/env bash
# Builds the .deb and the .rpm of redovault from the glibc 2.28 release programs.
#
#   deploy/package.sh [OUT_DIR]        (default: target/packages)
#
# 1. builds the programs with deploy/release.sh (nothing to do when they are up to date);
# 2. installs cargo-deb and cargo-generate-rpm from crates.io when missing (pinned, --locked);
# 3. writes OUT_DIR/redovault_VERSION-1_amd64.deb and OUT_DIR/redovault-VERSION-1.x86_64.rpm
#    from [package.metadata.deb] and [package.metadata.generate-rpm] of Cargo.toml: the four
#    programs in /usr/bin, the systemd units in /usr/lib/systemd/system (neither enabled nor
#    started), the sysusers.d entry of the redovault user, the example configurations in
#    /usr/share/doc/redovault/examples, the docs in /usr/share/doc/redovault.
#
# deploy/check-packages.sh DEB RPM then installs and checks them (deploy/test.sh runs both).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1
TARGET=x86_64-unknown-linux-gnu
PROFILE=dist
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${1:-$TARGET_DIR/packages}

log() { echo "package.sh: $*" >&2; }

bash "$ROOT/deploy/release.sh" "$OUT/bin"

# `cargo deb --version` prints e.g. "cargo-deb 3.8.0", `cargo generate-rpm --version` "cargo-generate-rpm 0.21.1".
if [ "$(cargo deb --version 2>/dev/null | awk '{print $NF}')" != "$CARGO_DEB_VERSION" ]; then
  log "installing cargo-deb $CARGO_DEB_VERSION"
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi
if [ "$(cargo generate-rpm --version 2>/dev/null | awk '{print $NF}')" != "$CARGO_GENERATE_RPM_VERSION" ]; then
  log "installing cargo-generate-rpm $CARGO_GENERATE_RPM_VERSION"
  cargo install cargo-generate-rpm --locked --version "$CARGO_GENERATE_RPM_VERSION"
fi

t0=$(date +%s)
mkdir -p "$OUT"
# `target/release/...` in the assets means the programs release.sh built for this target and
# profile: both tools rewrite it from --target and --profile.
cargo deb --locked -p redovault --no-build --no-strip --target "$TARGET" --profile "$PROFILE" \
  --output "$OUT/"
cargo generate-rpm -p . --target "$TARGET" --profile "$PROFILE" --output "$OUT/"
log "packaged in $(( $(date +%s) - t0 ))s:"
ls -l "$OUT"/*.deb "$OUT"/*.rpm >&2
