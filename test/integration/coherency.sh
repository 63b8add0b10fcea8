#!/bin/bash
# Changes made on the backend behind the mount's back show through it
# within the revalidate bound, although the kernel caches names, negative
# names and attributes for an hour; and a second mount over the same
# backend sees what the first one writes within the same bound.
. "$TESTDIR/lib.sh"
: "${CACHEFSCTL:?CACHEFSCTL must point at the cachefsctl binary}"
cfs_setup
cfs_dirs 1
B=$CFS_BACKEND M=$(realpath "$CFS_MNT")
mkdir "$CFS_TMP/mnt2"
M2=$(realpath "$CFS_TMP/mnt2")
OPTS=entry_timeout=1h,attr_timeout=1h,negative_timeout=1h,revalidate=200ms
BOUND=3 # seconds: the interval, a pass, and a slow machine

# within DESCRIPTION CMD...: CMD must succeed within BOUND seconds.
within() {
	local what=$1 t0
	shift
	t0=$(date +%s%N)
	CFS_TIMEOUT=$BOUND cfs_wait_for "$@" ||
		cfs_fail "$what: not visible within ${BOUND}s"
	echo "coherency: $what after $((($(date +%s%N) - t0) / 1000000)) ms"
}
size_is() { [ "$(stat -c %s "$1" 2>/dev/null)" = "$2" ]; }
mode_is() { [ "$(stat -c %a "$1" 2>/dev/null)" = "$2" ]; }
content_is() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; }
gone() { [ ! -e "$1" ]; }

mkdir "$B/dir"
echo one >"$B/dir/file"
echo keep >"$B/dir/stay"
cfs_mount "$B" "$M" "$OPTS"
cfs_mount "$B" "$M2" "$OPTS"

# warm: names, a negative name, attributes
cat "$M/dir/file" >/dev/null # (a read makes the kernel ask for atime again)
stat "$M/dir/file" "$M/dir/stay" >/dev/null
! stat "$M/dir/new" 2>/dev/null || cfs_fail "new exists already"
# the kernel answers from its caches now
"$CACHEFSCTL" -m "$M" stats --reset >/dev/null
for k in 1 2 3 4 5; do stat "$M/dir/file" >/dev/null; ! stat "$M/dir/new" 2>/dev/null; done
n=$("$CACHEFSCTL" -m "$M" stats --json | jq '.ops.lookup.count + .ops.getattr.count')
[ "$n" -eq 0 ] || cfs_fail "warm stats reached the daemon ($n requests)"

# changes on the backend directly
echo "changed content" >"$B/dir/file"
within "new size" size_is "$M/dir/file" 16
content_is "$M/dir/file" "changed content" || cfs_fail "stale content"
chmod 600 "$B/dir/file"
within "chmod" mode_is "$M/dir/file" 600
echo new >"$B/dir/new"
within "a created file (negative entry cached)" content_is "$M/dir/new" new
rm "$B/dir/new"
within "a removed file" gone "$M/dir/new"
mv "$B/dir/file" "$B/dir/moved"
within "a rename (old name)" gone "$M/dir/file"
within "a rename (new name)" content_is "$M/dir/moved" "changed content"
echo other >"$B/dir/tmp" && mv "$B/dir/tmp" "$B/dir/stay"
within "a name replaced by another file" content_is "$M/dir/stay" other
# a file removed and made again, which often takes the freed inode number
# (not read through the mount first: an open descriptor would hold it)
echo first >"$B/dir/again"
size_is "$M/dir/again" 6 || cfs_fail "again: not seen through the mount"
ino=$(stat -c %i "$B/dir/again")
rm "$B/dir/again" && echo "second time" >"$B/dir/again"
[ "$(stat -c %i "$B/dir/again")" = "$ino" ] && how="its inode number" || how="a new inode number"
within "a file removed and made again ($how)" content_is "$M/dir/again" "second time"
mkdir "$B/dir/sub" && echo deep >"$B/dir/sub/f"
within "a new directory" content_is "$M/dir/sub/f" deep
rm -r "$B/dir/sub"
within "a removed directory" gone "$M/dir/sub"

# through one mount, seen through the other
stat "$M2/dir/stay" >/dev/null
! stat "$M2/dir/fromA" 2>/dev/null || true
echo "from A" >"$M/dir/fromA"
within "a file written through the other mount" content_is "$M2/dir/fromA" "from A"
echo "again A" >"$M/dir/stay"
within "a rewrite through the other mount" content_is "$M2/dir/stay" "again A"
rm "$M/dir/fromA"
within "a removal through the other mount" gone "$M2/dir/fromA"

[ "$("$CACHEFSCTL" -m "$M" stats --json | jq .counters.inval_entry)" -gt 0 ] ||
	cfs_fail "no entry invalidations counted"
cfs_umount "$M2"
cfs_umount "$M"

# Without the revalidator the kernel keeps what it has; "cachefsctl
# invalidate" makes it forget a path, or a tree.
mkdir -p "$B/inv/sub"
echo one >"$B/inv/f"
echo two >"$B/inv/sub/g"
cfs_mount "$B" "$M" "revalidate=0,entry_timeout=1h,attr_timeout=1h,negative_timeout=1h"
# warm reads the tree through the mount; re-reading it stays in the kernel
"$CACHEFSCTL" warm -r "$M/inv" >"$CFS_TMP/warm" || cfs_fail "warm failed"
grep -q "^warmed $M/inv: 2 files (.*), 2 directories, 0 others, 0 errors" "$CFS_TMP/warm" ||
	{ cat "$CFS_TMP/warm"; cfs_fail "warm: wrong summary"; }
! stat "$M/inv/new" 2>/dev/null || cfs_fail "new exists already"
"$CACHEFSCTL" -m "$M" stats --reset >/dev/null
cat "$M/inv/f" "$M/inv/sub/g" >/dev/null
n=$("$CACHEFSCTL" -m "$M" stats --json | jq '.ops.read.count + .ops.lookup.count')
[ "$n" -eq 0 ] || cfs_fail "warm files were read from the daemon again ($n requests)"
echo "ONE" >"$B/inv/f"
echo "TWO" >"$B/inv/sub/g"
echo new >"$B/inv/new"
content_is "$M/inv/f" one || cfs_fail "revalidate=0: the change showed anyway (test is void)"
"$CACHEFSCTL" invalidate "$M/inv/f" >/dev/null || cfs_fail "invalidate failed"
content_is "$M/inv/f" ONE || cfs_fail "invalidate: stale content of f"
content_is "$M/inv/sub/g" two || cfs_fail "invalidate of f reached g"
"$CACHEFSCTL" invalidate -r "$M/inv" >/dev/null || cfs_fail "invalidate -r failed"
content_is "$M/inv/sub/g" TWO || cfs_fail "invalidate -r: stale content of sub/g"
content_is "$M/inv/new" new || cfs_fail "invalidate -r: stale negative entry"
# cache off drops what the kernel holds, names included
! stat "$M/inv/late" 2>/dev/null || cfs_fail "late exists already"
echo late >"$B/inv/late"
! stat "$M/inv/late" 2>/dev/null || cfs_fail "revalidate=0: late showed anyway (test is void)"
"$CACHEFSCTL" -m "$M" cache off >/dev/null
content_is "$M/inv/late" late || cfs_fail "cache off kept a stale negative entry"
"$CACHEFSCTL" -m "$M" cache on >/dev/null
rc=0
"$CACHEFSCTL" -m "$M" call invalidate '{"path":"/inv/../x"}' >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || cfs_fail "invalidate of a .. path: rc $rc"
cfs_umount "$M"
# A stream of probes for new missing names stays bounded (max_names).
cfs_mount "$B" "$M" "revalidate=100ms,max_names=100"
for k in $(seq 500); do [ ! -e "$M/inv/probe$k" ] || cfs_fail "probe$k exists"; done
names_bounded() { [ "$("$CACHEFSCTL" -m "$M" status --json | jq .names)" -le 100 ]; }
cfs_wait_for names_bounded || cfs_fail "names not trimmed to max_names"
echo found >"$B/inv/probe7"
content_is "$M/inv/probe7" found || cfs_fail "a trimmed negative entry stayed in the kernel"
cfs_umount "$M"
echo "coherency: backend changes and the other mount's writes show within the bound"
