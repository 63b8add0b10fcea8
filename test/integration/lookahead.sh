#!/bin/bash
# The look-ahead: after the first lookup in a directory the kernel holds
# entries for the directory's other names, so that stats of them never
# reach the daemon; about lookahead= names are read, and listings stay
# whole; entries taken this way show changes on the backend within the
# bound and changes through the mount at once; lookahead=0 at run time
# stops it, and so does a table over its bounds; a daemon stopped in the
# middle of a burst exits cleanly, and one killed goes without hanging.
. "$TESTDIR/lib.sh"
: "${CACHEFSCTL:?CACHEFSCTL must point at the cachefsctl binary}"
cfs_setup
cfs_dirs 1
B=$CFS_BACKEND M=$(realpath "$CFS_MNT")
ctl() { "$CACHEFSCTL" -m "$M" "$@"; }
counter() { ctl stats --json | jq ".counters.$1"; }
lookups() { cfs_op_count "$M" lookup; }
dirs_read() { [ "$(counter lookahead_dirs)" -ge "$1" ]; }
attrs() { stat -c '%s %i %Y %a' "$@"; }

mkdir "$B/php" "$B/big" "$B/off"
for i in $(seq 1 40); do printf 'php %d' "$i" >"$B/php/f$i.php"; done
(cd "$B/big" && seq -f 'entry-%04g' 1 400 | xargs touch)
for i in $(seq 1 30); do : >"$B/off/g$i"; done
cfs_mount "$B" "$M" revalidate=200ms
cfs_fd_baseline "$M"
[ "$(ctl config get lookahead)" = 128 ] || cfs_fail "lookahead is not 128 by default"

# One lookup in php: the root (where php was looked up) and php are read
# ahead, and the other 39 names cost no request.
stat "$M/php/f1.php" >/dev/null || cfs_fail "stat f1.php"
cfs_wait_for dirs_read 2 || cfs_fail "php was not read ahead"
before=$(lookups)
for i in $(seq 2 40); do
	[ "$(attrs "$M/php/f$i.php")" = "$(attrs "$B/php/f$i.php")" ] ||
		cfs_fail "f$i.php: attributes differ from the backend's"
done
[ "$(lookups)" = "$before" ] ||
	cfs_fail "$(($(lookups) - before)) lookups for 39 names read ahead"
echo "lookahead: 39 names after one lookup: 0 requests"

# 400 names: one READDIRPLUS sized for about 128 of them; the rest are
# looked up as usual, and a listing of the directory is whole.
entries=$(counter lookahead_entries)
stat "$M/big/entry-0001" >/dev/null || cfs_fail "stat entry-0001"
cfs_wait_for dirs_read 3 || cfs_fail "big was not read ahead"
read_ahead=$(($(counter lookahead_entries) - entries))
[ "$read_ahead" -ge 64 ] && [ "$read_ahead" -le 200 ] ||
	cfs_fail "$read_ahead of 400 names read ahead, lookahead=128"
before=$(lookups)
(cd "$M/big" && seq -f 'entry-%04g' 1 400 | xargs stat >/dev/null) ||
	cfs_fail "stat of 400 names"
asked=$(($(lookups) - before))
[ "$asked" -ge $((400 - read_ahead - 1)) ] && [ "$asked" -lt 400 ] ||
	cfs_fail "$asked lookups for 400 names, $read_ahead read ahead"
[ "$(ls -f "$M/big" | sort)" = "$(ls -f "$B/big" | sort)" ] ||
	cfs_fail "big listed wrong after a partial read ahead"
echo "lookahead: 400 names, $read_ahead read ahead, $asked looked up, listing whole"

# Entries read ahead see changes: on the backend within the bound...
printf 'grown on the backend' >>"$B/php/f2.php"
rm "$B/php/f3.php"
changed() {
	[ "$(attrs "$M/php/f2.php")" = "$(attrs "$B/php/f2.php")" ] &&
		! stat "$M/php/f3.php" 2>/dev/null
}
CFS_TIMEOUT=5 cfs_wait_for changed || cfs_fail "a change on the backend to a name read ahead never showed"
cmp "$B/php/f2.php" "$M/php/f2.php" || cfs_fail "f2.php reads old bytes"
# ... and through the mount at once.
rm "$M/php/f4.php" || cfs_fail "rm f4.php"
! stat "$M/php/f4.php" 2>/dev/null || cfs_fail "f4.php still there after rm"
printf 'rewritten' >"$M/php/f5.php"
[ "$(cat "$M/php/f5.php")" = rewritten ] || cfs_fail "f5.php not rewritten"

# Off at run time: every name is looked up again.
ctl config set lookahead 0 >/dev/null || cfs_fail "config set lookahead 0"
dirs=$(counter lookahead_dirs)
stat "$M/off/g1" >/dev/null || cfs_fail "stat g1"
before=$(lookups)
for i in $(seq 2 30); do stat "$M/off/g$i" >/dev/null || cfs_fail "stat g$i"; done
[ $(($(lookups) - before)) = 29 ] ||
	cfs_fail "$(($(lookups) - before)) lookups for 29 names with lookahead=0"
[ "$(counter lookahead_dirs)" = "$dirs" ] || cfs_fail "read ahead with lookahead=0"
[ "$(counter lookahead_failed)" = 0 ] || cfs_fail "$(counter lookahead_failed) look-aheads failed"
cfs_check_fds "$M"
cfs_umount "$M"

# Over the bounds: once the table had to make the kernel forget names,
# nothing is read ahead (for 10 s).
cfs_mount "$B" "$M" "max_names=100,revalidate=100ms"
(cd "$M/big" && seq -f 'entry-%04g' 1 400 | xargs stat >/dev/null) ||
	cfs_fail "stat of 400 names"
trimmed() { [ "$(counter inval_entry)" -gt 0 ]; }
cfs_wait_for trimmed || cfs_fail "400 names and max_names=100: no name trimmed"
dirs=$(counter lookahead_dirs)
stat "$M/php/f1.php" >/dev/null || cfs_fail "stat f1.php"
[ "$(counter lookahead_full)" -gt 0 ] || cfs_fail "lookahead_full not counted"
[ "$(counter lookahead_dirs)" = "$dirs" ] || cfs_fail "read ahead over the bounds"
cfs_umount "$M"

# A burst of first lookups in 60 directories, and the daemon stopped at
# once: by unmounting, and by SIGTERM with listings still waiting.
for d in $(seq 1 60); do
	mkdir "$B/d$d"
	(cd "$B/d$d" && seq -f 'n%03g' 1 100 | xargs touch)
done
burst() { for d in $(seq 1 60); do stat "$M/d$d/n001" >/dev/null || return 1; done; }
cfs_mount "$B" "$M"
burst || cfs_fail "burst through the mount"
cfs_umount "$M"
cfs_mount "$B" "$M"
pid=${CFS_PIDS[$M]}
burst || cfs_fail "second burst through the mount"
kill -TERM "$pid"
gone() { ! kill -0 "$pid" 2>/dev/null; }
cfs_wait_for gone || cfs_fail "cachefs did not exit on SIGTERM during a look-ahead"
rc=0
wait "$pid" || rc=$?
unset "CFS_PIDS[$M]"
cfs_check_log "${CFS_LOGS[$M]}"
[ "$rc" = 0 ] || { cat "${CFS_LOGS[$M]}" >&2; cfs_fail "cachefs exited with $rc on SIGTERM"; }
! cfs_is_mounted "$M" || cfs_fail "still mounted after SIGTERM"
echo "lookahead: unmount and SIGTERM during a burst of 60 directories: clean"

# SIGKILL in the middle of a burst: the listings are made by reader
# processes, so nothing waits for the dead daemon, which goes, with its
# readers, and leaves a mount that fails rather than hangs.
cfs_mount "$B" "$M"
pid=${CFS_PIDS[$M]}
reader_pids() {
	pgrep -P "$pid" -f "^cachefs-ahead --lookahead-reader $pid\$" | tr '\n' ' '
}
four_readers() {
	local r n=0
	for r in $(reader_pids); do
		[ "$(cat "/proc/$r/comm" 2>/dev/null)" = cachefs-ahead ] && n=$((n + 1))
	done
	[ "$n" = 4 ]
}
cfs_wait_for four_readers ||
	cfs_fail "4 cachefs-ahead readers expected: $(pgrep -a -P "$pid" | tr '\n' ';')"
readers=$(reader_pids)
for r in $readers; do
	# no descriptor but its socket and the standard ones
	n=$(ls "/proc/$r/fd" | wc -l)
	[ "$n" -le 4 ] || cfs_fail "reader $r holds $n descriptors"
done
burst || cfs_fail "third burst through the mount"
kill -KILL "$pid"
cfs_wait_for gone || cfs_fail "cachefs stuck after SIGKILL during a look-ahead"
wait "$pid" 2>/dev/null
unset "CFS_PIDS[$M]"
readers_gone() { for r in $readers; do ! kill -0 "$r" 2>/dev/null || return 1; done; }
cfs_wait_for readers_gone || cfs_fail "readers outlived the daemon"
out=$(timeout 10 stat "$M/never-looked-up" 2>&1)
case $out in
*"not connected"*) ;;
*) cfs_fail "the dead mount did not fail with ENOTCONN: $out" ;;
esac
fusermount3 -u -z "$M" || cfs_fail "cannot unmount the dead mount"
echo "lookahead: SIGKILL during a burst: daemon and readers gone, the mount fails cleanly"
