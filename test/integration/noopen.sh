#!/bin/bash
# no_open (the default): a warm open-read-close never reaches the daemon,
# yet writes keep their per-open meaning: O_APPEND appends at the
# backend's end of file, O_TRUNC truncates, a file unlinked or renamed
# over while open stays readable and writable, and the shared writable
# descriptor is closed soon after the last write.  With no_open=off every
# open reaches the daemon.
. "$TESTDIR/lib.sh"
: "${CACHEFSCTL:?CACHEFSCTL must point at the cachefsctl binary}"
cfs_setup
cfs_dirs 1
B=$CFS_BACKEND M=$(realpath "$CFS_MNT")
PY=/usr/bin/python3

op_count() { cfs_op_count "$M" "$1"; }
status() { "$CACHEFSCTL" -m "$M" status --json | jq "$1"; }

for i in 1 2 3 4 5; do echo "file $i" >"$B/f$i"; done
cfs_mount "$B" "$M"
cfs_fd_baseline "$M"

# Warm: the first open is answered ENOSYS, then opens stay in the kernel.
cat "$M"/f* >/dev/null
opens=$(op_count open) reads=$(op_count read)
[ "$opens" -le 1 ] || cfs_fail "$opens OPEN requests with no_open"
for k in 1 2 3; do cat "$M"/f* >/dev/null; done
[ "$(op_count open)" = "$opens" ] || cfs_fail "a warm open reached the daemon"
[ "$(op_count read)" = "$reads" ] || cfs_fail "a warm read reached the daemon"
for op in flush release; do
	[ "$(op_count $op)" -le 1 ] || cfs_fail "$op requests with no_open"
done
[ "$(status .data_fds.open)" -ge 1 ] || cfs_fail "no shared data descriptor"
echo "noopen: 3 warm passes over 5 files: 0 opens, 0 reads in the daemon"

# O_APPEND: another host grew the file behind the mount's back; an
# appending writer here must not overwrite what it wrote.
printf 'a\n' >"$B/log"
cat "$M/log" >/dev/null
printf 'other host\n' >>"$B/log"
printf 'b\n' >>"$M/log"
[ "$(cat "$B/log")" = "$(printf 'a\nother host\nb')" ] ||
	cfs_fail "O_APPEND overwrote: $(cat -A "$B/log")"

# O_TRUNC through open(2): truncated on the backend.
printf 'long content\n' >"$B/t"
cat "$M/t" >/dev/null
printf 'x\n' >"$M/t"
[ "$(cat "$B/t")" = x ] || cfs_fail "O_TRUNC did not truncate: $(cat -A "$B/t")"
[ "$(cat "$M/t")" = x ] || cfs_fail "O_TRUNC: mount shows $(cat -A "$M/t")"

# Unlinked and renamed-over files stay usable through open descriptors.
$PY - "$M" <<'EOF' || cfs_fail "open file lost after unlink/rename"
import os, sys
m = sys.argv[1]
with open(f"{m}/u", "w") as f:
    f.write("before\n")
fd = os.open(f"{m}/u", os.O_RDWR)
os.unlink(f"{m}/u")
assert os.pread(fd, 100, 0) == b"before\n", "read after unlink"
os.pwrite(fd, b"after\n", 7)
assert os.pread(fd, 100, 0) == b"before\nafter\n", "write after unlink"
assert os.fstat(fd).st_nlink == 0
os.close(fd)
with open(f"{m}/r", "w") as f:
    f.write("old\n")
with open(f"{m}/r2", "w") as f:
    f.write("new\n")
fd = os.open(f"{m}/r", os.O_RDONLY)
os.rename(f"{m}/r2", f"{m}/r")
assert os.pread(fd, 100, 0) == b"old\n", "read after rename over"
os.close(fd)
with open(f"{m}/r") as f:
    assert f.read() == "new\n"
EOF
[ ! -e "$B/u" ] || cfs_fail "unlinked file still on the backend"

# fsync, ftruncate and O_DSYNC writes on the shared descriptor.
$PY - "$M" "$B" <<'EOF' || cfs_fail "fsync/ftruncate/O_DSYNC"
import os, sys
m, b = sys.argv[1], sys.argv[2]
fd = os.open(f"{m}/s", os.O_WRONLY | os.O_CREAT | os.O_DSYNC, 0o644)
os.write(fd, b"0123456789")
os.fsync(fd)
os.ftruncate(fd, 4)
os.close(fd)
with open(f"{b}/s", "rb") as f:
    assert f.read() == b"0123", "backend has the wrong bytes"
EOF

# write_only_direct (the default): a file created write-only is written
# around the kernel's page cache, one WRITE and no GETXATTR per write(2),
# and a reader that holds its pages sees every write, same size included.
direct_writes() { # direct_writes FILE -- 11 writes through a write-only open
	$PY - "$M" "$B" "$1" <<'EOF'
import os, sys
m, b, name = sys.argv[1:]
a = os.open(f"{m}/{name}", os.O_WRONLY | os.O_CREAT, 0o644)
for i in range(10):
    os.write(a, b"%d" % i)
with open(f"{m}/{name}", "rb") as r:
    assert r.read() == b"0123456789", "read after writes"
os.pwrite(a, b"abcd", 2)
with open(f"{m}/{name}", "rb") as r:
    got = r.read()
    assert got == b"01abcd6789", f"a reader's cached pages went stale: {got}"
os.close(a)
with open(f"{b}/{name}", "rb") as r:
    assert r.read() == b"01abcd6789", "backend has the wrong bytes"
EOF
}
g0=$(op_count getxattr) w0=$(op_count write)
direct_writes d || cfs_fail "write-only create"
[ $(($(op_count write) - w0)) = 11 ] ||
	cfs_fail "$(($(op_count write) - w0)) WRITE requests for 11 writes"
[ "$(op_count getxattr)" = "$g0" ] ||
	cfs_fail "$(($(op_count getxattr) - g0)) GETXATTR requests for direct writes"
echo "noopen: 11 writes through a write-only create: 11 WRITE, 0 GETXATTR"

# The writable descriptor is closed about a second after the last write.
none_writable() { [ "$(status .data_fds.writable)" = 0 ]; }
CFS_TIMEOUT=10 cfs_wait_for none_writable ||
	cfs_fail "writable data descriptors still open: $(status .data_fds)"
[ "$(status .data_fds.kept)" = 0 ] || cfs_fail "kept descriptors after close: $(status .data_fds)"
cfs_check_fds "$M"
cfs_umount "$M"

# no_open=off: every open is a request, and released.
cfs_mount "$B" "$M" no_open=off
for k in 1 2 3; do cat "$M/f1" >/dev/null; done
[ "$(op_count open)" = 3 ] || cfs_fail "no_open=off: $(op_count open) opens for 3"
released() { [ "$(op_count release)" = 3 ]; }
CFS_TIMEOUT=10 cfs_wait_for released ||
	cfs_fail "no_open=off: $(op_count release) releases for 3"
[ "$(status .data_fds)" = null ] || cfs_fail "no_open=off has data descriptors"
# a write-only open of an existing file is written around the cache too
g0=$(op_count getxattr)
direct_writes d || cfs_fail "no_open=off: write-only open"
[ "$(op_count getxattr)" = "$g0" ] || cfs_fail "no_open=off: GETXATTR for direct writes"
cfs_umount "$M"

# write_only_direct=off: cached writes, each preceded by a GETXATTR
cfs_mount "$B" "$M" write_only_direct=off
g0=$(op_count getxattr)
direct_writes d2 || cfs_fail "write_only_direct=off"
[ $(($(op_count getxattr) - g0)) -ge 10 ] ||
	cfs_fail "write_only_direct=off: $(($(op_count getxattr) - g0)) GETXATTR for 11 writes"
cfs_umount "$M"
echo "noopen: ok"
