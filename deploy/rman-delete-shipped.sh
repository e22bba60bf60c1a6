#!/usr/bin/env bash
# Deletes archived redo logs with RMAN only as far as redovault has them in WORM.
#
#   deploy/rman-delete-shipped.sh [--dry-run | --execute] [--state-dir DIR | --config FILE]
#                                 [--status-json FILE] [--db-id N] [--resetlogs-id N]
#                                 [--redovault PATH] [--rman "rman target /"]
#
# Reads `redovault status --json` (the watcher's view, recomputed from its manifest) and,
# for each redo thread of one database incarnation, prints
#
#   DELETE NOPROMPT ARCHIVELOG UNTIL SEQUENCE <N> THREAD <t>;
#
# where N is that thread's `safe_to_delete_through`: every sequence from the lowest shipped
# one up to N is in WORM, verified and recorded in the manifest. RMAN's archived-log ranges
# include their upper bound (unlike the UNTIL clause of RESTORE/RECOVER), so the command
# names N itself, never N+1 (which is not known to be in WORM). A release that read the
# bound as exclusive would only keep log N a little longer.
#
# It REFUSES (exit 1, nothing deleted) when:
#   - the status is missing or unreadable (no state directory, `redovault status` failed,
#     not the JSON of `redovault status --json`);
#   - the status is stale: the watcher is not running ("stopped", "not responding",
#     "never started");
#   - a selected thread has a gap (a sequence missing below a shipped one);
#   - the watcher reports damaged or replaced logs (evidence still on this host);
#   - the status holds several databases or incarnations and --db-id / --resetlogs-id do
#     not pick one (the sequence numbers of RMAN's range are those of the CURRENT
#     incarnation: SELECT resetlogs_id FROM v$database_incarnation WHERE status = 'CURRENT').
#
# --dry-run (the default) prints the RMAN commands and runs nothing. --execute also pipes
# them to RMAN (--rman, default "rman target /", split on spaces), whose own archived-log
# deletion policy still applies (DELETE without FORCE). See deploy/docs/rman-deletion-policy.md.
#
# Options:
#   --state-dir DIR       the watcher's state directory (`redovault status --state-dir`)
#   --config FILE         the watcher's configuration (`redovault status --config`)
#   --status-json FILE    read this `redovault status --json` output instead ("-": stdin)
#   --redovault PATH      the redovault program (default: $REDOVAULT, else `redovault`)
#   --db-id N             the database (v$database.dbid), when the status holds several
#   --resetlogs-id N      the incarnation, when the status holds several for the database
#   --rman CMD            the RMAN command line used by --execute
#
# Exit status: 0 printed (or executed), also when nothing is safe to delete; 1 refused;
# 2 usage error, jq missing, or RMAN failed. Needs bash and jq.
set -euo pipefail

prog=rman-delete-shipped
usage() {
  sed -n '2,/^set -euo pipefail/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2
  exit 2
}
refuse() {
  echo "$prog: REFUSED: $*; nothing deleted" >&2
  exit 1
}
fail() {
  echo "$prog: $*" >&2
  exit 2
}

mode=dry-run
state_dir=""
config=""
status_json=""
db_id=""
resetlogs_id=""
redovault=${REDOVAULT:-redovault}
rman_cmd="rman target /"

need_arg() { [ $# -ge 2 ] || fail "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) mode=dry-run ;;
    --execute) mode=execute ;;
    --state-dir) need_arg "$@"; state_dir=$2; shift ;;
    --config) need_arg "$@"; config=$2; shift ;;
    --status-json) need_arg "$@"; status_json=$2; shift ;;
    --db-id) need_arg "$@"; db_id=$2; shift ;;
    --resetlogs-id) need_arg "$@"; resetlogs_id=$2; shift ;;
    --redovault) need_arg "$@"; redovault=$2; shift ;;
    --rman) need_arg "$@"; rman_cmd=$2; shift ;;
    -h|--help) usage ;;
    *) fail "unknown argument: $1 (try --help)" ;;
  esac
  shift
done
for n in "$db_id" "$resetlogs_id"; do
  [ -z "$n" ] || [[ $n =~ ^[0-9]+$ ]] || fail "--db-id and --resetlogs-id take a number, not '$n'"
done
command -v jq >/dev/null 2>&1 || fail "jq is needed (apt-get install jq)"

# 1. The status: missing or unreadable is a refusal.
if [ -n "$status_json" ]; then
  if [ "$status_json" = - ]; then
    json=$(cat) || refuse "could not read the status from stdin"
  else
    [ -r "$status_json" ] || refuse "status file $status_json is missing or unreadable"
    json=$(cat -- "$status_json") || refuse "could not read $status_json"
  fi
  source_desc=$status_json
else
  args=(status --json)
  [ -z "$state_dir" ] || args+=(--state-dir "$state_dir")
  [ -z "$config" ] || args+=(--config "$config")
  command -v "$redovault" >/dev/null 2>&1 || refuse "$redovault not found (give --redovault PATH)"
  errf=$(mktemp)
  rc=0
  json=$("$redovault" "${args[@]}" 2>"$errf") || rc=$?
  err=$(head -c 2000 "$errf" || true)
  rm -f "$errf"
  # `redovault status` exits 2 when something needs a look, and still prints the status.
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then
    refuse "redovault status failed (exit $rc): ${err:-no message}"
  fi
  source_desc="$redovault ${args[*]}"
fi
if ! jq -e 'type == "object" and (.daemon | type) == "string" and (.threads | type) == "array"' \
  >/dev/null 2>&1 <<<"$json"; then
  refuse "the status from $source_desc is missing or is not the JSON of 'redovault status --json'"
fi

# 2. Stale: only a running watcher's word counts.
daemon=$(jq -r '.daemon' <<<"$json")
age=$(jq -r '.status_age_seconds // "unknown"' <<<"$json")
case $daemon in
  running) ;;
  "never started")
    refuse "no watcher status in that state directory (never started, or the wrong --state-dir / --config)" ;;
  *)
    refuse "the watcher is $daemon (its status is $age s old): stale; start it (redovault watch) and let it catch up" ;;
esac

# 3. Problems on this host that deleting would hide.
damaged=$(jq -r '[.status.damaged // [] | .[].path] | join(", ")' <<<"$json")
replaced=$(jq -r '[.status.replaced // [] | .[].path] | join(", ")' <<<"$json")
[ -z "$damaged" ] || refuse "the watcher reports damaged logs ($damaged); see 'redovault status'"
[ -z "$replaced" ] || refuse "the watcher reports replaced logs ($replaced): evidence; see 'redovault status'"

# 4. One database, one incarnation.
sel=$(jq -c --arg db "$db_id" --arg rl "$resetlogs_id" '
  [.threads[] | select(($db == "" or (.db_id | tostring) == $db)
                       and ($rl == "" or (.resetlogs_id | tostring) == $rl))]' <<<"$json")
[ "$(jq 'length' <<<"$sel")" -gt 0 ] ||
  refuse "the status names no shipped thread${db_id:+ of db id $db_id}${resetlogs_id:+ with resetlogs id $resetlogs_id} (nothing shipped yet?)"
dbs=$(jq -r '[.[].db_id] | unique | map(tostring) | join(" ")' <<<"$sel")
[ "$(wc -w <<<"$dbs")" -eq 1 ] || refuse "the status holds several databases ($dbs): choose one with --db-id"
incs=$(jq -r '[.[].resetlogs_id] | unique | map(tostring) | join(" ")' <<<"$sel")
[ "$(wc -w <<<"$incs")" -eq 1 ] ||
  refuse "database $dbs has several incarnations in the status (resetlogs ids $incs): give --resetlogs-id of the CURRENT one (v\$database_incarnation)"

# 5. Gaps.
gaps=$(jq -r '.[] | select(.gaps | length > 0)
  | "thread \(.thread): " + ([.gaps[] | if .first == .last then "\(.first)" else "\(.first)-\(.last)" end] | join(", "))' <<<"$sel")
[ -z "$gaps" ] || refuse "missing sequences ($(tr '\n' ';' <<<"$gaps" | sed 's/;$//; s/;/; /g')): find those logs and ship them (redovault push), or acknowledge the loss, before deleting"

# 6. The commands.
name=$(jq -r '.[0].db_name' <<<"$sel")
commands=()
echo "# redovault: database $name (db id $dbs), resetlogs id $incs; watcher running, status $age s old"
while IFS=$'\t' read -r thread safe shipped last; do
  if [ "$safe" = null ]; then
    echo "# thread $thread: nothing is safe to delete yet (a log below the first shipped one is waiting)"
    continue
  fi
  echo "# thread $thread: $shipped logs in WORM, last shipped sequence $last; safe to delete through $safe"
  commands+=("DELETE NOPROMPT ARCHIVELOG UNTIL SEQUENCE $safe THREAD $thread;")
done < <(jq -r '.[] | [.thread, .safe_to_delete_through, .shipped, (.last_shipped.sequence // "none")] | @tsv' <<<"$sel")
if [ ${#commands[@]} -gt 0 ]; then
  printf '%s\n' "${commands[@]}"
fi

if [ "$mode" = dry-run ]; then
  echo "# dry run: nothing was run (--execute pipes the commands above to: $rman_cmd)"
  exit 0
fi
if [ ${#commands[@]} -eq 0 ]; then
  echo "# nothing to delete"
  exit 0
fi
read -r -a rman_argv <<<"$rman_cmd"
[ ${#rman_argv[@]} -gt 0 ] || fail "--rman is empty"
echo "# running: $rman_cmd"
rc=0
printf '%s\n' "${commands[@]}" "EXIT;" | "${rman_argv[@]}" || rc=$?
[ "$rc" -eq 0 ] || fail "RMAN exited with $rc; see its output above"
echo "# RMAN finished"
