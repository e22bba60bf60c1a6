#!/usr/bin/env bash
# Builds the four release programs so that they run on glibc 2.28 and newer (Oracle Linux /
# RHEL 8, Debian 10+, Ubuntu 18.10+), checks that, and copies them to OUT_DIR.
#
#   deploy/release.sh [OUT_DIR]        (default: target/packages/bin)
#
# 1. installs what is missing: zig (ziglang) and cargo-zigbuild from PyPI, both pinned and both
#    prebuilt (nothing to compile), into a venv under the cache directory;
# 2. builds redovault, redovault-extractor, redovault-collector and redovault-verifier with
#    `cargo zigbuild --profile dist --target x86_64-unknown-linux-gnu.2.28`: zig links them
#    (and compiles ring's C and assembly) against glibc 2.28's symbol versions;
# 3. checks every binary's symbol versions (deploy/check-glibc.sh) and runs its --version.
#
# The binaries land in target/x86_64-unknown-linux-gnu/dist/ (where deploy/package.sh takes
# them) and are copied to OUT_DIR. (Not target/dist: cargo keeps the build scripts and
# procedural macros of the dist profile there.)
#
# Environment (optional): REDOVAULT_RELEASE_CACHE (where the venv of zig and cargo-zigbuild is
# kept between runs, default .ci/state/cache), CARGO_TARGET_DIR, REDOVAULT_RELEASE_ALSO (more
# packages built in the same run and profile, left in the target directory, neither checked
# nor copied: deploy/test.sh builds redovault-drill so for deploy/check-drill-apart.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ZIGLANG_VERSION=0.15.2
CARGO_ZIGBUILD_VERSION=0.24.1
GLIBC=2.28
TARGET=x86_64-unknown-linux-gnu
PROFILE=dist
PROGRAMS=(redovault redovault-extractor redovault-collector redovault-verifier)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${1:-$TARGET_DIR/packages/bin}
CACHE=${REDOVAULT_RELEASE_CACHE:-$ROOT/.ci/state/cache}

log() { echo "release.sh: $*" >&2; }
die() { echo "release.sh: ERROR: $*" >&2; exit 1; }

# zig and cargo-zigbuild, from PyPI into a venv (no download outside the package registries,
# no tool to compile: both wheels are prebuilt).
VENV="$CACHE/venv-zig"
stamp="$VENV/.installed-ziglang-$ZIGLANG_VERSION-cargo-zigbuild-$CARGO_ZIGBUILD_VERSION"
if ! [ -f "$stamp" ] || ! [ -x "$VENV/bin/python" ]; then
  log "installing ziglang $ZIGLANG_VERSION and cargo-zigbuild $CARGO_ZIGBUILD_VERSION into $VENV"
  mkdir -p "$CACHE"
  rm -rf -- "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv $VENV failed (apt-get install python3-venv)"
  "$VENV/bin/pip" install -q --disable-pip-version-check --only-binary=:all: \
    "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION" >&2 \
    || die "pip install ziglang==$ZIGLANG_VERSION cargo-zigbuild==$CARGO_ZIGBUILD_VERSION failed"
  touch "$stamp"
fi
zig=$("$VENV/bin/python" -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')
[ -x "$zig" ] || die "no zig binary in the ziglang package ($zig)"
export CARGO_ZIGBUILD_ZIG_PATH="$zig"
log "zig $("$zig" version) ($zig)"
# Called by its path, not as `cargo zigbuild`: another cargo-zigbuild on PATH or in
# ~/.cargo/bin cannot stand in for the pinned one.
zigbuild="$VENV/bin/cargo-zigbuild"
[ -x "$zigbuild" ] || die "no cargo-zigbuild in $VENV"
log "$("$zigbuild" --version) ($zigbuild)"

# The -dirty mark of --version must be exact in a release: build.rs runs again whenever this
# digest of the uncommitted changes differs from the last build's.
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  REDOVAULT_TREE_STATE=$(git -C "$ROOT" --no-optional-locks diff HEAD | sha256sum | cut -c1-16)
  export REDOVAULT_TREE_STATE
fi

log "building ${PROGRAMS[*]} for $TARGET with glibc $GLIBC (profile $PROFILE)"
t0=$(date +%s)
pkgs=()
for p in "${PROGRAMS[@]}" ${REDOVAULT_RELEASE_ALSO:-}; do pkgs+=(-p "$p"); done
"$zigbuild" zigbuild --locked --profile "$PROFILE" --target "$TARGET.$GLIBC" "${pkgs[@]}" --bins
log "built in $(( $(date +%s) - t0 ))s"

built="$TARGET_DIR/$TARGET/$PROFILE"
bins=()
for p in "${PROGRAMS[@]}"; do bins+=("$built/$p"); done
bash "$ROOT/deploy/check-glibc.sh" "${bins[@]}"
for b in "${bins[@]}"; do
  line=$("$b" --version) || die "$b --version failed"
  echo "$line"
done

mkdir -p "$OUT"
cp -f "${bins[@]}" "$OUT/"
log "release binaries in $OUT"
