#!/bin/bash
# Nothing outside BACKEND is reachable through the mount: symlinks in the
# backend are handed to the kernel (which resolves them on the client
# side, relative to the mount), never followed by the daemon; ".." of the
# mount root is the mount's parent, not the backend's.
. "$TESTDIR/lib.sh"
cfs_setup

# Layout: $CFS_TMP/srv/secret.txt and $CFS_TMP/srv/www (the backend);
# the mount point is $CFS_TMP/client/mnt, whose parent has no secret.
mkdir -p "$CFS_TMP/srv/www/sub" "$CFS_TMP/client/mnt"
echo "secret" >"$CFS_TMP/srv/secret.txt"
echo "inside" >"$CFS_TMP/srv/www/inside.txt"
B=$CFS_TMP/srv/www M=$CFS_TMP/client/mnt
ln -s ../secret.txt "$B/up"
ln -s ../../secret.txt "$B/sub/up2"
ln -s "$CFS_TMP/srv/secret.txt" "$B/abs"
ln -s ../.. "$B/dotdot"
ln -s inside.txt "$B/rel"
ln "$CFS_TMP/srv/secret.txt" "$CFS_TMP/srv/secret.hardlink" # outside, untouched
cfs_mount "$B" "$M" allow_other

# The daemon returns link texts verbatim.
[ "$(readlink "$M/up")" = ../secret.txt ] || cfs_fail "readlink up"
[ "$(readlink "$M/sub/up2")" = ../../secret.txt ] || cfs_fail "readlink up2"
# Relative links resolve against the mount, where no secret exists.
! cat "$M/up" 2>/dev/null || cfs_fail "relative link escaped to the backend's parent"
! cat "$M/sub/up2" 2>/dev/null || cfs_fail "nested relative link escaped"
[ "$(cat "$M/rel")" = inside ] || cfs_fail "link inside the tree does not work"
# ".." of the mount root is the client's directory.
[ "$(stat -c %i "$M/..")" = "$(stat -c %i "$CFS_TMP/client")" ] ||
	cfs_fail ".. of the mount root is not the mount's parent"
[ ! -e "$M/../secret.txt" ] || cfs_fail "secret visible via .."
[ "$(stat -L -c %i "$M/dotdot")" = "$(stat -c %i "$CFS_TMP")" ] ||
	cfs_fail "dotdot link did not resolve on the client side"
# An absolute link resolves on the client (the same host here): that is
# the kernel following it, exactly as on a local file system; it is not a
# daemon lookup.  Whatever the mount serves lies below the backend:
! grep -rlx secret "$M" || cfs_fail "the mount serves a file outside the backend"
# Names with a slash or dot-dot never reach the daemon as lookups.
! stat "$M/sub/../../secret.txt" 2>/dev/null || cfs_fail "../.. escaped"
cfs_umount "$M"
echo "confine: ok"
