#!/usr/bin/env bash
# Builds the .deb and the .rpm of redovault from the glibc 2.28 release programs, with the
# distributions' own tools: nothing to compile, nothing to download.
#
#   deploy/package.sh [OUT_DIR]        (default: target/packages)
#
# 1. builds the programs with deploy/release.sh into OUT_DIR/bin (nothing to do when they are
#    up to date);
# 2. lays out the files of deploy/package/files (the one list of both packages: the four
#    programs in /usr/bin, the systemd units in /usr/lib/systemd/system (neither enabled nor
#    started), the sysusers.d entry of the redovault user, the example configurations in
#    /usr/share/doc/redovault/examples, the docs in /usr/share/doc/redovault) with their modes;
# 3. writes OUT_DIR/redovault_VERSION-1_amd64.deb with `dpkg-deb --build` (control file written
#    here: Depends libc6 (>= 2.28); maintainer scripts deploy/package/postinst and postrm) and
#    OUT_DIR/redovault-VERSION-1.x86_64.rpm with `rpmbuild -bb` (spec written here: Requires
#    glibc >= 2.28; %post and %postun are the same two scripts). VERSION is the redovault
#    package's version in Cargo.toml.
#
# deploy/check-packages.sh DEB RPM then installs and checks them (deploy/test.sh runs both).
# Needs dpkg-deb (dpkg) and rpmbuild (Debian's rpm package).
set -euo pipefail
umask 022 # the directories the packages create: rwxr-xr-x

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${1:-$TARGET_DIR/packages}
FILES="$ROOT/deploy/package/files"
RELEASE=1
MAINTAINER="redovault maintainers <redovault@localhost>"
COPYRIGHT="redovault contributors"
# The programs need libc, libm, libpthread, libdl and ld-linux only (readelf -d): all in libc6
# (Debian) and glibc (RHEL); deploy/check-glibc.sh holds them to symbol versions of 2.28.
DEB_DEPENDS="libc6 (>= 2.28)"
RPM_REQUIRES="glibc >= 2.28"
DESCRIPTION="Keeps an Oracle database recoverable to its last commit after the database host is \
wiped: redovault (the watcher: archived redo logs to S3 Object Lock), redovault-extractor (the \
online redo log streamed to a remote collector), redovault-collector, redovault-verifier. Systemd \
units are installed but neither enabled nor started. Built for glibc 2.28 and newer."

log() { echo "package.sh: $*" >&2; }
die() { echo "package.sh: ERROR: $*" >&2; exit 1; }

for tool in dpkg-deb rpmbuild python3; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install dpkg rpm python3)"
done

bash "$ROOT/deploy/release.sh" "$OUT/bin"

# The version, summary and license of the redovault package, as cargo reads Cargo.toml.
IFS=$'\t' read -r VERSION SUMMARY LICENSE < <(cargo metadata --locked --offline --no-deps \
  --format-version 1 | python3 -c '
import json, sys
p = next(p for p in json.load(sys.stdin)["packages"] if p["name"] == "redovault")
print(p["version"], p["description"], p["license"], sep="\t")') || true
if [ -z "$VERSION" ] || [ -z "$SUMMARY" ] || [ -z "$LICENSE" ]; then
  die "no version, description or license of redovault in Cargo.toml"
fi

t0=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Reads deploy/package/files into SOURCES, DESTS, MODES, DOCS; reports every bad line at once.
SOURCES=() DESTS=() MODES=() DOCS=()
read_files() {
  local n=0 bad=0 src dest mode kind extra path
  while read -r src dest mode kind extra || [ -n "$src" ]; do
    n=$((n + 1))
    case $src in '' | '#'*) continue ;; esac
    path=$src
    [[ $src == @release/* ]] && path="$OUT/bin/${src#@release/}"
    if [ -z "$mode" ] || [ -n "$extra" ]; then
      log "$FILES:$n: expected SOURCE INSTALLED_PATH MODE [doc]"; bad=1; continue
    fi
    [ -f "$path" ] || { log "$FILES:$n: $path: no such file"; bad=1; }
    [[ $dest == /* && $dest != */ && $dest != *[[:space:]]* ]] \
      || { log "$FILES:$n: $dest: the installed path must be an absolute file path"; bad=1; }
    [[ $mode =~ ^0[0-7]{3}$ ]] || { log "$FILES:$n: $mode: the mode must be octal, e.g. 0644"; bad=1; }
    [[ -z $kind || $kind == doc ]] || { log "$FILES:$n: $kind: the fourth field can only be doc"; bad=1; }
    SOURCES+=("$path") DESTS+=("$dest") MODES+=("$mode") DOCS+=("$kind")
  done <"$FILES"
  [ "${#DESTS[@]}" -gt 0 ] || { log "$FILES: no files"; bad=1; }
  local dup
  dup=$(printf '%s\n' "${DESTS[@]}" | sort | uniq -d)
  [ -z "$dup" ] || { log "$FILES: installed more than once: $dup"; bad=1; }
  [ "$bad" -eq 0 ] || die "$FILES has errors (above)"
}
read_files

# The installed tree, shared by both packages.
tree="$work/tree"
for i in "${!DESTS[@]}"; do
  install -D -m "${MODES[$i]}" "${SOURCES[$i]}" "$tree${DESTS[$i]}"
done

build_deb() {
  local root="$work/deb" deb="$OUT/redovault_${VERSION}-${RELEASE}_amd64.deb"
  cp -a "$tree" "$root"
  # Debian policy: every package carries its copyright file (check-packages.sh knows it is
  # the one file the .rpm does not hold).
  cat >"$root/usr/share/doc/redovault/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: redovault

Files: *
Copyright: $COPYRIGHT
License: $LICENSE
EOF
  chmod 0644 "$root/usr/share/doc/redovault/copyright"
  mkdir -m 0755 "$root/DEBIAN"
  install -m 0755 "$ROOT/deploy/package/postinst" "$ROOT/deploy/package/postrm" "$root/DEBIAN/"
  (cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
  chmod 0644 "$root/DEBIAN/md5sums"
  {
    echo "Package: redovault"
    echo "Version: $VERSION-$RELEASE"
    echo "Architecture: amd64"
    echo "Maintainer: $MAINTAINER"
    echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)"
    echo "Depends: $DEB_DEPENDS"
    echo "Section: admin"
    echo "Priority: optional"
    echo "Description: $SUMMARY"
    fold -s -w 78 <<<"$DESCRIPTION" | sed 's/ *$//; s/^/ /'
  } >"$root/DEBIAN/control"
  dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
}

build_rpm() {
  local top="$work/rpm" i attr
  mkdir -p "$top"/{BUILD,BUILDROOT,RPMS,SOURCES,SPECS,SRPMS}
  {
    echo "Name: redovault"
    echo "Version: $VERSION"
    echo "Release: $RELEASE"
    echo "Summary: $SUMMARY"
    echo "License: $LICENSE"
    echo "Packager: $MAINTAINER"
    echo "Requires: $RPM_REQUIRES"
    # The dependencies are the one above, not what rpmbuild would guess from the ELF files.
    echo "AutoReqProv: no"
    # The programs are built and stripped of debug info by release.sh: no debuginfo package,
    # no strip, no build-id links, no byte-compiling.
    echo "%global debug_package %{nil}"
    echo "%global _build_id_links none"
    echo "%global __os_install_post %{nil}"
    # Only the files marked doc in deploy/package/files are documentation: rpmbuild would mark
    # everything under /usr/share/doc, the examples too, and nodocs hosts would skip them.
    echo "%global __docdir_path %{nil}"
    echo
    echo "%description"
    fold -s -w 78 <<<"$DESCRIPTION" | sed 's/ *$//'
    echo
    echo "%install"
    echo "mkdir -p '%{buildroot}' && cp -a '$tree/.' '%{buildroot}/'"
    echo
    echo "%post"
    cat "$ROOT/deploy/package/postinst"
    echo
    echo "%postun"
    cat "$ROOT/deploy/package/postrm"
    echo
    echo "%files"
    for i in "${!DESTS[@]}"; do
      attr="%attr(${MODES[$i]},root,root)"
      if [ "${DOCS[$i]}" = doc ]; then echo "%doc $attr ${DESTS[$i]}"; else echo "$attr ${DESTS[$i]}"; fi
    done
  } >"$top/SPECS/redovault.spec"
  rpmbuild -bb --quiet --target x86_64-linux --define "_topdir $top" "$top/SPECS/redovault.spec" >&2
  cp -f "$top/RPMS/x86_64/redovault-$VERSION-$RELEASE.x86_64.rpm" "$OUT/"
}

mkdir -p "$OUT"
build_deb
build_rpm
log "packaged in $(( $(date +%s) - t0 ))s:"
ls -l "$OUT"/redovault_"$VERSION"-"$RELEASE"_amd64.deb "$OUT"/redovault-"$VERSION"-"$RELEASE".x86_64.rpm >&2
