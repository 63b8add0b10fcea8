#!/bin/bash
# Two mounts over one backend, writers through one of them and on the
# backend directly, readers through both: no read may be staler than the
# revalidate bound (soak.py).  CFS_SOAK_SECONDS sets the length (60).
. "$TESTDIR/lib.sh"
cfs_setup
cfs_dirs 1
B=$CFS_BACKEND M=$(realpath "$CFS_MNT")
mkdir "$CFS_TMP/mnt2"
M2=$(realpath "$CFS_TMP/mnt2")
# revalidate every 200 ms; a read may be behind by that, one pass and
# the scheduling of a busy 2-core machine
cfs_mount "$B" "$M" revalidate=200ms
cfs_mount "$B" "$M2" revalidate=200ms
timeout $((${CFS_SOAK_SECONDS:-60} + 60)) /usr/bin/python3 "$TESTDIR/soak.py" \
	"$B" "$M" "$M2" "${CFS_SOAK_SECONDS:-60}" 0.6 || cfs_fail "stale reads"
cfs_umount "$M2"
cfs_umount "$M"
