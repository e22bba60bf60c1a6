#!/usr/bin/env bash
# The programs of the database host (`redovault`, the watcher, and `redovault-extractor`) carry
# no code that deletes, replaces or changes retention: that code is the drill crate's
# (tests/drill, `redovault-drill`), which they do not depend on.
#
#   deploy/check-drill-apart.sh BIN_DIR
#
# 1. `cargo tree -e normal` of redovault and of redovault-extractor names no redovault-drill;
# 2. BIN_DIR/redovault and BIN_DIR/redovault-extractor hold none of the marks of the refused S3
#    requests (tests/drill/src/admin.rs: the header and operation names only they send, and the
#    names every symbol of the drill crate carries), while BIN_DIR/redovault-drill, built alike,
#    holds the marks of the requests it sends and its crate's symbols: a build that hid such
#    names would fail here rather than pass unseen.
#
# Build BIN_DIR first: cargo build --release -p redovault -p redovault-extractor -p redovault-drill
# (target/release), or as deploy/test.sh does, REDOVAULT_RELEASE_ALSO=redovault-drill
# deploy/release.sh (target/x86_64-unknown-linux-gnu/dist).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=${1:?usage: deploy/check-drill-apart.sh BIN_DIR}
fail() { echo "check-drill-apart.sh: FAIL: $*" >&2; exit 1; }

for pkg in redovault redovault-extractor; do
  tree=$(cargo tree --locked -e normal -p "$pkg" --prefix none)
  [ -n "$tree" ] || fail "cargo tree -p $pkg printed nothing"
  if grep -q '^redovault-drill ' <<<"$tree"; then
    fail "$pkg depends on redovault-drill: $(cargo tree --locked -e normal -p "$pkg" -i redovault-drill | head -5)"
  fi
  echo "check-drill-apart.sh: cargo tree -e normal -p $pkg: no redovault-drill ($(wc -l <<<"$tree") lines)"
done

# What the drill's S3 requests send (operation names in logs and errors, the bypass header),
# and the names of the drill crate and of its admin types, which every symbol of theirs carries.
# The drill program itself sends the first five (its attack on WORM, drill/worm.rs); the
# policy, lock and versioning requests only the tests send.
sent=(delete-version delete-object put-retention put-plain x-amz-bypass-governance-retention
  put-bucket-policy delete-bucket-policy put-object-lock put-versioning)
in_drill=("${sent[@]:0:5}" redovault_drill)
symbols=(redovault_drill AdminRequests)

drill="$BIN/redovault-drill"
[ -f "$drill" ] || fail "$drill not built"
for m in "${in_drill[@]}"; do
  grep -qaF -- "$m" "$drill" || fail "$drill lacks \"$m\": the marks no longer match tests/drill/src/admin.rs, or the build hides names"
done
echo "check-drill-apart.sh: $drill holds the ${#in_drill[@]} marks of the requests it sends and of its crate"

for prog in redovault redovault-extractor; do
  f="$BIN/$prog"
  [ -f "$f" ] || fail "$f not built"
  for m in "${sent[@]}" "${symbols[@]}"; do
    if grep -qaF -- "$m" "$f"; then
      fail "$f holds \"$m\", a mark of the drill's refused S3 requests"
    fi
  done
  echo "check-drill-apart.sh: $f holds none of the $(( ${#sent[@]} + ${#symbols[@]} )) marks"
done
