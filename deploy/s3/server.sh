#!/usr/bin/env bash
# usage: deploy/s3/server.sh up|down|env ceph|localstack STATE_DIR
#
# Installs (if missing), starts and stops a real S3 server that enforces Object Lock (WORM), on 127.0.0.1
# only, over HTTPS with a throwaway CA (see tls.sh), with test credentials testkey / testsecret1234.
#
#   up    install if missing (as root: apt-get for Ceph, a pip venv for LocalStack), start, wait until ready,
#         create and verify the buckets rv-lock, rv-lock-default and rv-nolock, write STATE_DIR/env.sh.
#         Ceph only: also the users redovault-dbhost, redovault-verifier and redovault-collector and the bucket
#         redovault-drill (Object Lock, the default retention of policies/bucket-object-lock.json, and one bucket
#         policy made of the statements of policies/dbhost-put-only.json, policies/verifier-read-only.json and
#         policies/collector-put-only.json).
#         If the same server is already up and healthy in STATE_DIR it is reused; stale state left by a crash
#         is stopped and wiped first.
#   down  stop every daemon by pid (SIGTERM, then SIGKILL after a timeout) and delete STATE_DIR.
#         Safe to call twice, and when nothing runs.
#   env   print STATE_DIR/env.sh (source it: `. STATE_DIR/env.sh`).
#
# Environment (all optional):
#   REDOVAULT_S3_CEPH_HTTPS_PORT (7443) REDOVAULT_S3_CEPH_HTTP_PORT (7480) REDOVAULT_S3_CEPH_MON_PORT (13300)
#   REDOVAULT_S3_LOCALSTACK_PORT (4566)
#   REDOVAULT_S3_CACHE   where the LocalStack venv is kept between runs (default: the parent of STATE_DIR)
#   REDOVAULT_PYTHON     a Python >= 3.13 for LocalStack (default: searched on PATH and under pyenv)
#   REDOVAULT_S3_READY_TIMEOUT  seconds to wait for the server (default 120)
#   REDOVAULT_S3_ALSO_LISTEN  Ceph only: one more IPv4 address radosgw listens on (same ports) and the
#                        server certificate names, for multi-host tests that run the server in a network
#                        namespace of their own (e.g. 10.213.0.5 inside it); default: none, 127.0.0.1 only
set -euo pipefail

ACCESS_KEY=testkey
SECRET_KEY=testsecret1234
REGION=us-east-1
LOCALSTACK_VERSION=2026.3.0
MARKER=.redovault-s3-state
BUCKETS=(rv-lock rv-lock-default rv-nolock)
# The attack-drill bucket (Ceph only: LocalStack community enforces no bucket policy) and its three users,
# who hold the keys of the database host, of the verifier and of the collector. Throwaway keys, like the
# owner's.
DRILL_BUCKET=redovault-drill
DRILL_PREFIX=drill
DBHOST_USER=redovault-dbhost DBHOST_ACCESS_KEY=dbhostkey DBHOST_SECRET_KEY=dbhostsecret1234
VERIFIER_USER=redovault-verifier VERIFIER_ACCESS_KEY=verifierkey VERIFIER_SECRET_KEY=verifiersecret1234
COLLECTOR_USER=redovault-collector COLLECTOR_ACCESS_KEY=collectorkey COLLECTOR_SECRET_KEY=collectorsecret1234
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
READY_TIMEOUT=${REDOVAULT_S3_READY_TIMEOUT:-120}

CEPH_HTTPS_PORT=${REDOVAULT_S3_CEPH_HTTPS_PORT:-7443}
CEPH_HTTP_PORT=${REDOVAULT_S3_CEPH_HTTP_PORT:-7480}
CEPH_MON_PORT=${REDOVAULT_S3_CEPH_MON_PORT:-13300}
LOCALSTACK_PORT=${REDOVAULT_S3_LOCALSTACK_PORT:-4566}
ALSO_LISTEN=${REDOVAULT_S3_ALSO_LISTEN:-}
if [ -n "$ALSO_LISTEN" ] && ! [[ "$ALSO_LISTEN" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]; then
  echo "server.sh: REDOVAULT_S3_ALSO_LISTEN=$ALSO_LISTEN is not an IPv4 address" >&2
  exit 2
fi

log() { echo "server.sh: $*" >&2; }
die() { echo "server.sh: ERROR: $*" >&2; exit 1; }
usage() { die "usage: $0 up|down|env ceph|localstack STATE_DIR"; }

[ $# -eq 3 ] || usage
ACTION=$1 KIND=$2
case "$ACTION" in up|down|env) ;; *) usage ;; esac
case "$KIND" in ceph|localstack) ;; *) usage ;; esac
[ -n "$3" ] || usage
STATE=$(realpath -m -- "$3")
case "$STATE" in /|/root|/home|/tmp|/var|/usr|/etc|"$HOME") die "refusing to use $STATE as a state directory" ;; esac
case "$STATE" in *"'"*|*$'\n'*|*' '*) die "the state directory path must not contain quotes, spaces or newlines: $STATE" ;; esac
PARENT=$(dirname "$STATE")
CACHE=$(realpath -m -- "${REDOVAULT_S3_CACHE:-$PARENT}")
case "$CACHE/" in "$STATE"/*) die "the cache directory ($CACHE) must be outside the state directory ($STATE)" ;; esac

# ---------------------------------------------------------------------------------------------------------
# helpers

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "$1 needs root (run this script as root, or install it yourself first)"
}

# Tail of a log file, for failure messages.
show_log() {
  local f
  for f in "$@"; do
    [ -f "$f" ] || continue
    echo "----- last 30 lines of $f -----" >&2
    tail -n 30 "$f" >&2 || true
  done
}

port_free() {
  local port=$1 holder
  holder=$(ss -Hltnp "sport = :$port" 2>/dev/null || true)
  [ -z "$holder" ] || die "TCP port $port is already in use: $holder
  (set the port with the environment variables listed in $0, or stop whatever holds it)"
}

# Is PID alive and does its command line contain NEEDLE? Guards against killing a recycled pid.
pid_matches() {
  local pid=$1 needle=$2
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$needle"
}

# Stop one daemon by pid: SIGTERM (to its process group when GROUP=1), wait up to WAIT seconds, then SIGKILL.
stop_pid() {
  local pid=$1 needle=$2 wait=$3 group=${4:-0} i
  pid_matches "$pid" "$needle" || return 0
  log "stopping pid $pid ($(tr '\0\n' '  ' < "/proc/$pid/cmdline" | cut -c1-80))"
  if [ "$group" = 1 ]; then kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  else kill -TERM "$pid" 2>/dev/null || true; fi
  for ((i = 0; i < wait * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  log "pid $pid still alive after ${wait}s: SIGKILL"
  if [ "$group" = 1 ]; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  die "pid $pid did not exit after SIGKILL"
}

# Stop everything recorded in STATE (either kind) and remove it. Never touches a directory we did not create.
stop_all() {
  [ -e "$STATE" ] || return 0
  if [ ! -e "$STATE/$MARKER" ]; then
    if [ -d "$STATE" ] && [ -z "$(ls -A "$STATE")" ]; then rmdir "$STATE"; return 0; fi
    die "$STATE exists but was not made by this script (no $MARKER): not touching it"
  fi
  stop_daemons
  rm -rf -- "$STATE"
}

stop_daemons() {
  local f pid
  # Ceph: rgw first, then osd, then mon (the order of the doc's stop script).
  for f in client.rgw.a osd.0 mon.a; do
    [ -f "$STATE/ceph/run/$f.pid" ] || continue
    pid=$(cat "$STATE/ceph/run/$f.pid" 2>/dev/null || true)
    stop_pid "$pid" "$STATE/ceph/ceph.conf" 10
  done
  # LocalStack: its own process group (started with setsid); SIGTERM can hang, so SIGKILL after 10 s.
  if [ -f "$STATE/localstack/localstack.pid" ]; then
    pid=$(cat "$STATE/localstack/localstack.pid" 2>/dev/null || true)
    stop_pid "$pid" "localstack.runtime.main" 10 1
  fi
}

# If `up` fails half-way, stop what it started but keep the logs; the next `up` wipes the directory.
UP_DONE=0
on_up_exit() {
  [ "$UP_DONE" = 1 ] && return 0
  [ -e "$STATE/$MARKER" ] || return 0
  rm -f "$STATE/env.sh"
  stop_daemons || true
  log "up failed: daemons stopped, logs kept in $STATE (the next up or down removes it)"
}

# Listening sockets of the given pids that are not on 127.0.0.1 (prints them; empty means all loopback).
check_loopback() {
  local pids=("$@") all p bad=""
  all=$(ss -Hltunp 2>/dev/null || true)
  for p in "${pids[@]}"; do
    bad+=$(printf '%s\n' "$all" | grep -E "pid=$p," | awk -v also="${ALSO_LISTEN:-127.0.0.1}:" \
      '$5 !~ /^127\.0\.0\.1:/ && index($5, also) != 1' || true)
  done
  printf '%s' "$bad"
}

listening_of() {
  local all p
  all=$(ss -Hltunp 2>/dev/null || true)
  for p in "$@"; do printf '%s\n' "$all" | grep -E "pid=$p," | awk '{print "  " $1 " " $5 " " $7}' || true; done
}

# ---------------------------------------------------------------------------------------------------------
# S3 requests through curl's SigV4 signer. Sets S3_STATUS and S3_BODY.
# usage: s3 METHOD PATH [extra curl args...]; PATH like /bucket?object-lock=
# (curl 7.88 signs the query string as written: give subresources as `?name=` so the canonical form matches.)
s3() {
  local method=$1 path=$2 out
  shift 2
  out=$(mktemp)
  S3_STATUS=$(curl -sS --max-time 30 --cacert "$STATE/tls/ca.crt" \
    --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -X "$method" -o "$out" -w '%{http_code}' \
    "$@" "$ENDPOINT$path" 2>&1) || S3_STATUS="curl-failed: $S3_STATUS"
  S3_BODY=$(cat "$out")
  rm -f "$out"
}

# PUT with a small body (Content-Length set, Content-MD5 sent: AWS wants it on lock configuration).
s3_put_body() {
  local path=$1 body=$2 md5
  shift 2
  md5=$(printf '%s' "$body" | openssl dgst -md5 -binary | base64)
  s3 PUT "$path" -H "Content-MD5: $md5" -H "Content-Type: application/xml" --data-binary "$body" "$@"
}

expect() {
  local what=$1 want=$2
  [ "$S3_STATUS" = "$want" ] || die "$what: expected HTTP $want, got $S3_STATUS: $S3_BODY"
}

create_buckets() {
  s3 PUT /rv-lock -H "x-amz-bucket-object-lock-enabled: true" -H "Content-Length: 0"
  expect "CreateBucket rv-lock (object lock)" 200
  s3_put_body "/rv-lock?versioning=" \
    '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>'
  expect "PutBucketVersioning rv-lock" 200

  s3 PUT /rv-lock-default -H "x-amz-bucket-object-lock-enabled: true" -H "Content-Length: 0"
  expect "CreateBucket rv-lock-default (object lock)" 200
  s3_put_body "/rv-lock-default?object-lock=" \
    '<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>'
  expect "PutObjectLockConfiguration rv-lock-default (COMPLIANCE 1 day)" 200

  s3 PUT /rv-nolock -H "Content-Length: 0"
  expect "CreateBucket rv-nolock" 200
  s3_put_body "/rv-nolock?versioning=" \
    '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>'
  expect "PutBucketVersioning rv-nolock" 200
}

# Fails loudly unless every bucket is exactly as promised.
verify_buckets() {
  local b
  for b in "${BUCKETS[@]}"; do
    s3 GET "/$b?versioning="
    expect "GetBucketVersioning $b" 200
    grep -q '<Status>Enabled</Status>' <<<"$S3_BODY" || die "bucket $b: versioning is not Enabled: $S3_BODY"
  done
  s3 GET "/rv-lock?object-lock="
  expect "GetObjectLockConfiguration rv-lock" 200
  grep -q '<ObjectLockEnabled>Enabled</ObjectLockEnabled>' <<<"$S3_BODY" \
    || die "bucket rv-lock: Object Lock not Enabled: $S3_BODY"
  ! grep -q '<DefaultRetention>' <<<"$S3_BODY" || die "bucket rv-lock must have no default retention: $S3_BODY"

  s3 GET "/rv-lock-default?object-lock="
  expect "GetObjectLockConfiguration rv-lock-default" 200
  if ! grep -q '<ObjectLockEnabled>Enabled</ObjectLockEnabled>' <<<"$S3_BODY" \
    || ! grep -q '<Mode>COMPLIANCE</Mode>' <<<"$S3_BODY" || ! grep -q '<Days>1</Days>' <<<"$S3_BODY"; then
    die "bucket rv-lock-default: expected Object Lock with default retention COMPLIANCE 1 day: $S3_BODY"
  fi

  s3 GET "/rv-nolock?object-lock="
  case "$S3_STATUS" in
    4[0-9][0-9]) ;;
    *) die "bucket rv-nolock: GetObjectLockConfiguration must fail (no Object Lock), got $S3_STATUS: $S3_BODY" ;;
  esac
  log "buckets verified: rv-lock (versioned, Object Lock, no default), rv-lock-default (COMPLIANCE 1 day), rv-nolock (versioned, no lock; GET ?object-lock -> $S3_STATUS)"
  if [ "$KIND" = ceph ]; then verify_drill; fi
}

# ---------------------------------------------------------------------------------------------------------
# The drill bucket: the policy files of deploy/s3/policies, applied as they are (templated only).

# The lock configuration of policies/bucket-object-lock.json (the `aws s3api` JSON form) as S3 XML.
drill_lock_xml() {
  jq -er '.Rule.DefaultRetention as $d
    | if .ObjectLockEnabled != "Enabled" or ($d.Mode | type) != "string"
         or (($d.Days // $d.Years) | type) != "number" then error("no Mode with Days or Years") else . end
    | "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ObjectLockEnabled>Enabled</ObjectLockEnabled>"
      + "<Rule><DefaultRetention><Mode>\($d.Mode)</Mode>"
      + (if $d.Days then "<Days>\($d.Days)</Days>" else "<Years>\($d.Years)</Years>" end)
      + "</DefaultRetention></Rule></ObjectLockConfiguration>"' "$SCRIPT_DIR/policies/bucket-object-lock.json" \
    || die "cannot read $SCRIPT_DIR/policies/bucket-object-lock.json"
}

# ONE bucket policy: every statement of the three policy files, with ACCOUNT_ID -> "" (Ceph users are
# arn:aws:iam:::user/NAME), BUCKET -> the drill bucket, PREFIX -> the drill prefix. Compact JSON.
drill_policy_json() {
  local out
  out=$(jq -ces --arg bucket "$DRILL_BUCKET" --arg prefix "$DRILL_PREFIX" '
    {Version: .[0].Version, Statement: [.[].Statement[]]}
    | walk(if type == "string"
           then gsub("ACCOUNT_ID"; "") | gsub("BUCKET"; $bucket) | gsub("PREFIX"; $prefix) else . end)' \
    "$SCRIPT_DIR/policies/dbhost-put-only.json" "$SCRIPT_DIR/policies/verifier-read-only.json" \
    "$SCRIPT_DIR/policies/collector-put-only.json") \
    || die "cannot build the bucket policy from $SCRIPT_DIR/policies/{dbhost-put-only,verifier-read-only,collector-put-only}.json"
  ! grep -qE 'ACCOUNT_ID|BUCKET|PREFIX' <<<"$out" || die "placeholder left in the drill bucket policy: $out"
  printf '%s' "$out"
}

create_drill_bucket() {
  local policy
  s3 PUT "/$DRILL_BUCKET" -H "x-amz-bucket-object-lock-enabled: true" -H "Content-Length: 0"
  expect "CreateBucket $DRILL_BUCKET (object lock)" 200
  s3_put_body "/$DRILL_BUCKET?object-lock=" "$(drill_lock_xml)"
  expect "PutObjectLockConfiguration $DRILL_BUCKET (policies/bucket-object-lock.json)" 200
  policy=$(drill_policy_json)
  s3 PUT "/$DRILL_BUCKET?policy=" -H "Content-Type: application/json" --data-binary "$policy"
  case "$S3_STATUS" in
    200|204) ;;
    *) die "PutBucketPolicy $DRILL_BUCKET: expected HTTP 204, got $S3_STATUS: $S3_BODY
  (Ceph answers a bare 400 InvalidArgument for an action name it does not know: try the statements one by one)" ;;
  esac
}

# The drill bucket has the lock configuration and exactly the policy built from the files.
verify_drill() {
  local want
  s3 GET "/$DRILL_BUCKET?versioning="
  expect "GetBucketVersioning $DRILL_BUCKET" 200
  grep -q '<Status>Enabled</Status>' <<<"$S3_BODY" || die "bucket $DRILL_BUCKET: versioning is not Enabled: $S3_BODY"
  want=$(drill_lock_xml | sed -e 's/ xmlns="[^"]*"//')
  s3 GET "/$DRILL_BUCKET?object-lock="
  expect "GetObjectLockConfiguration $DRILL_BUCKET" 200
  grep -qF "$want" <<<"$S3_BODY" || die "bucket $DRILL_BUCKET: expected $want, got $S3_BODY"
  s3 GET "/$DRILL_BUCKET?policy="
  expect "GetBucketPolicy $DRILL_BUCKET" 200
  [ "$(jq -cS . <<<"$S3_BODY" 2>/dev/null)" = "$(drill_policy_json | jq -cS .)" ] \
    || die "bucket $DRILL_BUCKET: the stored policy is not the one built from the policy files: $S3_BODY"
  log "bucket verified: $DRILL_BUCKET (Object Lock, default retention and bucket policy from deploy/s3/policies)"
}

write_env() {
  local tmp="$STATE/env.sh.tmp"
  {
    echo "# written by deploy/s3/server.sh up $KIND $STATE"
    # Single-quoted values: valid shell, and simple to parse for the Rust tests (which strip the quotes).
    printf "export %s='%s'\n" \
      REDOVAULT_TEST_S3_ENDPOINT "$ENDPOINT" \
      REDOVAULT_TEST_S3_CA "$STATE/tls/ca.crt" \
      REDOVAULT_TEST_S3_REGION "$REGION" \
      REDOVAULT_TEST_S3_KIND "$KIND" \
      AWS_ACCESS_KEY_ID "$ACCESS_KEY" \
      AWS_SECRET_ACCESS_KEY "$SECRET_KEY" \
      REDOVAULT_TEST_S3_BUCKET rv-lock \
      REDOVAULT_TEST_S3_BUCKET_DEFAULT rv-lock-default \
      REDOVAULT_TEST_S3_BUCKET_NOLOCK rv-nolock
    if [ "$KIND" = ceph ]; then
      printf "export %s='%s'\n" \
        REDOVAULT_TEST_S3_DRILL_BUCKET "$DRILL_BUCKET" \
        REDOVAULT_TEST_S3_DRILL_PREFIX "$DRILL_PREFIX" \
        REDOVAULT_TEST_S3_DBHOST_ACCESS_KEY_ID "$DBHOST_ACCESS_KEY" \
        REDOVAULT_TEST_S3_DBHOST_SECRET_ACCESS_KEY "$DBHOST_SECRET_KEY" \
        REDOVAULT_TEST_S3_VERIFIER_ACCESS_KEY_ID "$VERIFIER_ACCESS_KEY" \
        REDOVAULT_TEST_S3_VERIFIER_SECRET_ACCESS_KEY "$VERIFIER_SECRET_KEY" \
        REDOVAULT_TEST_S3_COLLECTOR_ACCESS_KEY_ID "$COLLECTOR_ACCESS_KEY" \
        REDOVAULT_TEST_S3_COLLECTOR_SECRET_ACCESS_KEY "$COLLECTOR_SECRET_KEY"
    fi
  } > "$tmp"
  mv -f "$tmp" "$STATE/env.sh"
}

# Wait until an HTTPS GET / answers with any HTTP status (S3 answers 403 or 200 without credentials).
wait_https() {
  local what=$1 deadline code
  shift
  deadline=$(($(date +%s) + READY_TIMEOUT))
  while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$STATE/tls/ca.crt" "$ENDPOINT/" || true)
    case "$code" in [1-5][0-9][0-9]) return 0 ;; esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
      show_log "$@"
      die "$what did not answer on $ENDPOINT within ${READY_TIMEOUT}s"
    fi
    sleep 0.3
  done
}

# ---------------------------------------------------------------------------------------------------------
# Ceph radosgw: 1 mon + 1 memstore OSD + radosgw, no mgr (recipe of docs/s3-object-lock.md §3.2).

ceph_pids() {
  local f pid
  for f in client.rgw.a osd.0 mon.a; do
    pid=$(cat "$STATE/ceph/run/$f.pid" 2>/dev/null || true)
    pid_matches "$pid" "$STATE/ceph/ceph.conf" && echo "$pid"
  done
}

ceph_install() {
  local missing=() c
  for c in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool; do
    command -v "$c" >/dev/null || missing+=("$c")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root "installing Ceph (missing: ${missing[*]})"
  log "installing Ceph from apt (missing: ${missing[*]})"
  local t0
  t0=$(now)
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2 || die "apt-get update failed"
  apt-get install -y -q --no-install-recommends ceph-mon ceph-osd radosgw ceph-common >&2 \
    || die "apt-get install of Ceph failed"
  log "Ceph installed in $(elapsed "$t0")s"
}

ceph_up() {
  ceph_install
  local D="$STATE/ceph" t0
  mkdir -p "$D"/{mon,osd/ceph-0,run,log,rgw}
  local FSID C K
  FSID=$(cat /proc/sys/kernel/random/uuid)
  cat > "$D/ceph.conf" <<EOF
[global]
fsid = $FSID
mon_host = v2:127.0.0.1:$CEPH_MON_PORT
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
osd_objectstore = memstore
memstore_device_bytes = ${REDOVAULT_S3_CEPH_MEMSTORE_BYTES:-2147483648}
run_dir = $D/run
admin_socket = $D/run/\$name.asok
pid_file = $D/run/\$name.pid
log_file = $D/log/\$name.log
mon_data = $D/mon/\$cluster-\$id
osd_data = $D/osd/\$cluster-\$id
keyring = $D/keyring
crash_dir = $D/crash
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$CEPH_HTTP_PORT ssl_endpoint=127.0.0.1:$CEPH_HTTPS_PORT${ALSO_LISTEN:+ ssl_endpoint=$ALSO_LISTEN:$CEPH_HTTPS_PORT} ssl_certificate=$STATE/tls/server.crt ssl_private_key=$STATE/tls/server.key
rgw_data = $D/rgw
EOF
  C=(-c "$D/ceph.conf")
  K="$D/keyring"
  t0=$(now)
  ceph-authtool --create-keyring "$K" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$K" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$K" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' >/dev/null
  ceph-authtool "$K" --gen-key -n client.rgw.a --cap mon 'allow rw' --cap osd 'allow rwx' >/dev/null
  monmaptool --create --clobber --fsid "$FSID" --addv a "[v2:127.0.0.1:$CEPH_MON_PORT]" "$D/monmap" >/dev/null
  ceph-mon "${C[@]}" --mkfs -i a --monmap "$D/monmap" --keyring "$K" >>"$D/log/setup.log" 2>&1 \
    || { show_log "$D/log/setup.log" "$D/log/mon.a.log"; die "ceph-mon --mkfs failed"; }
  ceph-mon "${C[@]}" -i a >>"$D/log/setup.log" 2>&1 9>&- \
    || { show_log "$D/log/setup.log" "$D/log/mon.a.log"; die "ceph-mon failed to start"; }
  timeout 60 ceph "${C[@]}" --connect-timeout 30 osd create >/dev/null 2>>"$D/log/setup.log" \
    || { show_log "$D/log/setup.log" "$D/log/mon.a.log"; die "the Ceph monitor did not answer (ceph osd create)"; }
  ceph-osd "${C[@]}" -i 0 --mkfs >>"$D/log/setup.log" 2>&1 \
    || { show_log "$D/log/setup.log" "$D/log/osd.0.log"; die "ceph-osd --mkfs failed"; }
  ceph-osd "${C[@]}" -i 0 >>"$D/log/setup.log" 2>&1 9>&- \
    || { show_log "$D/log/setup.log" "$D/log/osd.0.log"; die "ceph-osd failed to start"; }
  radosgw "${C[@]}" -n client.rgw.a >>"$D/log/setup.log" 2>&1 9>&- \
    || { show_log "$D/log/setup.log" "$D/log/client.rgw.a.log"; die "radosgw failed to start"; }
  wait_https "radosgw" "$D/log/setup.log" "$D/log/client.rgw.a.log" "$D/log/osd.0.log" "$D/log/mon.a.log"
  timeout 60 radosgw-admin "${C[@]}" user create --uid=test --display-name=test \
    --access-key="$ACCESS_KEY" --secret="$SECRET_KEY" >/dev/null 2>>"$D/log/setup.log" \
    || { show_log "$D/log/setup.log" "$D/log/client.rgw.a.log"; die "radosgw-admin user create failed"; }
  local u uid key secret
  for u in "$DBHOST_USER:$DBHOST_ACCESS_KEY:$DBHOST_SECRET_KEY" "$VERIFIER_USER:$VERIFIER_ACCESS_KEY:$VERIFIER_SECRET_KEY" \
    "$COLLECTOR_USER:$COLLECTOR_ACCESS_KEY:$COLLECTOR_SECRET_KEY"; do
    IFS=: read -r uid key secret <<<"$u"
    timeout 60 radosgw-admin "${C[@]}" user create --uid="$uid" --display-name="$uid" \
      --access-key="$key" --secret="$secret" >/dev/null 2>>"$D/log/setup.log" \
      || { show_log "$D/log/setup.log" "$D/log/client.rgw.a.log"; die "radosgw-admin user create $uid failed"; }
  done
  log "Ceph mon, osd and radosgw ready in $(elapsed "$t0")s"
}

# ---------------------------------------------------------------------------------------------------------
# LocalStack (localstack-core from PyPI, run on the host, S3 only; recipe of docs/s3-object-lock.md §3.3).

find_python313() {
  local c cands=()
  [ -n "${REDOVAULT_PYTHON:-}" ] && cands+=("$REDOVAULT_PYTHON")
  cands+=(python3.13 python3.14 python3)
  for c in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[3-9]*/bin/python3 /root/.pyenv/versions/3.1[3-9]*/bin/python3 \
    /usr/local/bin/python3.1[3-9] /usr/bin/python3.1[3-9]; do
    [ -x "$c" ] && cands+=("$c")
  done
  for c in "${cands[@]}"; do
    # `command -v` is not enough: a pyenv shim exists on PATH even when it cannot run that version.
    if "$c" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 13) else 1)' >/dev/null 2>&1; then
      "$c" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  return 1
}

localstack_install() {
  VENV="$CACHE/venv-localstack"
  local stamp="$VENV/.installed-localstack-core-$LOCALSTACK_VERSION"
  [ -f "$stamp" ] && [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import localstack' 2>/dev/null && return 0
  local py t0
  py=$(find_python313) || die "LocalStack (localstack-core $LOCALSTACK_VERSION) needs Python >= 3.13, and none was found
  (tried \$REDOVAULT_PYTHON, python3.13, python3.14, python3 on PATH, \$PYENV_ROOT/versions/3.13*/bin/python3,
  /usr/local/bin/python3.13). Install one (for example \`pyenv install 3.13\`) and/or set REDOVAULT_PYTHON=/path/to/python3.13."
  need_root "installing LocalStack into $VENV"
  log "installing localstack-core $LOCALSTACK_VERSION into $VENV with $py"
  t0=$(now)
  mkdir -p "$CACHE"
  rm -rf -- "$VENV"
  "$py" -m venv "$VENV" || die "$py -m venv $VENV failed"
  "$VENV/bin/pip" install -q --disable-pip-version-check "localstack-core[base-runtime]==$LOCALSTACK_VERSION" 'cbor2<6' >&2 \
    || die "pip install of localstack-core failed (see above)"
  "$VENV/bin/python" -c 'import localstack' || die "localstack does not import in $VENV"
  touch "$stamp"
  log "LocalStack installed in $(elapsed "$t0")s"
}

localstack_pid() {
  local pid
  pid=$(cat "$STATE/localstack/localstack.pid" 2>/dev/null || true)
  pid_matches "$pid" "localstack.runtime.main" && echo "$pid"
}

localstack_up() {
  localstack_install
  local D="$STATE/localstack" t0 pid
  mkdir -p "$D"/{tmp,volume,cache,s3-storage}
  t0=$(now)
  # cwd is the state directory; setsid gives it its own process group, so `down` can stop it and its children.
  (
    exec 9>&-
    cd "$D"
    export GATEWAY_SERVER=hypercorn GATEWAY_LISTEN="127.0.0.1:$LOCALSTACK_PORT" SERVICES=s3 DNS_ADDRESS=0 \
      DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 S3_SKIP_SIGNATURE_VALIDATION=0 \
      CUSTOM_SSL_CERT_PATH="$STATE/tls/server-bundle.pem" LOCALSTACK_HOST="127.0.0.1:$LOCALSTACK_PORT" \
      PERSISTENCE=0 OVERRIDE_IN_DOCKER=0 TMPDIR="$D/tmp" FILESYSTEM_ROOT="$D/fs" LOCALSTACK_VOLUME_DIR="$D/volume" CONFIG_DIR="$D/config" \
      XDG_CACHE_HOME="$D/cache" LS_LOG=info
    # The S3 provider keeps its bucket directories in a hard-coded /tmp/localstack-s3-storage: point it into
    # the state directory instead, then run the normal entry point (localstack.runtime.main).
    exec setsid "$VENV/bin/python" -c 'import runpy, sys
import localstack.services.s3.provider as p
p.DEFAULT_S3_TMP_DIR = sys.argv.pop(1)
runpy.run_module("localstack.runtime.main", run_name="__main__", alter_sys=True)' "$D/s3-storage" \
      </dev/null >"$D/localstack.log" 2>&1
  ) &
  pid=$!
  echo "$pid" > "$D/localstack.pid"
  sleep 0.2
  kill -0 "$pid" 2>/dev/null || { show_log "$D/localstack.log"; die "LocalStack exited at once"; }
  wait_https "LocalStack" "$D/localstack.log"
  # The gateway answers before the S3 provider is loaded: wait for a signed ListBuckets to succeed.
  local deadline=$(($(date +%s) + READY_TIMEOUT))
  while :; do
    s3 GET /
    [ "$S3_STATUS" = 200 ] && break
    [ "$(date +%s)" -lt "$deadline" ] || { show_log "$D/localstack.log"; die "LocalStack S3 not ready: $S3_STATUS $S3_BODY"; }
    sleep 0.3
  done
  log "LocalStack ready in $(elapsed "$t0")s"
}

# ---------------------------------------------------------------------------------------------------------

running_pids() {
  case "$KIND" in
    ceph) ceph_pids ;;
    localstack) localstack_pid || true ;;
  esac
}

endpoint_for() {
  case "$KIND" in
    ceph) ENDPOINT="https://127.0.0.1:$CEPH_HTTPS_PORT" ;;
    localstack) ENDPOINT="https://127.0.0.1:$LOCALSTACK_PORT" ;;
  esac
}

# Already up, same kind, all daemons alive, buckets verified? Then reuse.
healthy() {
  [ -f "$STATE/$MARKER" ] && [ "$(cat "$STATE/kind" 2>/dev/null)" = "$KIND" ] && [ -f "$STATE/env.sh" ] || return 1
  [ "$(grep -c . <<<"$(running_pids)")" -eq "$([ "$KIND" = ceph ] && echo 3 || echo 1)" ] || return 1
  ( verify_buckets ) >/dev/null 2>&1
}

do_up() {
  local t0 pids bad
  t0=$(now)
  endpoint_for
  command -v curl >/dev/null || die "curl not found"
  command -v ss >/dev/null || die "ss not found (apt-get install -y iproute2)"
  if [ "$KIND" = ceph ]; then command -v jq >/dev/null || die "jq not found (apt-get install -y jq): it builds the drill bucket policy"; fi
  mkdir -p "$PARENT"
  exec 9>"$PARENT/.$(basename "$STATE").lock"
  flock -w 600 9 || die "another server.sh holds $PARENT/.$(basename "$STATE").lock"

  if healthy; then
    write_env
    log "$KIND already up in $STATE: reusing it ($ENDPOINT)"
    echo "$STATE/env.sh"
    return 0
  fi
  if [ -e "$STATE" ]; then
    log "cleaning stale state in $STATE"
    stop_all
  fi
  case "$KIND" in
    ceph) port_free "$CEPH_HTTPS_PORT"; port_free "$CEPH_HTTP_PORT"; port_free "$CEPH_MON_PORT" ;;
    localstack) port_free "$LOCALSTACK_PORT" ;;
  esac
  mkdir -p "$STATE"
  touch "$STATE/$MARKER"
  trap on_up_exit EXIT
  echo "$KIND" > "$STATE/kind"
  REDOVAULT_TLS_ALSO_IP="$ALSO_LISTEN" "$SCRIPT_DIR/tls.sh" "$STATE/tls" >&2

  case "$KIND" in
    ceph) ceph_up ;;
    localstack) localstack_up ;;
  esac
  create_buckets
  if [ "$KIND" = ceph ]; then create_drill_bucket; fi
  verify_buckets

  mapfile -t pids < <(running_pids)
  if [ "$KIND" = localstack ]; then
    # include children of its process group
    mapfile -t pids < <(ps -o pid= -g "${pids[0]}" | tr -d ' ')
  fi
  log "listening sockets (ss -ltunp) of pids ${pids[*]}:"
  listening_of "${pids[@]}" >&2
  bad=$(check_loopback "${pids[@]}")
  [ -z "$bad" ] || die "some sockets are not bound to 127.0.0.1:
$bad"
  log "all sockets bound to 127.0.0.1${ALSO_LISTEN:+ or $ALSO_LISTEN}"
  write_env
  UP_DONE=1
  log "$KIND up at $ENDPOINT in $(elapsed "$t0")s; source $STATE/env.sh"
  echo "$STATE/env.sh"
}

do_down() {
  [ -e "$STATE" ] || { log "nothing to stop in $STATE"; return 0; }
  mkdir -p "$PARENT"
  exec 9>"$PARENT/.$(basename "$STATE").lock"
  flock -w 600 9 || die "another server.sh holds $PARENT/.$(basename "$STATE").lock"
  stop_all
  log "stopped; $STATE removed"
}

case "$ACTION" in
  up) do_up ;;
  down) do_down ;;
  env)
    [ -f "$STATE/env.sh" ] || die "no $STATE/env.sh: run $0 up $KIND $STATE first"
    cat "$STATE/env.sh"
    ;;
esac
