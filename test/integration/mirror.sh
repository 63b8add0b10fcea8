#!/bin/bash
# Mirrors end to end: a mount replaying its journal to OpenSSH's sshd and
# to an S3 server (s3rver), both on loopback.  A tree that was there
# before (resync), every kind of change, a directory renamed twice, an
# SFTP outage and an S3 restart during a write storm, kill -9 of the
# daemon mid-replay, a change made behind cachefs on a mirror, pause and
# resume, a wrong host key and a wrong S3 secret: after each, both
# mirrors equal the backend (content, mode, mtime), as
# "cachefsctl mirror sync" promises.
. "$TESTDIR/lib.sh"
. "$TESTDIR/sshd.sh"
. "$TESTDIR/s3rver.sh"
: "${CACHEFSCTL:?CACHEFSCTL must point at the cachefsctl binary}"
cfs_setup
cfs_dirs 1
B=$CFS_BACKEND M=$(realpath "$CFS_MNT") S=$CFS_TMP/state
PY=/usr/bin/python3
CTL() { "$CACHEFSCTL" -m "$M" "$@"; }
OUTAGE=${MIRROR_OUTAGE_SECONDS:-30}

sshd_setup
sshd_start
s3rver_start mirror
cat >"$CFS_TMP/credentials" <<EOF
[default]
aws_access_key_id = $S3_KEY
aws_secret_access_key = $S3_SECRET
EOF
SFTP_ROOT=$CFS_TMP/sftp-root
SFTP_URL="sftp://root@127.0.0.1:$SSHD_PORT$SFTP_ROOT?identity=$SSHD_ID&known_hosts=$SSHD_KNOWN"
# copy_max: files over 100 kB are not copied by the server but sent again
S3_URL="s3://mirror/site?endpoint=$S3_ENDPOINT&region=us-east-1&credentials=$CFS_TMP/credentials&copy_max=100000"
ALERTS=$CFS_TMP/alerts
OPTS="state_dir=$S,mirror=ssh=$SFTP_URL,mirror=s3=$S3_URL,mirror_alert_after=1s"
OPTS="$OPTS,mirror_alert="'echo "$CACHEFS_MIRROR: $CACHEFS_MIRROR_ERROR"'" >>$ALERTS"

# Both mirrors have every change made so far, and equal the backend.
converged() {
	local m
	for m in ssh s3; do
		CTL mirror sync "$m" --timeout "${1:-60}" ||
			{ CTL mirror status >&2; cfs_fail "mirror $m did not sync"; }
	done
	$PY "$TESTDIR/mirror_compare.py" "$B" dir "$SFTP_ROOT" >/dev/null ||
		cfs_fail "the SFTP mirror differs from the backend"
	$PY "$TESTDIR/mirror_compare.py" "$B" s3 "$S3_ENDPOINT" mirror site \
		"$S3_KEY" "$S3_SECRET" >/dev/null ||
		cfs_fail "the S3 mirror differs from the backend"
}

mirror_field() { # mirror_field NAME FIELD
	CTL mirror status "$1" --json | $PY -c '
import json, sys
print(json.load(sys.stdin)["mirrors"][0].get(sys.argv[1]))' "$2"
}

# --- a tree that was there before: new mirrors start with a resync --------
mkdir -p "$B/pre/deep/er" && echo pre >"$B/pre/file"
printf 'x%.0s' $(seq 3000) >"$B/pre/deep/er/big"
ln -s file "$B/pre/link"
chmod 600 "$B/pre/file"
touch -d '2001-02-03 04:05:06' "$B/pre/deep/er/big" "$B/pre/deep"
cfs_mount "$B" "$M" "$OPTS"
converged
echo "ok: new mirrors get the tree that was there (resync)"

# --- every kind of change, and a tree renamed twice in a row ---------------
# SFTP replays as they happen; S3, paused, all of them afterwards, when
# what was created has moved on
CTL mirror pause s3 >/dev/null
$PY "$TESTDIR/journal_ops.py" "$M" >/dev/null || cfs_fail "ops failed"
mkdir -p "$M/t/a/b"
for k in 1 2 3; do echo "$k" >"$M/t/a/b/f$k"; done
mv "$M/t" "$M/t2"
mv "$M/t2" "$M/t3"
touch -d '2010-01-01 00:00:00' "$M/t3/a/b/f1"
chmod 751 "$M/t3/a"
echo appended >>"$M/pre/file"
rm "$M/pre/link"
CTL mirror resume s3 >/dev/null
converged
[ -e "$SFTP_ROOT/t3/a/b/f3" ] && [ ! -e "$SFTP_ROOT/t" ] && [ ! -e "$SFTP_ROOT/t2" ] ||
	cfs_fail "the tree renamed twice is not in place"
for m in ssh s3; do # a lagging replay skips what moved on: no conflict
	[ "$(mirror_field $m conflicts)" = 0 ] ||
		cfs_fail "$m counted $(mirror_field $m conflicts) conflicts for changes made through the mount"
done
echo "ok: every kind of change reached both mirrors"

# --- renames and links of files over what the S3 server copies -------------
head -c 200000 /dev/urandom >"$M/huge"
mkdir -p "$M/hd/sub" && head -c 150000 /dev/urandom >"$M/hd/sub/h"
echo small >"$M/hd/s"
converged
conflicts=$(mirror_field s3 conflicts)
mv "$M/huge" "$M/huge2"
ln "$M/huge2" "$M/huge3"
mv "$M/hd" "$M/hd2"
converged
[ "$(mirror_field s3 conflicts)" = "$conflicts" ] ||
	cfs_fail "conflicts counted for big renames: $conflicts, then $(mirror_field s3 conflicts)"
echo "ok: files over the S3 copy limit renamed and linked, alone and in a tree"

# --- an SFTP outage and an S3 restart during a write storm ------------------
# storm TAG SECONDS -- create, write and rename 50 files a second
storm() {
	$PY - "$M/storm-$1" "$2" <<'EOF'
import os, sys, time
d, t0 = sys.argv[1], time.time()
end = t0 + float(sys.argv[2])
os.makedirs(d, exist_ok=True)
k = 0
while time.time() < end:
    with open(f"{d}/f{k}", "w") as f:
        f.write(f"{k}\n" * (k % 50))
    if k % 7 == 0:
        os.rename(f"{d}/f{k}", f"{d}/r{k}")
    k += 1
    time.sleep(max(0, t0 + k / 50 - time.time()))
print(k)
EOF
}
sshd_kill
storm outage 5 >/dev/null &
stormer=$!
s3rver_stop KILL
s3rver_start mirror "$S3_PORT"
wait "$stormer"
cfs_wait_for sh -c "'$CACHEFSCTL' -m '$M' mirror status ssh | grep -q failing" ||
	cfs_fail "the SFTP mirror does not say it is failing"
mirror_field ssh error | grep -qiE "connect|reset|refused|closed" ||
	cfs_fail "no clear error: $(mirror_field ssh error)"
CTL status | grep -q degraded || cfs_fail "the mount is not degraded"
# the rest of the outage: writes go on, the journal keeps them
storm outage2 "$((OUTAGE > 5 ? OUTAGE - 5 : 1))" >/dev/null
sshd_start
CTL mirror retry ssh >/dev/null
converged 120
[ "$(mirror_field ssh retries)" -gt 0 ] || cfs_fail "no retries counted"
echo "ok: after an SFTP outage of ${OUTAGE}s and an S3 restart both converge"

# --- kill -9 of the daemon mid-replay ----------------------------------------
CTL mirror pause s3 >/dev/null
storm kill 4 >/dev/null
[ "$(mirror_field s3 lag_records)" -gt 100 ] || cfs_fail "no lag to kill in"
# the records behind take journal bytes: at least their header each
[ "$(mirror_field s3 lag_bytes)" -gt "$(($(mirror_field s3 lag_records) * 16))" ] ||
	cfs_fail "lag in bytes: $(mirror_field s3 lag_bytes) for $(mirror_field s3 lag_records) records"
CTL mirror resume s3 >/dev/null
cfs_wait_for sh -c "'$CACHEFSCTL' -m '$M' mirror status s3 --json | grep -q '\"files\": *[1-9]'" ||
	cfs_fail "s3 did not start replaying"
pid=${CFS_PIDS[$M]}
disown "$pid"
kill -9 "$pid"
cfs_wait_for sh -c "! kill -0 $pid 2>/dev/null" || cfs_fail "kill -9"
unset "CFS_PIDS[$M]"
fusermount3 -u -z "$M" 2>/dev/null || umount -l "$M"
cfs_mount "$B" "$M" "$OPTS"
converged 120
echo "ok: kill -9 mid-replay, restart: both converge"

# --- a change behind cachefs on a mirror: conflict, resync -----------------
rm "$SFTP_ROOT/pre/file"
mv "$M/pre/file" "$M/pre/file2"
cfs_wait_for sh -c "[ \$('$CACHEFSCTL' -m '$M' mirror status ssh --json | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"mirrors\"][0][\"conflicts\"])') -ge 1 ]" ||
	cfs_fail "the conflict was not counted"
echo stray >"$SFTP_ROOT/stray"
CTL mirror resync ssh --timeout 60 >/dev/null || cfs_fail "resync failed"
[ ! -e "$SFTP_ROOT/stray" ] || cfs_fail "resync left a file the backend lacks"
converged
echo "ok: a change behind cachefs is counted, and a resync repairs it"

# --- content changed behind cachefs, same size and mtime: --checksum -------
f=$SFTP_ROOT/pre/deep/er/big
t=$(stat -c %Y "$f")
printf y | dd of="$f" bs=1 seek=100 conv=notrunc status=none
touch -d "@$t" "$f"
$PY "$TESTDIR/mirror_compare.py" --tamper "$S3_ENDPOINT" mirror site/pre/deep/er/big \
	"$S3_KEY" "$S3_SECRET" || cfs_fail "could not change the S3 copy"
for m in ssh s3; do
	CTL mirror resync "$m" --timeout 60 >/dev/null || cfs_fail "resync $m failed"
done
$PY "$TESTDIR/mirror_compare.py" "$B" dir "$SFTP_ROOT" 2>/dev/null &&
	cfs_fail "a resync by size and mtime saw the changed content"
for m in ssh s3; do
	CTL mirror resync "$m" --checksum --timeout 60 >/dev/null ||
		cfs_fail "resync --checksum $m failed"
	rs=$(CTL mirror status "$m" --json | jq -c '.mirrors[0].resync')
	[ "$(jq .content_compared <<<"$rs")" -ge 3 ] &&
		[ "$(jq .uploaded <<<"$rs")" -eq 1 ] ||
		cfs_fail "resync --checksum of $m: $rs"
done
converged
echo "ok: content changed behind cachefs, same size and mtime: resync --checksum finds it"

# --- wrong host key, wrong S3 secret: a clear error -------------------------
sed "s/aws_secret_access_key = .*/aws_secret_access_key = wrong/" \
	"$CFS_TMP/credentials" >"$CFS_TMP/bad-credentials"
CTL mirror add badkey "sftp://root@127.0.0.1:$SSHD_PORT$CFS_TMP/bad?identity=$SSHD_ID&known_hosts=$SSHD_CHANGED" >/dev/null ||
	cfs_fail "mirror add badkey"
CTL mirror add badsecret "s3://mirror/bad?endpoint=$S3_ENDPOINT&region=us-east-1&credentials=$CFS_TMP/bad-credentials" >/dev/null ||
	cfs_fail "mirror add badsecret"
cfs_wait_for sh -c "'$CACHEFSCTL' -m '$M' mirror status badkey | grep -qi 'host key'" ||
	{ CTL mirror status badkey; cfs_fail "no clear host key error"; }
cfs_wait_for sh -c "'$CACHEFSCTL' -m '$M' mirror status badsecret | grep -qi 'signature\|credentials\|secret\|key'" ||
	{ CTL mirror status badsecret; cfs_fail "no clear S3 secret error"; }
cfs_wait_for grep -q "^badkey: .*host key" "$ALERTS" ||
	{ cat "$ALERTS"; cfs_fail "mirror_alert did not run for badkey"; }
CTL mirror add bad "ftp://example" 2>"$CFS_TMP/err" && cfs_fail "an ftp:// mirror"
grep -q "sftp:// or s3://" "$CFS_TMP/err" || cfs_fail "unclear: $(cat "$CFS_TMP/err")"
CTL mirror remove badkey >/dev/null && CTL mirror remove badsecret >/dev/null ||
	cfs_fail "mirror remove"
CTL mirror status badkey 2>/dev/null && cfs_fail "a removed mirror is still there"
echo "ok: a wrong host key and a wrong S3 secret say so in mirror status, and alert"

cfs_umount "$M"
# the mirrors' cursors held the journal; none is left behind for them
[ -e "$S/mirror.ssh.cursor" ] || cfs_fail "no cursor for ssh"
[ ! -e "$S/mirror.badkey.cursor" ] || cfs_fail "a removed mirror's cursor stayed"
echo "mirror: ok"
