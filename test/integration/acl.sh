#!/bin/bash
# POSIX ACLs on an allow_other mount behave as on the backend: an access
# ACL grants one user and not another, a default ACL is inherited and
# overrides the creator's umask, and with acl=off the ACL is only stored.
. "$TESTDIR/lib.sh"
cfs_setup
command -v setfacl >/dev/null || cfs_fail "setfacl (package acl) is missing"
cfs_dirs 1
B=$CFS_BACKEND M=$CFS_MNT
setfacl -m u:60001:r "$B" 2>/dev/null || { echo "acl: backend has no ACL support; skipped"; exit 77; }
setfacl -b "$B"

as() { # as UID COMMAND...
	local u=$1
	shift
	setpriv --reuid="$u" --regid="$u" --clear-groups "$@"
}

cfs_mount "$B" "$M" allow_other
mkdir "$M/d"
chmod 0755 "$M/d"
echo secret >"$M/d/f"
chmod 0600 "$M/d/f"
setfacl -m u:60001:r "$M/d/f" || cfs_fail "setfacl through the mount"
getfacl -p "$M/d/f" 2>/dev/null | grep -q "^user:60001:r--" || cfs_fail "ACL not stored"
[ "$(as 60001 cat "$M/d/f" 2>/dev/null)" = secret ] || cfs_fail "access ACL does not grant 60001"
! as 60002 cat "$M/d/f" 2>/dev/null || cfs_fail "60002 reads a file only 60001 is granted"
# The mode's group bits show the ACL mask, as on the backend.
[ "$(stat -c %A "$M/d/f")" = "$(stat -c %A "$B/d/f")" ] || cfs_fail "mode differs from the backend"

# Default ACL: inherited, and the creator's umask does not apply.
mkdir "$M/shared"
chmod 0777 "$M/shared"
setfacl -d -m u::rwx,g::rwx,o::r-x,u:60002:rw "$M/shared"
as 60001 sh -c "umask 077; echo x > '$M/shared/new'" || cfs_fail "60001 cannot create"
getfacl -p "$M/shared/new" 2>/dev/null | grep -q "^user:60002:rw-" ||
	cfs_fail "default ACL not inherited"
[ "$(stat -c %U "$B/shared/new" 2>/dev/null || stat -c %u "$B/shared/new")" != root ] ||
	cfs_fail "new file owned by root"
as 60002 sh -c "echo y >> '$M/shared/new'" || cfs_fail "inherited ACL does not grant 60002"
# Without a default ACL the umask applies.
as 60001 sh -c "umask 027; echo x > '$M/d2'" 2>/dev/null ||
	{ chmod 0777 "$M"; as 60001 sh -c "umask 027; echo x > '$M/d2'"; } || cfs_fail "create"
[ "$(stat -c %a "$M/d2")" = 640 ] || cfs_fail "umask 027 gave mode $(stat -c %a "$M/d2")"
cfs_umount "$M"

# acl=off: the ACL is still there, but only the mode bits count.
cfs_mount "$B" "$M" allow_other,acl=off
getfacl -p "$M/d/f" 2>/dev/null | grep -q "^user:60001:r--" || cfs_fail "ACL lost with acl=off"
! as 60001 cat "$M/d/f" 2>/dev/null || cfs_fail "acl=off still enforces the ACL"
cfs_umount "$M"
echo "acl: ok"
