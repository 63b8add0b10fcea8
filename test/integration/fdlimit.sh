#!/bin/bash
# cachefs does not hold a descriptor per inode: with the open-file limit
# lowered to 256, a tree of more than three times as many inodes is
# walked, read and written with every inode held by the kernel (hour-long
# timeouts), and the daemon stays under its limit.  As a control, the same
# walk with file_handles=off (one pinned descriptor per inode, as libfuse's
# passthrough examples do) must run out of descriptors.
. "$TESTDIR/lib.sh"
cfs_setup

LIMIT=256
NDIRS=16
PERDIR=50 # 800 files + 16 directories > 3 x LIMIT

cfs_dirs 1
for d in $(seq 1 $NDIRS); do
	mkdir "$CFS_BACKEND/d$d"
	for f in $(seq 1 $PERDIR); do
		echo "file $d/$f" >"$CFS_BACKEND/d$d/f$f"
	done
done

# Everything started from here on, the daemon included, has the low limit.
ulimit -n $LIMIT || cfs_fail "cannot lower the descriptor limit"
ulimit -Hn $LIMIT

walk() {
	local mnt=$1 errors=0 d f
	for d in $(seq 1 $NDIRS); do
		for f in $(seq 1 $PERDIR); do
			stat -c %s "$mnt/d$d/f$f" >/dev/null 2>>"$CFS_TMP/walk.err" ||
				errors=$((errors + 1))
		done
	done
	echo $errors
}

opts=entry_timeout=1h,attr_timeout=1h
cfs_mount "$CFS_BACKEND" "$CFS_MNT" "$opts"
pid=${CFS_PIDS[$CFS_MNT]}
grep -q "Max open files *$LIMIT" /proc/$pid/limits ||
	cfs_fail "daemon does not run with the lowered limit"

[ "$(walk "$CFS_MNT")" -eq 0 ] || { cat "$CFS_TMP/walk.err"; cfs_fail "stat walk failed"; }
[ "$(find "$CFS_MNT" | wc -l)" -eq $((NDIRS * PERDIR + NDIRS + 1)) ] ||
	cfs_fail "find does not see every inode"
# Read every file, then rewrite every file, while all inodes stay looked up.
for d in $(seq 1 $NDIRS); do
	for f in $(seq 1 $PERDIR); do
		[ "$(cat "$CFS_MNT/d$d/f$f")" = "file $d/$f" ] ||
			cfs_fail "wrong content in d$d/f$f"
		echo "new $d/$f" >>"$CFS_MNT/d$d/f$f" ||
			cfs_fail "cannot write d$d/f$f"
	done
done
for d in $(seq 1 $NDIRS); do
	for f in $(seq 1 $PERDIR); do
		[ "$(tail -n 1 "$CFS_BACKEND/d$d/f$f")" = "new $d/$f" ] ||
			cfs_fail "backend misses the write to d$d/f$f"
	done
done
nfd=$(ls /proc/$pid/fd | wc -l)
echo "daemon holds $nfd descriptors for $((NDIRS * PERDIR + NDIRS)) inodes (limit $LIMIT)"
[ "$nfd" -lt $LIMIT ] || cfs_fail "daemon holds $nfd descriptors"
cfs_umount "$CFS_MNT"

# Control: pinning one descriptor per inode cannot walk this tree.
cfs_mount "$CFS_BACKEND" "$CFS_MNT" "$opts,file_handles=off"
errs=$(walk "$CFS_MNT")
echo "control (file_handles=off): $errs of $((NDIRS * PERDIR)) lookups failed"
[ "$errs" -gt 0 ] || cfs_fail "control walk did not hit the descriptor limit"
grep -q "Too many open files" "$CFS_TMP/walk.err" ||
	cfs_fail "control walk failed for another reason"
cfs_umount "$CFS_MNT"
echo "fdlimit: ok"
