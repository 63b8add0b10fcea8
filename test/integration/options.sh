#!/bin/bash
# Bad command lines fail clearly and mount nothing; every option in the
# option table is documented in cachefs(8).
. "$TESTDIR/lib.sh"
cfs_setup
cfs_dirs 1
touch "$CFS_TMP/plainfile"

# expect_fail MESSAGE ARGS... : cachefs ARGS must exit non-zero, print
# MESSAGE on stderr and leave nothing mounted.
expect_fail() {
	local msg=$1 rc=0
	shift
	timeout 10 "$CACHEFS" "$@" >"$CFS_TMP/out" 2>"$CFS_TMP/err" || rc=$?
	[ "$rc" -ne 0 ] || cfs_fail "cachefs $* succeeded"
	[ "$rc" -ne 124 ] || cfs_fail "cachefs $* hung"
	grep -qF -- "$msg" "$CFS_TMP/err" ||
		{ cat "$CFS_TMP/err"; cfs_fail "cachefs $*: no '$msg' on stderr"; }
	! cfs_is_mounted "$CFS_MNT" || cfs_fail "cachefs $* mounted anyway"
}

B=$CFS_BACKEND M=$CFS_MNT
expect_fail "unknown option 'bogus'" "$B" "$M" -o bogus
expect_fail "unknown option 'bogus'" "$B" "$M" -o allow_other,bogus=1
expect_fail "option 'attr_timeout': 'soon' is not a duration" "$B" "$M" -o attr_timeout=soon
expect_fail "option 'entry_timeout' needs a value" "$B" "$M" -o entry_timeout
expect_fail "option 'threads': '-3' is not a non-negative integer" "$B" "$M" -o threads=-3
expect_fail "option 'splice': 'perhaps' is not on or off" "$B" "$M" -o splice=perhaps
expect_fail "option 'log_level': 'loud' is not one of" "$B" "$M" -o log_level=loud
expect_fail "unknown flag '--frobnicate'" "$B" "$M" --frobnicate
expect_fail "-o needs options" "$B" "$M" -o
expect_fail "no backend directory given"
expect_fail "no mount point given" "$B"
expect_fail "unexpected argument" "$B" "$M" extra
expect_fail "cannot open backend directory '$CFS_TMP/nonexistent'" "$CFS_TMP/nonexistent" "$M"
expect_fail "cannot open backend directory '$CFS_TMP/plainfile'" "$CFS_TMP/plainfile" "$M"
expect_fail "$CFS_TMP/nomnt" "$B" "$CFS_TMP/nomnt"
expect_fail "ctl_group: no group 'nosuchgroup'" "$B" "$M" -o ctl_group=nosuchgroup
expect_fail "listen= and peers= need peer_secret_file=" "$B" "$M" -o listen=0
echo short >"$CFS_TMP/short"
expect_fail "a secret of at least 8 bytes" "$B" "$M" -o "peers=127.0.0.1:9,peer_secret_file=$CFS_TMP/short"
expect_fail "metrics=localhost:notaport" "$B" "$M" -o metrics=localhost:notaport
expect_fail "cannot open log file $CFS_TMP/nodir/log" "$B" "$M" -o "log_file=$CFS_TMP/nodir/log"
expect_fail "cannot open trace file $CFS_TMP/nodir/trace" "$B" "$M" -o "trace_file=$CFS_TMP/nodir/trace"
expect_fail "cannot bind control socket $CFS_TMP/nodir/sock" "$B" "$M" -o "ctl_socket=$CFS_TMP/nodir/sock"

# Options accepted from fstab and mount(8) that mean nothing to cachefs.
cfs_mount "$B" "$M" "defaults,_netdev,nofail,x-systemd.automount,noatime,attr_timeout=2s"
cfs_umount "$M"

# noatime reaches the backend: reading through the mount leaves the
# backend's access time alone (and without noatime, it does not).
echo data >"$B/atime"
touch -a -d 2001-01-01 "$B/atime"
cfs_mount "$B" "$M" noatime
cat "$M/atime" >/dev/null
cat "$M/." 2>/dev/null; ls "$M" >/dev/null
cfs_umount "$M"
[ "$(stat -c %X "$B/atime")" = "$(date -d 2001-01-01 +%s)" ] ||
	cfs_fail "a read through a noatime mount changed the backend atime"
cfs_mount "$B" "$M"
cat "$M/atime" >/dev/null
cfs_umount "$M"
[ "$(stat -c %X "$B/atime")" != "$(date -d 2001-01-01 +%s)" ] ||
	cfs_fail "control: a read without noatime did not update the atime"

# Every option in the table (as --help prints it) is in the man page.
man=$SRCDIR/man/cachefs.8
[ -f "$man" ] || cfs_fail "no man page at $man"
opts=$("$CACHEFS" --help | sed -n 's/^    -o \([a-z_]*\)=.*/\1/p')
[ -n "$opts" ] || cfs_fail "--help lists no options"
n=0
for o in $opts; do
	grep -qE "^\.BI? ${o}(=| |\$)" "$man" ||
		cfs_fail "option $o is missing from cachefs.8"
	n=$((n + 1))
done
# ... and the options changeable at run time say so there.
for o in $("$CACHEFS" --help | sed -n 's/^    -o \([a-z_]*\)=.*(changeable at run time)$/\1/p'); do
	awk -v o="$o" '
		$0 ~ "^\\.BI " o "=" { p = 1; next }
		p && /^\.(TP|SS|SH)/ { exit }
		p && /Changeable at run time/ { f = 1 }
		END { exit !f }' "$man" ||
		cfs_fail "cachefs.8 does not say that $o is changeable at run time"
done
echo "options: $n options documented; bad input rejected"
