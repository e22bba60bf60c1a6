#!/usr/bin/env bash
# Checks the .deb and the .rpm that deploy/package.sh built. As root, on a Debian host where
# redovault is not installed (it installs the .deb, then purges it).
#
#   deploy/check-packages.sh DEB RPM
#
# 1. the .rpm holds the same files as the .deb (`rpm -qlp` against `dpkg-deb -c`), but the
#    Debian copyright file that deploy/package.sh writes into the .deb only; the .rpm marks the
#    docs as documentation, not the examples;
# 2. the .deb installs (`dpkg -i`), its units pass `systemd-analyze verify` where the package put
#    them, every program runs (`--version`), the redovault user exists, and no unit was enabled
#    or started;
# 3. `dpkg --purge` removes every file it installed (the redovault user stays, as it would on
#    a real host: see deploy/docs/upgrade.md).
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 DEB RPM" >&2; exit 2; }
DEB=$(realpath "$1") RPM=$(realpath "$2")
PROGRAMS=(redovault redovault-extractor redovault-collector redovault-verifier)
UNITS=(redovault-watcher redovault-extractor redovault-collector redovault-verifier)

log() { echo "check-packages.sh: $*" >&2; }
die() { echo "check-packages.sh: ERROR: $*" >&2; exit 1; }

for tool in dpkg-deb rpm systemd-analyze; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install dpkg rpm systemd)"
done

# 1. Same files with the same modes in both (directories aside: dpkg lists them, rpm lists
#    only the ones it owns).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { sub(/^\./, "", $NF); print $1, $NF }' \
  | grep -v ' /usr/share/doc/redovault/copyright$' | sort -k2 >"$work/deb"
rpm -qlvp "$RPM" 2>/dev/null | awk '{ print $1, $NF }' | sort -k2 >"$work/rpm"
[ -s "$work/deb" ] || die "no files in $DEB"
if ! diff -u "$work/deb" "$work/rpm" >&2; then
  die "the .rpm (+) and the .deb (-) hold different files or modes"
fi
log "the .deb and the .rpm hold the same $(wc -l <"$work/deb") files, with the same modes"
scripts=$(rpm -qp --scripts "$RPM" 2>/dev/null)
grep -q 'systemd-sysusers' <<<"$scripts" || die "$RPM has no post-install script"
# A host installed with tsflags=nodocs skips the .rpm's documentation: the docs, not the examples.
docs=$(rpm -qpd "$RPM" 2>/dev/null)
grep -qx '/usr/share/doc/redovault/README.md' <<<"$docs" || die "$RPM does not mark README.md as documentation"
! grep -q '/examples/' <<<"$docs" || die "$RPM marks the examples as documentation (nodocs hosts would skip them)"

# 2. Install, check, 3. purge.
[ "$(id -u)" -eq 0 ] || die "installing the .deb needs root"
if [ "$(dpkg-query -W -f='${Status}' redovault 2>/dev/null || true)" = "install ok installed" ]; then
  die "redovault is already installed here: refusing to replace and purge it"
fi
purge() { dpkg --purge redovault >/dev/null 2>&1 || true; }
trap 'purge; rm -rf "$work"' EXIT
dpkg -i "$DEB" >&2
units=()
for u in "${UNITS[@]}"; do
  f=/usr/lib/systemd/system/$u.service
  [ -f "$f" ] || die "$f not installed"
  units+=("$f")
done
out=$(systemd-analyze verify "${units[@]}" 2>&1) || { echo "$out" >&2; die "systemd-analyze verify failed"; }
[ -z "$out" ] || { echo "$out" >&2; die "systemd-analyze verify printed warnings"; }
log "systemd-analyze verify: the installed units are OK"
for p in "${PROGRAMS[@]}"; do
  "/usr/bin/$p" --version >&2 || die "/usr/bin/$p --version failed"
done
getent passwd redovault >/dev/null || die "the post-install script did not create the redovault user"
for ex in watcher extractor collector verifier; do
  [ -f "/usr/share/doc/redovault/examples/$ex.example.toml" ] || die "example $ex.example.toml missing"
done
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  for u in "${UNITS[@]}"; do
    if systemctl is-enabled --quiet "$u" 2>/dev/null || systemctl is-active --quiet "$u" 2>/dev/null; then
      die "$u was enabled or started by the package"
    fi
  done
fi
dpkg --purge redovault >&2
while read -r _ f; do
  [ ! -e "$f" ] || die "$f left after dpkg --purge"
done <"$work/deb"
log "the .deb installs, its units verify, and it purges cleanly"
