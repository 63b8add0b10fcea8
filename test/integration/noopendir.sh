#!/bin/bash
# no_opendir (the default): listing a directory the kernel caches never
# reaches the daemon, not even its open and close, yet every listing is
# right: read in many requests without a handle, concurrently, partly,
# after changes through the mount and on the backend, with few
# descriptors held.  With no_opendir=off every opendir reaches the daemon.
. "$TESTDIR/lib.sh"
: "${CACHEFSCTL:?CACHEFSCTL must point at the cachefsctl binary}"
cfs_setup
cfs_dirs 1
B=$CFS_BACKEND M=$(realpath "$CFS_MNT")
PY=/usr/bin/python3

op_count() { cfs_op_count "$M" "$1"; }
listed() { # listed DIR -- its names, sorted
	$PY -c 'import os, sys; print("\n".join(sorted(os.listdir(sys.argv[1]))))' "$1"
}
same() { # same NAME -- the mount lists NAME as the backend has it
	[ "$(listed "$M/$1")" = "$(listed "$B/$1")" ]
}

# "big" takes many READDIR requests: 3,000 names of 40 characters; each
# of 18 "p" directories more than one getdents(2) of 32 KiB.  Hard links
# of one file: creating inodes is slow on a busy disk.
mkdir "$B/small"
for i in 1 2 3; do : >"$B/small/f$i"; done
$PY - "$B" <<'EOF'
import os, sys
b = sys.argv[1]
os.mkdir(os.path.join(b, "big"))
open(os.path.join(b, "one"), "w").close()
for k in range(3000):
    os.link(os.path.join(b, "one"),
            os.path.join(b, "big", "entry-with-a-long-name-%016d" % k))
for d in range(1, 19):
    os.mkdir(os.path.join(b, "p%d" % d))
    for k in range(800):
        os.link(os.path.join(b, "one"),
                os.path.join(b, "p%d" % d, "name-of-some-length-%06d" % k))
EOF
# no look-ahead: the requests are counted (lookahead.sh reads ahead with
# no_opendir)
cfs_mount "$B" "$M" lookahead=0
cfs_fd_baseline "$M"

# The first opendir is answered ENOSYS; the listing is whole.
same big || cfs_fail "big listed wrong"
same small || cfs_fail "small listed wrong"
opens=$(op_count opendir)
[ "$opens" -le 1 ] || cfs_fail "$opens OPENDIR requests with no_opendir"
reads=$(($(op_count readdir) + $(op_count readdirplus)))
[ "$reads" -ge 3 ] || cfs_fail "big took $reads READDIR requests: not several"
# warm: opens, listings and closes stay in the kernel
for k in 1 2 3; do same big && same small || cfs_fail "warm listing wrong"; done
[ "$(op_count opendir)" = "$opens" ] || cfs_fail "a warm opendir reached the daemon"
[ $(($(op_count readdir) + $(op_count readdirplus))) = "$reads" ] ||
	cfs_fail "a warm listing reached the daemon"
[ "$(op_count releasedir)" = 0 ] || cfs_fail "RELEASEDIR with no_opendir"
echo "noopendir: 3 warm listings of 3,003 names: 0 requests"

# Changes through the mount show at once.
: >"$M/big/new-through-mount"
rm "$M/big/entry-with-a-long-name-0000000000000007"
same big || cfs_fail "big after changes through the mount"
listed "$M/big" | grep -qx new-through-mount || cfs_fail "created name not listed"

# A change on the backend shows within the revalidate bound.
: >"$B/big/new-on-backend"
CFS_TIMEOUT=5 cfs_wait_for same big || cfs_fail "backend change never listed"

# Four readers at once, after the kernel dropped the listing.
"$CACHEFSCTL" -m "$M" invalidate "$M/big" >/dev/null
$PY - "$M/big" "$B/big" <<'EOF' || cfs_fail "concurrent listings differ"
import os, sys, threading
want = sorted(os.listdir(sys.argv[2]))
bad = []
def lister():
    for _ in range(3):
        got = sorted(os.listdir(sys.argv[1]))
        if got != want:
            bad.append(len(got))
ts = [threading.Thread(target=lister) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
sys.exit(1 if bad else 0)
EOF

# Readers that stop halfway leave streams behind: at most 16 are kept.
for k in $(seq 18); do "$CACHEFSCTL" -m "$M" invalidate "$M/p$k" >/dev/null; done
$PY - "$M" <<'EOF' || cfs_fail "partial listings"
import os, sys
for k in range(1, 19):
    with os.scandir(os.path.join(sys.argv[1], "p%d" % k)) as it:
        next(it)
EOF
held=$("$CACHEFSCTL" -m "$M" status --json | jq .open_dirs)
echo "noopendir: 18 listings stopped halfway: $held streams held"
[ "$held" -ge 1 ] || cfs_fail "no stream kept between READDIRs"
[ "$held" -le 16 ] || cfs_fail "$held directory streams held"
for k in $(seq 18); do same "p$k" || cfs_fail "p$k listed wrong after a partial read"; done

# fsync of a directory, which has no handle either.
$PY -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.close(fd)' "$M/big" ||
	cfs_fail "fsync of a directory"
cfs_check_fds "$M" # streams left halfway are closed within seconds
cfs_umount "$M"

# no_opendir=off: every opendir is a request, and released.
cfs_mount "$B" "$M" no_opendir=off,lookahead=0
for k in 1 2 3; do same small || cfs_fail "no_opendir=off: small listed wrong"; done
[ "$(op_count opendir)" = 3 ] || cfs_fail "no_opendir=off: $(op_count opendir) opendirs for 3"
released() { [ "$(op_count releasedir)" = 3 ]; }
CFS_TIMEOUT=10 cfs_wait_for released ||
	cfs_fail "no_opendir=off: $(op_count releasedir) releasedirs for 3"
cfs_umount "$M"
echo "noopendir: ok"
