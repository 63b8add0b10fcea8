#!/bin/bash
# The in-process tier: reads the kernel no longer holds come from memory,
# never stale (writes through the mount and changes on the backend both
# show), within cache_size, only for files up to max_cached_file; lookups
# and listings the kernel forgot are answered from memory, changes
# included; and with offline=on a mount whose backend died still answers
# from what it holds, shows itself degraded and fails writes cleanly.
. "$TESTDIR/lib.sh"
: "${CACHEFSCTL:?CACHEFSCTL must point at the cachefsctl binary}"
cfs_setup
cfs_dirs 1
B=$CFS_BACKEND M=$(realpath "$CFS_MNT")

tier() { "$CACHEFSCTL" -m "$1" status --json | jq ".cache.tiers[0].$2"; }
drop_pages() { sync; echo 1 >/proc/sys/vm/drop_caches; }

for i in $(seq 1 20); do head -c 2048 /dev/urandom >"$B/f$i"; done
head -c 4096 /dev/urandom >"$B/big"
cfs_mount "$B" "$M" "cache_size=24K,max_cached_file=3K,revalidate=200ms"

# Cold: every small file is read from the backend into the tier.
for i in 1 2 3; do cmp "$B/f$i" "$M/f$i" || cfs_fail "f$i differs"; done
[ "$(tier "$M" stores)" -ge 3 ] || cfs_fail "nothing stored: $(tier "$M" '')"
# The kernel drops its pages: the reads come back to the daemon, and
# the tier answers them.
hits=$(tier "$M" hits)
drop_pages
for i in 1 2 3; do cmp "$B/f$i" "$M/f$i" || cfs_fail "f$i differs from memory"; done
[ "$(tier "$M" hits)" -ge $((hits + 3)) ] || cfs_fail "no hits: $(tier "$M" '')"

# A write through the mount: the old bytes are never served again.
printf 'new bytes' | dd of="$M/f1" conv=notrunc status=none
drop_pages
cmp "$B/f1" "$M/f1" || cfs_fail "stale bytes after a write through the mount"
[ "$(tier "$M" stale)" -ge 1 ] || cfs_fail "the old value was not noticed"

# A change on the backend, same size: visible within the revalidate bound.
head -c 2048 /dev/urandom >"$B/f2.new"
touch -d '+2 seconds' "$B/f2.new"
mv "$B/f2.new" "$B/f2"
fresh() { drop_pages; cmp -s "$B/f2" "$M/f2"; }
CFS_TIMEOUT=5 cfs_wait_for fresh || cfs_fail "stale bytes after a backend change"
printf 'same size!' | dd of="$B/f3" conv=notrunc status=none
touch -d '+3 seconds' "$B/f3"
fresh3() { drop_pages; cmp -s "$B/f3" "$M/f3"; }
CFS_TIMEOUT=5 cfs_wait_for fresh3 || cfs_fail "stale bytes after an in-place backend write"

# The budget holds; big files stay out.
for i in $(seq 1 20); do cat "$M/f$i" >/dev/null; done
cat "$M/big" >/dev/null
bytes=$(tier "$M" bytes)
[ "$bytes" -le $((24 * 1024)) ] || cfs_fail "tier holds $bytes bytes, budget 24K"
[ "$(tier "$M" evictions)" -gt 0 ] || cfs_fail "no evictions within a 24K budget"
[ "$("$CACHEFSCTL" -m "$M" status --json | jq .cache.skipped)" -ge 1 ] ||
	cfs_fail "the 4K file was not skipped"
"$CACHEFSCTL" -m "$M" status | grep "memory .*budget 24.0 KiB: cache " >/dev/null ||
	cfs_fail "status does not show the memory budget"
cfs_umount "$M"
echo "cache: hits, no stale reads, budget $bytes/24576 bytes: ok"

# The inode table stays within three quarters of cache_size too: past it
# the kernel is told to forget names, and the table frees their inodes.
mkdir "$B/many"
for d in $(seq 1 20); do
	mkdir "$B/many/d$d"
	for f in $(seq 1 40); do : >"$B/many/d$d/f$f"; done
done
cfs_mount "$B" "$M" "cache_size=128K,revalidate=100ms"
mem() { "$CACHEFSCTL" -m "$M" status --json | jq ".memory.$1"; }
stat "$M"/many/d*/f* >/dev/null || cfs_fail "stat of 800 files"
within_budget() { table=$(mem table_bytes); [ "$table" -le "$(mem table_budget)" ]; }
CFS_TIMEOUT=10 cfs_wait_for within_budget ||
	cfs_fail "inode table $(mem table_bytes) bytes, budget $(mem table_budget)"
# leaves first: trimming stops near the budget, not at an empty table
[ "$table" -ge $(($(mem table_budget) / 4)) ] ||
	cfs_fail "trimmed down to $table bytes, budget $(mem table_budget)"
n=$(stat -c %n "$M"/many/d*/f* | wc -l)
[ "$n" = 800 ] || cfs_fail "$n of 800 files after trimming"
echo "cache: 800 inodes, table trimmed to $table bytes (budget $(mem table_budget)): ok"
cfs_umount "$M"

# Lookups outlive the kernel's entries: after the kernel forgets names and
# inodes, the daemon answers their lookups, found and missing, from the
# inode table, as fresh as the revalidator keeps it.  (No look-ahead: its
# listings would answer lookups in the kernel, and count their own.)
cfs_mount "$B" "$M" "revalidate=100ms,lookahead=0"
counter() { "$CACHEFSCTL" -m "$M" stats --json | jq ".counters.$1"; }
forget_all() { sync; echo 2 >/proc/sys/vm/drop_caches; }
stat "$M"/many/d*/f* >/dev/null || cfs_fail "stat of 800 files"
for n in $(seq 1 30); do ! stat "$M/many/d1/nope$n" 2>/dev/null || cfs_fail "nope$n exists"; done
forget_all
kept=$("$CACHEFSCTL" -m "$M" status --json | jq .inodes_retained)
[ "$kept" -ge 800 ] || cfs_fail "$kept inodes kept after the kernel forgot them"
found=$(counter lookup_memory) missing=$(counter lookup_memory_missing)
stat "$M"/many/d*/f* >/dev/null || cfs_fail "stat of 800 files from memory"
for n in $(seq 1 30); do ! stat "$M/many/d1/nope$n" 2>/dev/null || cfs_fail "nope$n exists"; done
[ $(($(counter lookup_memory) - found)) -ge 830 ] ||
	cfs_fail "$(($(counter lookup_memory) - found)) of 830 lookups from memory"
[ $(($(counter lookup_memory_missing) - missing)) -ge 30 ] ||
	cfs_fail "$(($(counter lookup_memory_missing) - missing)) of 30 missing names from memory"
# Changes on the backend while only the daemon remembers: a new size, a
# removed file, a name that appeared.  All show within the bound.
forget_all
printf 'longer now' >"$B/many/d2/f2"
rm "$B/many/d3/f3"
echo here >"$B/many/d1/nope7"
seen() {
	forget_all
	[ "$(stat -c %s "$M/many/d2/f2" 2>/dev/null)" = 10 ] &&
		! stat "$M/many/d3/f3" 2>/dev/null &&
		[ "$(cat "$M/many/d1/nope7" 2>/dev/null)" = here ]
}
CFS_TIMEOUT=5 cfs_wait_for seen || cfs_fail "a backend change not seen through remembered lookups"
# Listings too: once kept (for a directory whose times are settled), a
# listing the kernel forgot is read from memory; changes still show.
d=$M/many/d5
base=$(counter readdir_memory)
listed() { forget_all; ls -a "$d" >"$CFS_TMP/ls.mnt" && [ "$(counter readdir_memory)" -gt "$base" ]; }
CFS_TIMEOUT=10 cfs_wait_for listed || cfs_fail "no listing read from memory"
ls -a "$B/many/d5" >"$CFS_TMP/ls.raw"
cmp -s "$CFS_TMP/ls.raw" "$CFS_TMP/ls.mnt" || cfs_fail "a listing from memory differs from the backend's"
: >"$B/many/d5/new-on-backend"
shows() { forget_all; ls "$d" | grep -qx new-on-backend; }
CFS_TIMEOUT=5 cfs_wait_for shows || cfs_fail "a file created on the backend is not listed"
: >"$d/new-through-mount"
forget_all
ls "$d" | grep -qx new-through-mount || cfs_fail "a file created through the mount is not listed"
# Invalidated names and inodes are asked of the backend again.
stat "$M/many/d4/f4" >/dev/null
"$CACHEFSCTL" -m "$M" invalidate -r "$M/many/d4" >/dev/null || cfs_fail "invalidate"
found=$(counter lookup_memory)
stat "$M/many/d4/f4" >/dev/null
[ "$(counter lookup_memory)" = "$found" ] || cfs_fail "an invalidated name came from memory"
cfs_umount "$M"
echo "cache: lookups from memory after the kernel forgot $kept inodes, changes seen: ok"

# Offline: B's backend is itself a mount (X) whose daemon dies; X caches
# nothing, so every request to it fails once its daemon is gone.
cfs_dirs 2
X=$(realpath "$CFS_BACKEND") M2=$(realpath "$CFS_MNT")
cfs_mount "$B" "$X" cache=off
xpid=${CFS_PIDS[$X]}
# (no look-ahead: the requests served offline are counted)
cfs_mount "$X" "$M2" "offline=on,file_handles=off,lookahead=0"
for i in 4 5 6; do cmp "$B/f$i" "$M2/f$i" || cfs_fail "f$i differs"; done
! stat "$M2/missing" 2>/dev/null || cfs_fail "missing exists"
[ "$("$CACHEFSCTL" -m "$M2" status --json | jq -r .state)" = ok ] ||
	cfs_fail "degraded before the backend failed"
exec 3<"$M2/f5" # the kernel keeps this inode, whatever happens to its name

kill -9 "$xpid"
wait "$xpid" 2>/dev/null || true
unset "CFS_PIDS[$X]"
! stat "$X" >/dev/null 2>&1 || cfs_fail "the backend mount still answers"
# Reads the kernel no longer holds, and the attributes it asks again after
# them, come from memory.
drop_pages
cmp "$B/f4" "$M2/f4" || cfs_fail "offline read of f4"
[ "$(stat -c %s "$M2/f4")" = 2048 ] || cfs_fail "offline stat of f4"
# Names the kernel forgot: from what the daemon remembers.
for f in f5 missing; do
	"$CACHEFSCTL" -m "$M2" invalidate "$M2/$f" >/dev/null ||
		cfs_fail "cannot invalidate $f"
done
cmp "$B/f5" "$M2/f5" || cfs_fail "offline lookup and read of f5"
! stat "$M2/missing" 2>/dev/null || cfs_fail "offline: missing exists"
exec 3<&-
if echo x >>"$M2/f6" 2>"$CFS_TMP/w.err"; then
	cfs_fail "a write succeeded with the backend down"
fi
[ "$("$CACHEFSCTL" -m "$M2" status --json | jq -r .state)" = degraded ] ||
	cfs_fail "status does not show the mount degraded"
"$CACHEFSCTL" -m "$M2" status | grep ": degraded" >/dev/null ||
	cfs_fail "cachefsctl status does not say degraded"
served=$("$CACHEFSCTL" -m "$M2" stats --json | jq .counters.offline_served)
[ "$served" -ge 4 ] || cfs_fail "offline_served is $served"
cfs_umount "$M2"
fusermount3 -uz "$X"
echo "cache: offline: $served requests served from memory; a write: $(cat "$CFS_TMP/w.err"): ok"
