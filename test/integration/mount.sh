#!/bin/bash
# Mount integration: mount -t fuse.cachefs through mount.fuse3, an fstab
# line, daemon mode, and clean shutdown on umount, SIGTERM and SIGINT.
#
# mount(8) runs helpers with a fixed PATH, so the test runs in a private
# mount namespace where the cachefs under test is bind-mounted into
# /usr/local/sbin; nothing on the host changes.
if [ -z "${CFS_IN_NS:-}" ]; then
	CFS_IN_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$TESTDIR/lib.sh"
cfs_setup
command -v mount.fuse3 >/dev/null || cfs_fail "mount.fuse3 (package fuse3) is missing"

bindir=$CFS_TMP/bin
mkdir -p "$bindir" /usr/local/sbin
cp "$CACHEFS" "$bindir/cachefs"
mount --bind "$bindir" /usr/local/sbin || cfs_fail "cannot bind-mount $bindir"
bindir=/usr/local/sbin

cfs_dirs 1
echo hello >"$CFS_BACKEND/hello"

# The oldest match: the look-ahead readers the daemon starts share its
# command line until they exec.
daemon_pid() { # the cachefs process serving $1
	pgrep -o -f "^$bindir/cachefs $CFS_BACKEND $1|^cachefs $CFS_BACKEND $1"
}

not_running() { # gone, or a zombie waiting for its reaper
	! kill -0 "$1" 2>/dev/null ||
		[ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# 1. mount -t fuse.cachefs, then umount.
mount -t fuse.cachefs "$CFS_BACKEND" "$CFS_MNT" -o allow_other,attr_timeout=5s ||
	cfs_fail "mount -t fuse.cachefs failed"
CFS_MOUNTS+=("$CFS_MNT")
cfs_is_mounted "$CFS_MNT" || cfs_fail "not mounted after mount -t"
[ "$(cat "$CFS_MNT/hello")" = hello ] || cfs_fail "cannot read through mount -t"
grep -q "^$CFS_BACKEND $CFS_MNT fuse.cachefs .*allow_other" /proc/mounts ||
	cfs_fail "/proc/mounts does not show the backend and allow_other"
# the journal is on, in its default place, named after the mount point
touch "$CFS_MNT/journaled"
state=/var/lib/cachefs/$(cfs_escape "$CFS_MNT")
ls "$state"/*.seg >/dev/null 2>&1 || cfs_fail "no journal in $state"
grep -qa "/journaled" "$state"/*.seg || cfs_fail "the change is not in $state"
# mount -o remount flips per-mount flags of the running mount.
mount -o remount,ro "$CFS_MNT" || cfs_fail "remount,ro failed"
! touch "$CFS_MNT/ro-test" 2>"$CFS_TMP/err" || cfs_fail "write allowed after remount,ro"
grep -q "Read-only file system" "$CFS_TMP/err" || cfs_fail "no EROFS after remount,ro"
mount -o remount,rw "$CFS_MNT" || cfs_fail "remount,rw failed"
touch "$CFS_MNT/rw-test" || cfs_fail "write refused after remount,rw"
[ "$(cat "$CFS_MNT/hello")" = hello ] || cfs_fail "mount broken by remounts"
pid=$(daemon_pid "$CFS_MNT")
[ -n "$pid" ] || cfs_fail "no daemon process found"
umount "$CFS_MNT" || cfs_fail "umount failed"
cfs_wait_for not_running "$pid" || cfs_fail "daemon still running after umount"
! cfs_is_mounted "$CFS_MNT" || cfs_fail "still mounted after umount"

# 2. An fstab line, then "mount MNT" (a private fstab via --fstab).
fstab=$CFS_TMP/fstab
echo "$CFS_BACKEND $CFS_MNT fuse.cachefs defaults,allow_other,_netdev 0 0" >"$fstab"
mount --fstab "$fstab" "$CFS_MNT" || cfs_fail "mount from fstab failed"
cfs_is_mounted "$CFS_MNT" || cfs_fail "not mounted from fstab"
echo written >"$CFS_MNT/new" || cfs_fail "cannot write through fstab mount"
[ "$(cat "$CFS_BACKEND/new")" = written ] || cfs_fail "write did not reach the backend"
pid=$(daemon_pid "$CFS_MNT")
fusermount3 -u "$CFS_MNT" || cfs_fail "fusermount3 -u failed"
cfs_wait_for not_running "$pid" || cfs_fail "daemon still running after fusermount3 -u"

# 3. A bad option through mount(8) fails and mounts nothing.
if mount -t fuse.cachefs "$CFS_BACKEND" "$CFS_MNT" -o no_such_opt 2>"$CFS_TMP/err"; then
	cfs_fail "mount accepted an unknown option"
fi
grep -q "unknown option 'no_such_opt'" "$CFS_TMP/err" ||
	{ cat "$CFS_TMP/err"; cfs_fail "no clear message for an unknown option"; }
! cfs_is_mounted "$CFS_MNT" || cfs_fail "mounted despite a bad option"

# 4. Daemon mode: SIGTERM unmounts and exits.
"$CACHEFS" "$CFS_BACKEND" "$CFS_MNT" || cfs_fail "daemon mode mount failed"
cfs_is_mounted "$CFS_MNT" || cfs_fail "daemon mode did not mount"
pid=$(pgrep -o -f "^$CACHEFS $CFS_BACKEND $CFS_MNT\$")
[ -n "$pid" ] || cfs_fail "no daemon process"
kill -TERM "$pid"
cfs_wait_for not_running "$pid" || cfs_fail "daemon ignored SIGTERM"
! cfs_is_mounted "$CFS_MNT" || cfs_fail "still mounted after SIGTERM"

# 5. Foreground: SIGINT unmounts and exits 0.
# (A background job of a script starts with SIGINT ignored; undo that.)
env --default-signal=INT "$CACHEFS" -f "$CFS_BACKEND" "$CFS_MNT" 2>"$CFS_TMP/fg.log" &
pid=$!
cfs_wait_for cfs_is_mounted "$CFS_MNT" || cfs_fail "foreground mount failed"
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$CFS_TMP/fg.log"; cfs_fail "exit status $rc after SIGINT"; }
cfs_check_log "$CFS_TMP/fg.log"
! cfs_is_mounted "$CFS_MNT" || cfs_fail "still mounted after SIGINT"

# 6. Mounting over the backend itself keeps serving the backend.
"$CACHEFS" "$CFS_BACKEND" "$CFS_BACKEND" || cfs_fail "mount over the backend failed"
CFS_MOUNTS+=("$CFS_BACKEND")
[ "$(cat "$CFS_BACKEND/hello")" = hello ] || cfs_fail "mount over the backend lost its files"
fusermount3 -u "$CFS_BACKEND" || cfs_fail "cannot unmount the overlay mount"

# 7. --help and --version.
# (into files: grep -q may exit before the help is written, and a
# SIGPIPE would fail the pipeline)
"$CACHEFS" --version >"$CFS_TMP/version" || cfs_fail "--version exit status"
grep -q "^cachefs [0-9]" "$CFS_TMP/version" || cfs_fail "--version"
"$CACHEFS" --help >"$CFS_TMP/help" || cfs_fail "--help exit status"
grep -q "usage: cachefs BACKEND MOUNTPOINT" "$CFS_TMP/help" || cfs_fail "--help"
echo "mount: ok"
