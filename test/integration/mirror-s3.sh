#!/bin/bash
# The S3 mirror target against s3rver, which checks SigV4 signatures:
# every op, many steps in flight, checked through the target's listings
# and plain signed GETs; wrong keys, a missing bucket, nobody listening;
# s3rver stopped, killed under steps in flight and restarted; the rate of
# small puts.  $1 is mirror_s3_check.
. "$TESTDIR/lib.sh"
. "$TESTDIR/s3rver.sh"
CHECK=${1:?usage: mirror-s3.sh MIRROR_S3_CHECK}
BUCKET=cachefs-test
cfs_setup
s3rver_start "$BUCKET"

"$CHECK" ops "$S3_ENDPOINT" "$BUCKET" "$CFS_TMP" || cfs_fail "mirror_s3_check ops"

# --- an outage: steps sent to a stopped s3rver, which is then killed -------
# expect_from WORD -- the next line mirror_s3_check prints is WORD
expect_from() {
	local line
	read -r -t "$CFS_TIMEOUT" line <&"${OUTAGE[0]}" ||
		cfs_fail "mirror_s3_check outage: no '$1'"
	[ "$line" = "$1" ] || cfs_fail "mirror_s3_check outage: '$line', not '$1'"
}
coproc OUTAGE {
	{ "$CHECK" outage "$S3_ENDPOINT" "$BUCKET" "$CFS_TMP" 2>&1; echo "exit $?"; } |
		tee "$CFS_TMP/outage.log" |
		grep --line-buffered -E '^(ready|inflight|down)$'
}
outage_pid=$OUTAGE_PID
expect_from ready
kill -STOP "${CFS_SERVERS[s3rver]}"
echo stopped >&"${OUTAGE[1]}"
expect_from inflight
s3rver_stop KILL
expect_from down
s3rver_start "$BUCKET" "$S3_PORT"
echo restarted >&"${OUTAGE[1]}"
wait "$outage_pid"
grep -q '^exit 0$' "$CFS_TMP/outage.log" || {
	cat "$CFS_TMP/outage.log" >&2
	cfs_fail "mirror_s3_check outage"
}
grep 'steps failed' "$CFS_TMP/outage.log"

# --- the rate of small puts ------------------------------------------------
"$CHECK" bench "$S3_ENDPOINT" "$BUCKET" "$CFS_TMP" "${S3_BENCH_PUTS:-300}" ||
	cfs_fail "mirror_s3_check bench"
s3rver_stop
echo "mirror-s3: ok"
