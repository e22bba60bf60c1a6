#!/usr/bin/env bash
# usage: deploy/s3/smoke.sh STATE_DIR
#
# Tries WORM by hand against a server started with `server.sh up KIND STATE_DIR`, using only curl's SigV4:
#   - a COMPLIANCE object in rv-lock whose versioned DELETE must be refused (403),
#   - an object in rv-lock-default that gets the bucket's default retention and cannot be deleted either,
# and then reports (without failing) how the server treats: If-None-Match: * on PUT, a wrong Content-MD5,
# a wrong x-amz-checksum-sha256, lock headers on a bucket without Object Lock, a wrong secret key.
# Exit status is non-zero only if a WORM guarantee is broken. Every object written here stays locked until the
# server is stopped with `server.sh down` (the data is in memory), so keys are unique per run.
set -euo pipefail

die() { echo "smoke.sh: FAIL: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 STATE_DIR"
[ -f "$1/env.sh" ] || die "no $1/env.sh: start a server first with server.sh up ceph|localstack $1"
# shellcheck source=/dev/null
. "$1/env.sh"

EP=$REDOVAULT_TEST_S3_ENDPOINT
RUN=smoke/$(date -u +%Y%m%dT%H%M%S)-$$
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# s3 METHOD PATH [curl args...] -> ST (status), BODY, HDRS.  Query strings must be sorted and written `k=v`.
s3() {
  local method=$1 path=$2 verb=(-X "$1")
  shift 2
  [ "$method" = HEAD ] && verb=(-I)
  ST=$(curl -sS --max-time 60 --cacert "$REDOVAULT_TEST_S3_CA" \
    --aws-sigv4 "aws:amz:$REDOVAULT_TEST_S3_REGION:s3" --user "${S3_USER:-$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY}" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "${verb[@]}" -o "$TMP/body" -D "$TMP/hdrs" -w '%{http_code}' \
    "$@" "$EP$path" 2>&1) || ST="curl-failed($ST)"
  BODY=$(cat "$TMP/body" 2>/dev/null || true)
  HDRS=$(tr -d '\r' < "$TMP/hdrs" 2>/dev/null || true)
}
hdr() { awk -v h="$(tr '[:upper:]' '[:lower:]' <<<"$1"):" 'tolower($1) == h { print $2 }' <<<"$HDRS" | tail -n 1; }
code() { sed -n 's:.*<Code>\(.*\)</Code>.*:\1:p' <<<"$BODY" | head -n 1; }
report() { printf '  %-62s %s\n' "$1" "$2"; }

printf 'payload %s\n' "$RUN" > "$TMP/data"
printf 'other bytes %s\n' "$RUN" > "$TMP/other"
MD5=$(openssl dgst -md5 -binary "$TMP/data" | base64)
SHA=$(openssl dgst -sha256 -binary "$TMP/data" | base64)
BAD_MD5=$(openssl dgst -md5 -binary "$TMP/other" | base64)
BAD_SHA=$(openssl dgst -sha256 -binary "$TMP/other" | base64)
UNTIL=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%S.000Z)

echo "smoke.sh: $REDOVAULT_TEST_S3_KIND at $EP, keys under $RUN/"
echo "WORM checks (must pass):"

s3 PUT "/rv-lock/$RUN/locked" -T "$TMP/data" -H "Content-MD5: $MD5" \
  -H "x-amz-object-lock-mode: COMPLIANCE" -H "x-amz-object-lock-retain-until-date: $UNTIL"
[ "$ST" = 200 ] || die "PUT with COMPLIANCE lock: $ST $BODY"
VID=$(hdr x-amz-version-id)
[ -n "$VID" ] || die "PUT with COMPLIANCE lock returned no x-amz-version-id"
report "PUT rv-lock COMPLIANCE until $UNTIL" "$ST version $VID"

s3 HEAD "/rv-lock/$RUN/locked?versionId=$VID"
[ "$(hdr x-amz-object-lock-mode)" = COMPLIANCE ] || die "HEAD shows no COMPLIANCE lock: $HDRS"
report "HEAD lock mode / retain-until" "$(hdr x-amz-object-lock-mode) $(hdr x-amz-object-lock-retain-until-date)"

s3 GET "/rv-lock/$RUN/locked?retention=&versionId=$VID"
if [ "$ST" != 200 ] || ! grep -q '<Mode>COMPLIANCE</Mode>' <<<"$BODY"; then die "GetObjectRetention: $ST $BODY"; fi
report "GET ?retention" "$ST COMPLIANCE"

s3 DELETE "/rv-lock/$RUN/locked?versionId=$VID"
[ "$ST" = 403 ] || die "versioned DELETE of a COMPLIANCE object was not refused: $ST $BODY"
report "DELETE ?versionId (COMPLIANCE) -> refused" "$ST $(code)"

s3 DELETE "/rv-lock/$RUN/locked?versionId=$VID" -H "x-amz-bypass-governance-retention: true"
[ "$ST" = 403 ] || die "versioned DELETE with governance bypass of a COMPLIANCE object was not refused: $ST $BODY"
report "DELETE ?versionId + bypass-governance -> refused" "$ST $(code)"

s3 PUT "/rv-lock/$RUN/locked?retention=&versionId=$VID" -H "Content-Type: application/xml" \
  --data-binary "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>COMPLIANCE</Mode><RetainUntilDate>$(date -u -d '+5 min' +%Y-%m-%dT%H:%M:%S.000Z)</RetainUntilDate></Retention>"
[ "$ST" = 403 ] || [ "$ST" = 400 ] || die "shortening COMPLIANCE retention was not refused: $ST $BODY"
report "PUT ?retention shorter -> refused" "$ST $(code)"

s3 PUT "/rv-lock-default/$RUN/default" -T "$TMP/data" -H "Content-MD5: $MD5"
[ "$ST" = 200 ] || die "PUT to rv-lock-default: $ST $BODY"
DVID=$(hdr x-amz-version-id)
s3 HEAD "/rv-lock-default/$RUN/default?versionId=$DVID"
[ "$(hdr x-amz-object-lock-mode)" = COMPLIANCE ] || die "rv-lock-default object has no default COMPLIANCE retention: $HDRS"
report "PUT rv-lock-default (no headers) -> default retention" "$(hdr x-amz-object-lock-mode) $(hdr x-amz-object-lock-retain-until-date)"
s3 DELETE "/rv-lock-default/$RUN/default?versionId=$DVID"
[ "$ST" = 403 ] || die "versioned DELETE of a default-retention object was not refused: $ST $BODY"
report "DELETE ?versionId (default retention) -> refused" "$ST $(code)"

# Multipart upload of one part (curl only): CreateMultipartUpload, UploadPart, CompleteMultipartUpload.
# Prints the version id of the completed object. Extra args go to CreateMultipartUpload.
multipart() {
  local path=$1 upload etag
  shift
  s3 POST "$path?uploads=" -H "Content-Length: 0" "$@"
  [ "$ST" = 200 ] || die "CreateMultipartUpload $path: $ST $BODY"
  upload=$(sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p' <<<"$BODY")
  s3 PUT "$path?partNumber=1&uploadId=$upload" -T "$TMP/data"
  [ "$ST" = 200 ] || die "UploadPart $path: $ST $BODY"
  etag=$(hdr etag)
  s3 POST "$path?uploadId=$upload" -H "Content-Type: application/xml" \
    --data-binary "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>$etag</ETag></Part></CompleteMultipartUpload>"
  [ "$ST" = 200 ] || die "CompleteMultipartUpload $path: $ST $BODY"
  hdr x-amz-version-id
}

MVID=$(multipart "/rv-lock-default/$RUN/multipart")
s3 HEAD "/rv-lock-default/$RUN/multipart?versionId=$MVID"
[ "$(hdr x-amz-object-lock-mode)" = COMPLIANCE ] || die "multipart object in rv-lock-default has no default retention: $HDRS"
s3 DELETE "/rv-lock-default/$RUN/multipart?versionId=$MVID"
[ "$ST" = 403 ] || die "versioned DELETE of a multipart default-retention object was not refused: $ST $BODY"
report "multipart into rv-lock-default -> default retention, DELETE" "COMPLIANCE, $ST $(code)"

echo "Server behaviour (reported, AWS in brackets):"
MVID=$(multipart "/rv-lock/$RUN/multipart-lock" \
  -H "x-amz-object-lock-mode: COMPLIANCE" -H "x-amz-object-lock-retain-until-date: $UNTIL")
s3 HEAD "/rv-lock/$RUN/multipart-lock?versionId=$MVID"
mode=$(hdr x-amz-object-lock-mode)
s3 DELETE "/rv-lock/$RUN/multipart-lock?versionId=$MVID"
report "multipart with lock headers on rv-lock: mode, DELETE [COMPLIANCE, 403]" "${mode:-none}, $ST $(code)"

s3 PUT "/rv-lock/$RUN/past" -T "$TMP/data" -H "x-amz-object-lock-mode: COMPLIANCE" \
  -H "x-amz-object-lock-retain-until-date: $(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%S.000Z)"
report "retain-until date in the past [400 InvalidArgument]" "$ST $(code)"

for b in rv-lock rv-nolock; do
  s3 PUT "/$b/$RUN/inm" -T "$TMP/data" -H "If-None-Match: *"
  first=$ST
  s3 PUT "/$b/$RUN/inm" -T "$TMP/other" -H "If-None-Match: *"
  report "If-None-Match: * PUT twice on $b [200, 412]" "$first, $ST $(code)"
done

s3 PUT "/rv-nolock/$RUN/md5-bad" -T "$TMP/data" -H "Content-MD5: $BAD_MD5"
report "wrong Content-MD5 [400 BadDigest]" "$ST $(code)"
s3 PUT "/rv-nolock/$RUN/md5-good" -T "$TMP/data" -H "Content-MD5: $MD5"
report "right Content-MD5 [200]" "$ST"

s3 PUT "/rv-nolock/$RUN/sha-bad" -T "$TMP/data" -H "x-amz-checksum-sha256: $BAD_SHA"
report "wrong x-amz-checksum-sha256 [400 BadDigest]" "$ST $(code)"
s3 PUT "/rv-nolock/$RUN/sha-good" -T "$TMP/data" -H "x-amz-checksum-sha256: $SHA"
report "right x-amz-checksum-sha256 [200, echoed]" "$ST echoed=$(hdr x-amz-checksum-sha256)"
s3 HEAD "/rv-nolock/$RUN/sha-good" -H "x-amz-checksum-mode: ENABLED"
report "HEAD x-amz-checksum-mode: ENABLED [stored value]" "$ST sha256=$(hdr x-amz-checksum-sha256)"

s3 PUT "/rv-nolock/$RUN/lock-on-nolock" -T "$TMP/data" \
  -H "x-amz-object-lock-mode: COMPLIANCE" -H "x-amz-object-lock-retain-until-date: $UNTIL"
report "lock headers on bucket without Object Lock [400 InvalidRequest]" "$ST $(code)"

S3_USER="$AWS_ACCESS_KEY_ID:wrong-secret" s3 PUT "/rv-nolock/$RUN/badsig" -T "$TMP/data"
report "wrong secret key [403 SignatureDoesNotMatch]" "$ST $(code)"

echo "smoke.sh: WORM checks passed on $REDOVAULT_TEST_S3_KIND"
