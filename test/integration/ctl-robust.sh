#!/bin/bash
# The control socket under abuse (garbage, oversized and partial requests,
# clients that never read, too many clients), its permissions (root only,
# or a group), several mounts at once, a custom socket path, a socket
# still served by another daemon and one left behind by a dead daemon.
. "$TESTDIR/lib.sh"
: "${CACHEFSCTL:?CACHEFSCTL must point at the cachefsctl binary}"
PY=/usr/bin/python3
cfs_setup
cfs_dirs 1
B1=$CFS_BACKEND M1=$(realpath "$CFS_MNT")
cfs_dirs 2
B2=$CFS_BACKEND M2=$(realpath "$CFS_MNT")
echo one >"$B1/f"

sock_of() { "$CACHEFSCTL" -m "$1" status --json | jq -r .socket; }

# --- abuse -------------------------------------------------------------------
cfs_mount "$B1" "$M1"
S1=$(sock_of "$M1")
[ "$(stat -c '%a %U' "$S1")" = "600 root" ] || cfs_fail "socket is not 0600 root"
timeout 120 "$PY" "$TESTDIR/ctl_abuse.py" "$S1" "$M1" || cfs_fail "control socket abuse"
[ "$(cat "$M1/f")" = one ] || cfs_fail "mount broken after abuse"
"$CACHEFSCTL" -m "$M1" status >/dev/null || cfs_fail "status after abuse"

# --- several mounts -----------------------------------------------------
cfs_mount "$B2" "$M2" "ctl_socket=$CFS_TMP/custom.sock"
"$CACHEFSCTL" status --json >"$CFS_TMP/all.json" 2>/dev/null || true # others may not answer
n=$(jq --arg a "$M1" --arg b "$M2" \
	'[.[] | select(.mountpoint == $a or .mountpoint == $b)] | length' "$CFS_TMP/all.json")
[ "$n" -eq 2 ] || cfs_fail "status lists $n of the 2 mounts"
{ "$CACHEFSCTL" status 2>/dev/null || true; } | grep -q "^$M2: ok" || cfs_fail "human status lacks $M2"
rc=0
"$CACHEFSCTL" stats >/dev/null 2>"$CFS_TMP/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "choose one with -m" "$CFS_TMP/err" ||
	cfs_fail "stats with several mounts and no -m: rc $rc"

# custom socket: reachable by -s, and by -m through the default name
[ "$(sock_of "$M2")" = "$CFS_TMP/custom.sock" ] || cfs_fail "custom socket not used"
"$CACHEFSCTL" -s "$CFS_TMP/custom.sock" stats --json >/dev/null || cfs_fail "-s custom socket"
def=/run/cachefs/$(systemd-escape --path "$M2").sock
[ "$(readlink "$def")" = "$CFS_TMP/custom.sock" ] || cfs_fail "no link from $def to the custom socket"

# a socket another daemon still serves is refused, and left alone
mkdir "$CFS_TMP/mnt3"
rc=0
timeout 10 "$CACHEFS" -f "$B2" "$CFS_TMP/mnt3" -o "ctl_socket=$CFS_TMP/custom.sock" 2>"$CFS_TMP/err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "in use by another cachefs" "$CFS_TMP/err" ||
	{ cat "$CFS_TMP/err"; cfs_fail "a second daemon took a live socket (rc $rc)"; }
! cfs_is_mounted "$CFS_TMP/mnt3" || cfs_fail "mounted despite the socket clash"
"$CACHEFSCTL" -m "$M2" status >/dev/null || cfs_fail "first daemon lost its socket"
cfs_umount "$M2"
[ ! -e "$CFS_TMP/custom.sock" ] && [ ! -L "$def" ] || cfs_fail "socket or link left behind"

# --- a socket left by a dead daemon is replaced ----------------------------
cfs_umount "$M1"
"$PY" -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$S1"
[ -S "$S1" ] || cfs_fail "could not plant a stale socket"
cfs_mount "$B1" "$M1"
"$CACHEFSCTL" -m "$M1" status >/dev/null || cfs_fail "stale socket not replaced"
cfs_umount "$M1"

# --- ctl_group ------------------------------------------------------------
getent group cfsctltest >/dev/null || groupadd cfsctltest
id cfsctlin >/dev/null 2>&1 || useradd -M -N -g cfsctltest cfsctlin
id cfsctlout >/dev/null 2>&1 || useradd -M -N cfsctlout
cleanup_users() {
	userdel cfsctlin 2>/dev/null
	userdel cfsctlout 2>/dev/null
	groupdel cfsctltest 2>/dev/null
	cfs_cleanup
}
trap cleanup_users EXIT
cfs_mount "$B1" "$M1" ctl_group=cfsctltest
[ "$(stat -c '%a %G' "$S1")" = "660 cfsctltest" ] || cfs_fail "socket not 0660 cfsctltest"
runuser -u cfsctlin -- "$CACHEFSCTL" -m "$M1" status >/dev/null ||
	cfs_fail "a member of ctl_group cannot use the socket"
rc=0
runuser -u cfsctlout -- "$CACHEFSCTL" -m "$M1" status >/dev/null 2>"$CFS_TMP/err" || rc=$?
[ "$rc" -eq 3 ] && grep -q "Permission denied" "$CFS_TMP/err" ||
	{ cat "$CFS_TMP/err"; cfs_fail "an outsider reached the socket (rc $rc)"; }
cfs_umount "$M1"
echo "ctl-robust: abuse survived, permissions, several mounts and socket clashes handled"
