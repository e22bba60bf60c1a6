#!/usr/bin/env bash
# deploy/bench-peers.sh (run it as `deploy/bench.sh peers`): redovault beside the log shippers a
# DBA would otherwise pick, in one run on one Ceph radosgw (HTTPS, 127.0.0.1):
#
#   push:    pgBackRest archive-push (archive-async, process-max 4; compress-type none and lz4),
#            barman-cloud-wal-archive (one process per segment, as archive_command runs it: it has
#            no parallel option for S3), redovault watch (parallel_uploads 4; until every log is
#            shipped and, at SIGTERM, the manifest sealed into WORM)
#   restore: pgBackRest archive-get (archive-async, process-max 4), barman-cloud-wal-restore (one
#            process per segment, as restore_command runs it), redovault-verifier restore archive
#            (--parallel 4)
#
# The same number of bytes each: the Oracle logs come from `redovault simulate`
# (REDOVAULT_BENCH_PEERS_MIB, 2048, in logs of REDOVAULT_BENCH_PEERS_LOG_MIB, 64 MiB); the WAL is
# real: a PostgreSQL 15 cluster on 127.0.0.1 (REDOVAULT_BENCH_PG_PORT, 15432) initdb'ed for the
# run, loaded with INSERTs until it has archived as many 16 MiB segments as the Oracle logs hold
# bytes (rounded up), kept aside, and pushed by every peer from the same files. PostgreSQL's archiver (and recovery's restore_command
# loop) is played by the measuring wrapper: it calls the tool once per segment, in order, and
# renames archive_status/SEG.ready to .done after each success, as the archiver does.
#
# Each row: wall seconds, MB/s, CPU seconds (user + sys) per GB, and the peak RSS of its largest
# process, all of the tool's process tree: the wrapper is a child subreaper (prctl), so the
# detached async processes of pgBackRest are reaped by it and count (getrusage RUSAGE_CHILDREN).
# Every restored file is compared with its original (outside the timing).
#
# Environment: Ceph's ports as in deploy/s3/server.sh (REDOVAULT_S3_CEPH_HTTPS_PORT, _HTTP_PORT,
# _MON_PORT, CEPH_ARGS); REDOVAULT_BENCH_PEERS_DIR (work directory, default .ci/state/peers,
# removed at the end; needs about 4x the bytes free); REDOVAULT_BENCH_PEERS_KEEP=1 keeps it.
# Needs root (apt-get, the postgres user), about 4.5x the bytes x 2 of memory for Ceph's memstore.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STATE=${REDOVAULT_TEST_STATE:-$ROOT/.ci/state}
MIB=${REDOVAULT_BENCH_PEERS_MIB:-2048}
LOG_MIB=${REDOVAULT_BENCH_PEERS_LOG_MIB:-64}
PGPORT=${REDOVAULT_BENCH_PG_PORT:-15432}
WORK=$(realpath -m "${REDOVAULT_BENCH_PEERS_DIR:-$STATE/peers}")
CEPH=$STATE/peers-ceph
PGBIN=/usr/lib/postgresql/15/bin
PARALLEL=4
SEG=$((16 << 20))
log() { echo "bench-peers: $(date -u +%H:%M:%S) $*" >&2; }
die() { echo "bench-peers: ERROR: $*" >&2; exit 1; }
as_pg() { runuser -u postgres -- "$@"; }

[ "$(id -u)" -eq 0 ] || die "run as root (apt-get, and PostgreSQL runs as the postgres user)"
if ! command -v pgbackrest >/dev/null || ! command -v barman-cloud-wal-archive >/dev/null \
  || [ ! -x "$PGBIN/initdb" ]; then
  apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbackrest barman-cli-cloud postgresql-15 >&2
fi
id postgres >/dev/null 2>&1 || die "no postgres user (the postgresql-15 package makes it)"

cleanup() {
  set +e
  [ -f "$WORK/pg/data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m immediate stop >/dev/null 2>&1
  bash deploy/s3/server.sh down ceph "$CEPH" >/dev/null 2>&1
  [ "${REDOVAULT_BENCH_PEERS_KEEP:-0}" = 1 ] || rm -rf -- "$WORK"
}
trap cleanup EXIT
[ ! -e "$WORK" ] || [ -f "$WORK/.bench-peers" ] || die "$WORK exists and is not ours"
rm -rf -- "$WORK"
mkdir -p "$WORK"
touch "$WORK/.bench-peers"
chown postgres: "$WORK"
chmod 755 "$WORK"

log "building the release binaries"
CARGO_INCREMENTAL=0 cargo build -q --release -p redovault --bin redovault -p redovault-verifier --bin redovault-verifier \
  -p redovault-drill --bin redovault-drill
RV=$ROOT/target/release/redovault
RVV=$ROOT/target/release/redovault-verifier

# The measuring wrapper: a child subreaper that runs a command (or the command once per file, as
# PostgreSQL's archiver or recovery would) and writes wall time, user+sys CPU and max RSS of
# every process below it, detached daemons included.
cat > "$WORK/measure.py" <<'EOF'
import ctypes, json, os, resource, signal, subprocess, sys, time
# usage: measure.py OUT.json [--each LIST --ready DIR] -- CMD... (%f: the file name, one run per line of LIST)
out = sys.argv[1]
args = sys.argv[2:]
each = ready = None
while args[0] != "--":
    if args[0] == "--each": each = args[1]; args = args[2:]
    elif args[0] == "--ready": ready = args[1]; args = args[2:]
    else: sys.exit("measure.py: unknown option " + args[0])
cmd = args[1:]
PR_SET_CHILD_SUBREAPER = 36
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("measure.py: prctl(PR_SET_CHILD_SUBREAPER) failed")
child = None
def forward(sig, _frame):
    if child is not None and child.poll() is None:
        child.send_signal(sig)
signal.signal(signal.SIGTERM, forward)
signal.signal(signal.SIGINT, forward)
t0 = time.monotonic()
if each is None:
    child = subprocess.Popen(cmd)
    rc = child.wait()
else:
    rc = 0
    for name in open(each).read().split():
        rc = subprocess.call([a.replace("%f", name) for a in cmd])
        if rc != 0:
            sys.stderr.write("measure.py: %s failed (%d) on %s\n" % (cmd[0], rc, name))
            break
        if ready:
            os.rename(os.path.join(ready, name + ".ready"), os.path.join(ready, name + ".done"))
# Detached descendants (pgBackRest's async process) were reparented to us: wait for them all.
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
    except InterruptedError:
        continue
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
json.dump({"rc": rc, "wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "user": ru.ru_utime,
           "sys": ru.ru_stime, "maxrss_kib": ru.ru_maxrss}, open(out, "w"))
sys.exit(1 if rc else 0)
EOF
chmod 644 "$WORK/measure.py"
RESULTS=$WORK/results.jsonl
# record SIDE NAME BYTES MEASURE.json [WALL]: one row into the results (WALL: the caller's own
# wall time, for the watcher, a daemon timed from the first log's arrival to its exit).
record() {
  local side=$1 name=$2 bytes=$3 m=$4 wall=${5:-}
  /usr/bin/python3 - "$side" "$name" "$bytes" "$m" "$wall" >>"$RESULTS" <<'EOF'
import json, sys
side, name, nbytes, m, wall = sys.argv[1:]
r = json.load(open(m))
if r["rc"] != 0: sys.exit("%s: exit status %d" % (name, r["rc"]))
r.update(side=side, name=name, bytes=int(nbytes))
if wall: r["wall"] = float(wall)
print(json.dumps(r))
EOF
  tail -n 1 "$RESULTS" >&2
}

# ---------------------------------------------------------------------------------------------
# The Oracle logs, from the simulator.
SWITCHES=$(( MIB / LOG_MIB ))
log "simulating $SWITCHES Oracle logs of $LOG_MIB MiB"
"$RV" simulate --dir "$WORK/oracle" --log-size "${LOG_MIB}M" --fast --switches "$SWITCHES" >/dev/null
mapfile -t ORA < <(find "$WORK/oracle/archive" -type f | sort)
[ "${#ORA[@]}" -ge 1 ] || die "the simulator wrote no archived log"
ORA_BYTES=$(cat "${ORA[@]}" | wc -c)
NSEG=$(( (ORA_BYTES + SEG - 1) / SEG ))
log "${#ORA[@]} archived logs, $ORA_BYTES bytes: $NSEG WAL segments of 16 MiB"

# ---------------------------------------------------------------------------------------------
# PostgreSQL 15 on 127.0.0.1, its WAL kept aside as it is archived.
PGDATA=$WORK/pg/data
mkdir -p "$WORK/pg/run" "$WORK/wal-keep"
chown -R postgres: "$WORK/pg" "$WORK/wal-keep"
as_pg "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres --no-sync >/dev/null
cat >>"$PGDATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$WORK/pg/run'
wal_level = replica
archive_mode = on
archive_command = 'cp %p $WORK/wal-keep/%f'
max_wal_size = 4GB
synchronous_commit = off
EOF
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$WORK/pg/postgres.log" -w start >/dev/null
PSQL=(as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -qAt -v ON_ERROR_STOP=1)
"${PSQL[@]}" -c "CREATE TABLE t (id bigint, a text, b text, n numeric)"
log "loading PostgreSQL until $((NSEG + 1)) WAL segments are archived"
batch=0
while [ "$(find "$WORK/wal-keep" -name '[0-9A-F]*' -size "$((SEG / 1024))k" | wc -l)" -lt $((NSEG + 1)) ]; do
  "${PSQL[@]}" -c "INSERT INTO t SELECT g, md5(g::text), md5((g * 7)::text) || repeat(chr(65 + g % 26), g % 40), random() * g FROM generate_series($((batch * 2000000)), $((batch * 2000000 + 1999999))) g"
  batch=$((batch + 1))
  sleep 2
done
# Segments fill up and are archived as the load runs (no pg_switch_wal: no zero-padded segment).
# The first ones hold initdb's own WAL: the last NSEG are what every tool ships.
mapfile -t WAL < <(find "$WORK/wal-keep" -name '[0-9A-F]*' -size "$((SEG / 1024))k" -printf '%f\n' | sort | tail -n "$NSEG")
printf '%s\n' "${WAL[@]}" > "$WORK/segments"
chmod 644 "$WORK/segments"
WAL_BYTES=$(( ${#WAL[@]} * SEG ))
log "${#WAL[@]} WAL segments kept ($WAL_BYTES bytes; the Oracle logs: $ORA_BYTES)"

# ---------------------------------------------------------------------------------------------
# Ceph, sized for everything the run stores (nothing is deleted: the redovault objects are locked).
MEM=$(( (ORA_BYTES + 3 * WAL_BYTES) * 2 + (2 << 30) ))
log "starting Ceph (memstore $((MEM >> 20)) MiB)"
for try in 1 2 3; do
  if REDOVAULT_S3_CEPH_MEMSTORE_BYTES=$MEM bash deploy/s3/server.sh up ceph "$CEPH" >/dev/null; then break; fi
  [ "$try" -lt 3 ] || die "Ceph did not start"
  sleep 10
done
# shellcheck disable=SC1091
. "$CEPH/env.sh"
PORT=${REDOVAULT_TEST_S3_ENDPOINT##*:}
# pgBackRest 2.45 matches the certificate by DNS name only: localhost (tls.sh names it).
/usr/bin/python3 - "$REDOVAULT_TEST_S3_ENDPOINT" "$REDOVAULT_TEST_S3_CA" <<'EOF'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], verify=sys.argv[2], region_name="us-east-1")
for b in ("pgbackrest", "barman"):
    s3.create_bucket(Bucket=b)
EOF

# pgBackRest: one stanza per compression, both of this cluster, in one repository.
mkdir -p "$WORK/pgbackrest"/{log,lock,spool}
cat > "$WORK/pgbackrest/pgbackrest.conf" <<EOF
[global]
repo1-type=s3
repo1-path=/repo
repo1-s3-endpoint=localhost
repo1-storage-port=$PORT
repo1-storage-ca-file=$REDOVAULT_TEST_S3_CA
repo1-s3-bucket=pgbackrest
repo1-s3-region=us-east-1
repo1-s3-uri-style=path
repo1-s3-key=$AWS_ACCESS_KEY_ID
repo1-s3-key-secret=$AWS_SECRET_ACCESS_KEY
archive-async=y
process-max=$PARALLEL
spool-path=$WORK/pgbackrest/spool
lock-path=$WORK/pgbackrest/lock
log-path=$WORK/pgbackrest/log
log-level-console=warn
log-level-file=info
[none]
compress-type=none
pg1-path=$PGDATA
pg1-port=$PGPORT
pg1-socket-path=$WORK/pg/run
[lz4]
compress-type=lz4
pg1-path=$PGDATA
pg1-port=$PGPORT
pg1-socket-path=$WORK/pg/run
EOF
chown -R postgres: "$WORK/pgbackrest"
chmod 600 "$WORK/pgbackrest/pgbackrest.conf"
PGBR=(pgbackrest --config="$WORK/pgbackrest/pgbackrest.conf")
for st in none lz4; do as_pg "${PGBR[@]}" --stanza=$st stanza-create >/dev/null; done
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -w stop >/dev/null
# pg_wal as the archiver finds it: the kept segments, each .ready.
WALDIR=$PGDATA/pg_wal
find "$WALDIR" -maxdepth 1 -type f -name '[0-9A-F]*' -delete
rm -f "$WALDIR"/archive_status/*
for s in "${WAL[@]}"; do ln "$WORK/wal-keep/$s" "$WALDIR/$s"; done
ready_all() {
  local s
  rm -f "$WALDIR"/archive_status/*
  for s in "${WAL[@]}"; do as_pg touch "$WALDIR/archive_status/$s.ready"; done
}
M=(/usr/bin/python3 "$WORK/measure.py")
mkdir -p "$WORK/m"
chown postgres: "$WORK/m"

# ---------------------------------------------------------------------------------------------
# Push.
for st in none lz4; do
  ready_all
  log "push: pgBackRest archive-push, compress-type $st"
  as_pg "${M[@]}" "$WORK/m/pgbr-push-$st.json" --each "$WORK/segments" --ready "$WALDIR/archive_status" \
    -- "${PGBR[@]}" --stanza=$st archive-push "$WALDIR/%f"
  record push "pgBackRest 2.45 archive-push, async, process-max $PARALLEL, compress-type $st" \
    "$WAL_BYTES" "$WORK/m/pgbr-push-$st.json"
done
log "push: barman-cloud-wal-archive, one process per segment"
BARMAN_ENV=(env AWS_CA_BUNDLE="$REDOVAULT_TEST_S3_CA" AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID"
  AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" AWS_DEFAULT_REGION=us-east-1)
as_pg "${BARMAN_ENV[@]}" "${M[@]}" "$WORK/m/barman-push.json" --each "$WORK/segments" \
  -- barman-cloud-wal-archive --endpoint-url "$REDOVAULT_TEST_S3_ENDPOINT" s3://barman/bench pg15 "$WALDIR/%f"
record push "barman-cloud-wal-archive 3.4.0, one process per segment" "$WAL_BYTES" "$WORK/m/barman-push.json"

log "push: redovault watch, parallel_uploads $PARALLEL"
mkdir -p "$WORK/rv/archive" "$WORK/rv/state"
cat > "$WORK/rv/watcher.toml" <<EOF
[watch]
dirs = ["$WORK/rv/archive"]
parallel_uploads = $PARALLEL
[state]
dir = "$WORK/rv/state"
[store]
endpoint = "$REDOVAULT_TEST_S3_ENDPOINT"
bucket = "$REDOVAULT_TEST_S3_BUCKET"
region = "us-east-1"
path_style = true
ca_file = "$REDOVAULT_TEST_S3_CA"
prefix = "peers"
retention = "1h"
[telemetry]
log_format = "json"
log_level = "info"
metrics_listen = ""
EOF
"${M[@]}" "$WORK/m/rv-push.json" -- "$RV" watch --config "$WORK/rv/watcher.toml" 2>"$WORK/rv/watch.log" &
MPID=$!
for _ in $(seq 300); do [ -f "$WORK/rv/state/status.json" ] && break; sleep 0.1; done
[ -f "$WORK/rv/state/status.json" ] || die "the watcher did not start: $(tail -5 "$WORK/rv/watch.log")"
t0=$(date +%s.%N)
for f in "${ORA[@]}"; do ln "$f" "$WORK/rv/archive/"; done
until [ "$(grep -c '"archived log shipped"' "$WORK/rv/watch.log")" -ge "${#ORA[@]}" ]; do
  kill -0 "$MPID" 2>/dev/null || die "the watcher exited: $(tail -5 "$WORK/rv/watch.log")"
  sleep 0.05
done
kill -TERM "$MPID"
wait "$MPID" || die "the watcher failed at shutdown: $(tail -5 "$WORK/rv/watch.log")"
t1=$(date +%s.%N)
grep -q 'manifest segment sealed in WORM' "$WORK/rv/watch.log" || die "no manifest seal in the watcher's log"
record push "redovault watch, parallel_uploads $PARALLEL (until shipped and sealed)" "$ORA_BYTES" \
  "$WORK/m/rv-push.json" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"

# ---------------------------------------------------------------------------------------------
# Restore, each into an empty directory, checked against the originals afterwards.
same_wal() {
  local d=$1 s
  for s in "${WAL[@]}"; do cmp -s "$WORK/wal-keep/$s" "$d/$s" || die "$d/$s differs from the pushed segment"; done
  rm -rf -- "$d"
}
for st in none lz4; do
  log "restore: pgBackRest archive-get, compress-type $st"
  as_pg mkdir -p "$WORK/get-$st"
  as_pg "${M[@]}" "$WORK/m/pgbr-get-$st.json" --each "$WORK/segments" \
    -- "${PGBR[@]}" --stanza=$st archive-get %f "$WORK/get-$st/%f"
  same_wal "$WORK/get-$st"
  record restore "pgBackRest 2.45 archive-get, async, process-max $PARALLEL, compress-type $st" \
    "$WAL_BYTES" "$WORK/m/pgbr-get-$st.json"
done
log "restore: barman-cloud-wal-restore, one process per segment"
as_pg mkdir -p "$WORK/get-barman"
as_pg "${BARMAN_ENV[@]}" "${M[@]}" "$WORK/m/barman-get.json" --each "$WORK/segments" \
  -- barman-cloud-wal-restore --endpoint-url "$REDOVAULT_TEST_S3_ENDPOINT" s3://barman/bench pg15 %f "$WORK/get-barman/%f"
same_wal "$WORK/get-barman"
record restore "barman-cloud-wal-restore 3.4.0, one process per segment" "$WAL_BYTES" "$WORK/m/barman-get.json"

log "restore: redovault-verifier restore archive --parallel $PARALLEL"
cat > "$WORK/rv/verifier.toml" <<EOF
[store]
endpoint = "$REDOVAULT_TEST_S3_ENDPOINT"
bucket = "$REDOVAULT_TEST_S3_BUCKET"
region = "us-east-1"
path_style = true
ca_file = "$REDOVAULT_TEST_S3_CA"
prefix = "peers"
[verify]
lock_mode = "compliance"
min_retention = "30m"
deep = "off"
state_dir = "$WORK/rv/verifier-state"
[telemetry]
log_level = "warn"
EOF
"${M[@]}" "$WORK/m/rv-get.json" -- "$RVV" restore archive --config "$WORK/rv/verifier.toml" \
  --dest "$WORK/get-rv" --parallel "$PARALLEL" >/dev/null
for f in "${ORA[@]}"; do cmp -s "$f" "$WORK/get-rv/$(basename "$f")" || die "restored $(basename "$f") differs"; done
rm -rf -- "$WORK/get-rv"
record restore "redovault-verifier restore archive --parallel $PARALLEL" "$ORA_BYTES" "$WORK/m/rv-get.json"

# What each tool stored (pgBackRest's lz4 shows its ratio here).
/usr/bin/python3 - "$REDOVAULT_TEST_S3_ENDPOINT" "$REDOVAULT_TEST_S3_CA" "$REDOVAULT_TEST_S3_BUCKET" >&2 <<'EOF'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], verify=sys.argv[2], region_name="us-east-1")
for bucket, prefix in (("pgbackrest", "repo/archive/none/"), ("pgbackrest", "repo/archive/lz4/"),
                       ("barman", "bench/"), (sys.argv[3], "peers/archive/")):
    n = size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            n += 1
            size += o["Size"]
    print("stored: s3://%s/%s: %d objects, %d bytes" % (bucket, prefix, n, size))
EOF

# ---------------------------------------------------------------------------------------------
# The table.
/usr/bin/python3 - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for side in ("push", "restore"):
    print("\n%s\n%-78s %8s %9s %8s %12s %14s" % (side, "tool", "GB", "seconds", "MB/s", "CPU s per GB", "peak RSS MiB"))
    for r in rows:
        if r["side"] != side: continue
        gb = r["bytes"] / 1e9
        print("%-78s %8.3f %9.2f %8.1f %12.2f %14.1f" % (r["name"], gb, r["wall"], r["bytes"] / 1e6 / r["wall"],
              r["cpu"] / gb, r["maxrss_kib"] / 1024))
EOF
uptime
