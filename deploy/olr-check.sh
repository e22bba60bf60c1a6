#!/usr/bin/env bash
# Reads redo with an independent reader, OpenLogReplicator (OLR), in batch mode, and compares
# what it finds with the simulator's journal.
#
#   deploy/olr-check.sh OLR_BINARY [WORKDIR]
#
# OLR_BINARY: an OpenLogReplicator built beside the project from its public source (never part
# of it; deploy/docs/independent-reader.md says how). Without it the check skips, in one line.
#
# 1. the real Oracle 23ai logs (../shared/fixtures/oracle-real, or REDOVAULT_ORACLE_REAL);
# 2. the simulator's archived logs (`redovault simulate`, every log archived, rollbacks
#    included), with supplemental logging (the default);
# and for each prints OLR's errors and warnings, the transactions and row changes it emits,
# and for the simulated logs whether they are exactly the journal's committed transactions
# with their row changes (operation, table object id, ROWID, in order). Exit 0 when OLR reads
# every log without an error or warning and the simulated logs match the journal.
#
# 3. with OLR_CHECK_DRILL=DIR, the archived logs a drill (`redovault drill --dir DIR`) restored
#    from WORM, alone and with its rebuilt online log, against the drill's journal.
#
# Environment: REDOVAULT_BIN (default: target/debug/redovault, built when missing),
# OLR_CHECK_SWITCHES (default 10 log switches), OLR_CHECK_SEED (default 7), OLR_CHECK_SIM_ARGS
# (more `redovault simulate` options, e.g. `--no-supplemental-log` or `--db-version 19.0`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OLR=${1:-}
if [ -z "$OLR" ] || [ ! -x "$OLR" ]; then
  echo "olr-check: skipped: no OpenLogReplicator binary at '${OLR}' (build one: deploy/docs/independent-reader.md)"
  exit 0
fi
OLR=$(cd "$(dirname "$OLR")" && pwd)/$(basename "$OLR")
WORK=${2:-$(mktemp -d)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
RV=${REDOVAULT_BIN:-$ROOT/target/debug/redovault}
# `redovault simulate` runs `redovault-drill simulate`, built beside it.
if [ ! -x "$RV" ] || [ ! -x "$(dirname "$RV")/redovault-drill" ]; then
  (cd "$ROOT" && cargo build -q -p redovault -p redovault-drill --bins)
fi
REAL=${REDOVAULT_ORACLE_REAL:-$ROOT/../shared/fixtures/oracle-real}/free23-le-512
status=0

# The file name OLR takes a log's sequence from, arch<thread>_<sequence>_<resetlogs id>.dbf,
# read from its header by `redovault inspect` (empty: not a redo log).
olr_name() {
  { "$RV" inspect --json "$1" || true; } | python3 -c 'import json, sys
v = json.load(sys.stdin)
print("arch%s_%s_%s.dbf" % (v["thread"], v["sequence"], v["resetlogs_id"]))'
}

# Runs OLR in batch mode, schemaless (no dictionary: tables are OBJ_<object id>), on the given
# logs, in the directory $1; its JSON lines go to $1/output.json, its log to $1/olr.log.
run_olr() {
  local dir=$1 name=$2
  shift 2
  mkdir -p "$dir/checkpoint"
  rm -rf "$dir/output.json" "$dir/checkpoint/"* "$dir/logs"
  mkdir -p "$dir/logs"
  # OLR takes a log's sequence from its file name: copy each log under the name
  # arch<thread>_<sequence>_<resetlogs id>.dbf, read from its header by `redovault inspect`.
  local logs="" f name
  for f in "$@"; do
    name=$(olr_name "$f") || true
    if [ -z "$name" ]; then
      echo "  $f: not a redo log (redovault inspect)"
      status=1
      continue
    fi
    cp "$f" "$dir/logs/$name" # a copy: OLR reads a symbolic link's target name
    logs+="\"$dir/logs/$name\","
  done
  cat > "$dir/OpenLogReplicator.json" <<EOF
{
  "version": "1.9.0",
  "source": [{
    "alias": "S1", "name": "$name",
    "reader": {"type": "batch", "redo-log": [${logs%,}], "log-archive-format": "arch%t_%s_%r.dbf"},
    "format": {"type": "json", "rid": 1, "xid": 1, "scn": 1, "timestamp": 1},
    "flags": 2,
    "state": {"path": "checkpoint"}
  }],
  "target": [{"alias": "F", "source": "S1",
              "writer": {"type": "file", "output": "output.json", "new-line": 1, "append": 1}}]
}
EOF
  (cd "$dir" && "$OLR" -r -f OpenLogReplicator.json > olr.log 2>&1) || {
    echo "  OLR exited with $? (log: $dir/olr.log)"
    status=1
  }
  touch "$dir/output.json"
}

# OLR's own complaints: ERROR and WARN lines, except the two every batch run prints (run as
# root on purpose in a scratch directory; no checkpoint file yet on a first run).
# $2, when given, is one more expected line: OLR's 60023 "unexpected end of file" where a
# CURRENT log (no next SCN) ends, which batch mode reports for every such log (Reader.cpp,
# "Partial online redo log file"); online, OLR would wait there for more redo.
complaints() {
  grep -E ' (ERROR|WARN) ' "$1/olr.log" | grep -vE ' (10020|10003) ' \
    | { if [ -n "${2:-}" ]; then grep -vF -- "$2"; else cat; fi; } || true
}

report() {
  local dir=$1 expected=${2:-}
  local c
  c=$(complaints "$dir" "$expected")
  if [ -n "$expected" ] && grep -qF -- "$expected" "$dir/olr.log"; then
    echo "  OLR noted the end of the CURRENT log, as expected in batch mode: ${expected}"
  fi
  python3 - "$dir/output.json" <<'EOF'
import json, sys
txns, rows, ops = 0, 0, {}
for line in open(sys.argv[1]):
    m = json.loads(line)
    for p in m.get("payload", []):
        op = p["op"]
        if op == "begin":
            txns += 1
        elif op in ("c", "u", "d"):
            rows += 1
            ops[op] = ops.get(op, 0) + 1
print(f"  OLR emitted {txns} transactions, {rows} row changes {ops}")
EOF
  if [ -n "$c" ]; then
    echo "  OLR errors and warnings:"
    printf '%s\n' "$c" | sed 's/^/    /'
    status=1
  else
    echo "  OLR errors and warnings: none"
  fi
}

# A second, independent walk (this script's own, written from the format notes, not
# redovault's parser): every block's first-record offset against Oracle's rule (the first
# record that starts in the block; else where a continued record ends, 0 with fewer than 20
# bytes left; 0 inside a record).
offsets() {
  python3 - "$@" <<'PY'
import struct, sys
total = bad = 0
for path in sys.argv[1:]:
    f = open(path, "rb").read()
    e = "<" if f[28:32] == b"\x7d\x7c\x7b\x7a" else ">"
    bs = struct.unpack_from(e + "I", f, 20)[0]
    nab = struct.unpack_from(e + "I", f, bs + 156)[0]
    nblk = min(len(f) // bs, nab)
    want = {}
    blk, off = 2, 16
    while blk < nblk:
        if bs - off < 20 or struct.unpack_from(e + "I", f, blk * bs + off)[0] == 0:
            blk, off = blk + 1, 16
            continue
        n = struct.unpack_from(e + "I", f, blk * bs + off)[0]
        want.setdefault(blk, off)
        b, o, rem = blk, off, n
        while rem > 0:
            k = min(bs - o, rem)
            rem -= k
            o += k
            if rem > 0:
                b, o = b + 1, 16
                want.setdefault(b, 0)
        if b != blk and want[b] == 0:
            want[b] = o if bs - o >= 20 else 0
        if o >= bs:
            b, o = b + 1, 16
        blk, off = b, o
    for b, w in sorted(want.items()):
        total += 1
        got = struct.unpack_from(e + "H", f, b * bs + 12)[0] & 0x7FFF
        if got != w:
            bad += 1
            if bad <= 10:
                print(f"    {path} block {b}: header {got}, records give {w}")
print(f"  first-record offsets (this script's own walk): {total} blocks checked, {bad} inconsistent")
sys.exit(1 if bad else 0)
PY
}

# Compares OLR's output ($1) with a simulator journal ($2): exactly the committed transactions,
# each with its row changes (operation, table object id, ROWID, in order); none rolled back.
compare() {
  python3 - "$1" "$2" <<'PY'
import json, sys
olr = {}
for line in open(sys.argv[1]):
    m = json.loads(line)
    xid = m.get("xid")
    for p in m.get("payload", []):
        if p["op"] in ("c", "u", "d"):
            olr.setdefault(xid, []).append((p["op"], p["schema"]["table"], p.get("rid")))
        elif p["op"] == "begin":
            olr.setdefault(xid, [])
journal = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
committed = {j["xid"]: j for j in journal if not j["rollback"]}
rolled = {j["xid"] for j in journal if j["rollback"]}
rows = sum(j["op_count"] for j in committed.values())
print(f"  journal: {len(committed)} committed transactions ({rows} row changes), {len(rolled)} rolled back")
bad = []
for xid, j in committed.items():
    got = olr.get(xid)
    if got is None:
        bad.append(f"{xid}: committed in the journal, not emitted by OLR")
        continue
    table = f"OBJ_{j['data_object_id']}"
    kinds = {"c": 0, "u": 0, "d": 0}
    for op, t, rid in got:
        kinds[op] += 1
        if t != table:
            bad.append(f"{xid}: row in {t}, the journal says {table}")
    if [rid for _, _, rid in got] != j["row_ids"]:
        bad.append(f"{xid}: ROWIDs {[r for _, _, r in got]} != journal {j['row_ids']}")
    if (kinds["c"], kinds["u"], kinds["d"]) != (j["inserts"], j["updates"], j["deletes"]):
        bad.append(f"{xid}: {kinds} != journal {j['inserts']}/{j['updates']}/{j['deletes']}")
for xid in olr:
    if xid in rolled:
        bad.append(f"{xid}: rolled back in the journal, emitted by OLR")
    elif xid not in committed:
        bad.append(f"{xid}: emitted by OLR, not in the journal")
if bad:
    print(f"  MISMATCH with the journal ({len(bad)}):")
    for b in bad[:20]:
        print("    " + b)
    sys.exit(1)
print("  OLR's transactions and row changes are exactly the journal's committed ones")
PY
}

echo "== the real Oracle 23ai logs ($REAL)"
if [ -f "$REAL/arch1_15_1224959854.dbf" ]; then
  run_olr "$WORK/real" FREE "$REAL/arch1_15_1224959854.dbf" "$REAL/arch1_16_1224959854.dbf"
  report "$WORK/real"
  offsets "$REAL/arch1_15_1224959854.dbf" "$REAL/arch1_16_1224959854.dbf" || status=1
else
  echo "  skipped: the real logs are absent"
fi

echo "== the simulator's archived logs"
SIM=$WORK/sim
rm -rf "$SIM"
read -ra EXTRA <<< "${OLR_CHECK_SIM_ARGS:-}"
"$RV" simulate --fast --archive-current --switches "${OLR_CHECK_SWITCHES:-10}" \
  --seed "${OLR_CHECK_SEED:-7}" --log-size 1M --dir "$SIM" "${EXTRA[@]}" > "$WORK/simulate.json"
mapfile -t ARCH < <(printf '%s\n' "$SIM"/archive/*.dbf | sort -V)
echo "  ${#ARCH[@]} archived logs in $SIM/archive"
run_olr "$WORK/olr-sim" FREE "${ARCH[@]}"
report "$WORK/olr-sim"
offsets "${ARCH[@]}" || status=1
compare "$WORK/olr-sim/output.json" "$SIM/journal.jsonl" || status=1

# Where a CURRENT log's redo ends, as OLR reports it: its write point, or the end of the file.
write_end() {
  { "$RV" inspect --json "$1" || true; } | python3 -c 'import json, os, sys
v = json.load(sys.stdin)
wp = v["write_point"]
print(wp * v["block_size"] if wp is not None else os.path.getsize(sys.argv[1]))' "$1" || echo unknown
}


echo "== control: the simulator's archived logs and its CURRENT online log, as the database leaves it"
# What OLR's batch mode says at the end of a CURRENT log the database itself wrote (no next
# SCN): the drill's rebuilt online log below is judged against this.
CUR=$WORK/sim-current
rm -rf "$CUR"
# Two switches with three groups: the CURRENT log is the third group's first use, zeros past
# its write point as in a rebuilt log (a reused group has an older sequence's blocks there,
# which OLR notes once more, with 60024).
"$RV" simulate --fast --switches 2 --seed "${OLR_CHECK_SEED:-7}" --log-size 1M --dir "$CUR" \
  "${EXTRA[@]}" > "$WORK/simulate-current.json"
mapfile -t CUR_ARCH < <(printf '%s\n' "$CUR"/archive/*.dbf | sort -V)
CURRENT=""
for f in "$CUR"/online/*.log; do
  state=$({ "$RV" inspect --json "$f" 2>/dev/null || true; } \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["log_state"])' 2>/dev/null) || true
  if [ "$state" = current ]; then CURRENT=$f; fi
done
if [ -z "$CURRENT" ]; then
  echo "  no CURRENT online log in $CUR/online"
  status=1
else
  run_olr "$WORK/olr-current" FREE "${CUR_ARCH[@]}" "$CURRENT"
  report "$WORK/olr-current" \
    "60023 file: $WORK/olr-current/logs/$(olr_name "$CURRENT") - position: $(write_end "$CURRENT") - unexpected end of file"
  compare "$WORK/olr-current/output.json" "$CUR/journal.jsonl" || status=1
fi

if [ -n "${OLR_CHECK_DRILL:-}" ]; then
  # A drill's recovery (`redovault drill --dir DIR`): the archived logs restored from WORM, and
  # the online log rebuilt from the collector's stream in place of the last archived one.
  D=$OLR_CHECK_DRILL
  echo "== the drill in $D: archived logs restored from WORM"
  mapfile -t RESTORED < <(printf '%s\n' "$D"/recovery/restore/*.arc | sort -V)
  echo "  ${#RESTORED[@]} archived logs"
  run_olr "$WORK/olr-drill" FREE "${RESTORED[@]}"
  report "$WORK/olr-drill"
  offsets "${RESTORED[@]}" || status=1
  compare "$WORK/olr-drill/output.json" "$D/referee/journal.jsonl" || status=1
  ONLINE=$(printf '%s\n' "$D"/recovery/restore/online_*.log | head -1)
  SEQ=$(basename "$ONLINE" | cut -d_ -f3)
  echo "== the drill in $D: the same, with the rebuilt online log $(basename "$ONLINE") for sequence $SEQ"
  mapfile -t WITH_ONLINE < <(printf '%s\n' "${RESTORED[@]}" | grep -v "/1_${SEQ}_")
  run_olr "$WORK/olr-drill-online" FREE "${WITH_ONLINE[@]}" "$ONLINE"
  # The same one line as at the end of the database's own CURRENT log (the control above).
  report "$WORK/olr-drill-online" \
    "60023 file: $WORK/olr-drill-online/logs/$(olr_name "$ONLINE") - position: $(write_end "$ONLINE") - unexpected end of file"
  compare "$WORK/olr-drill-online/output.json" "$D/referee/journal.jsonl" || status=1
fi
exit $status
