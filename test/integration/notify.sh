#!/bin/bash
# -o notify=HOST:PORT: one libiorouter datagram per change through the
# mount, in order, with paths under the mount point, escaped; nothing for
# reads or failures; a bad address is refused at mount time.
. "$TESTDIR/lib.sh"
: "${CACHEFSCTL:?CACHEFSCTL must point at the cachefsctl binary}"
cfs_setup
cfs_dirs 1
B=$CFS_BACKEND M=$(realpath "$CFS_MNT")
PY=/usr/bin/python3

# A bad address: a clear error, no mount.
if "$CACHEFS" -f "$B" "$M" -o notify=localhost 2>"$CFS_TMP/err"; then
	cfs_fail "notify=localhost was accepted"
fi
grep -q "port" "$CFS_TMP/err" || cfs_fail "unclear error: $(cat "$CFS_TMP/err")"
! cfs_is_mounted "$M" || cfs_fail "mounted with a bad notify address"

# The listener: on a free loopback port, collecting every datagram until
# "$CFS_TMP/stop" appears (bounded: 30 s at most).
$PY - "$CFS_TMP" <<'EOF' &
import os, socket, sys, time
d = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(0.05)
with open(f"{d}/port.tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(f"{d}/port.tmp", f"{d}/port")
out, end = open(f"{d}/got", "wb"), time.time() + 30
while time.time() < end:
    try:
        out.write(s.recv(70000))
        out.flush()
    except socket.timeout:
        if os.path.exists(f"{d}/stop"):
            break
EOF
listener=$!
CFS_TIMEOUT=10 cfs_wait_for test -e "$CFS_TMP/port" || cfs_fail "no listener"
cfs_mount "$B" "$M" "notify=127.0.0.1:$(cat "$CFS_TMP/port")"

echo x >"$M/a b"
cat "$M/a b" >/dev/null
mv "$M/a b" "$M/c%"
chmod 600 "$M/c%"
truncate -s 0 "$M/c%"
touch -d @1000000000 "$M/c%"
ln "$M/c%" "$M/l"
rm "$M/l"
! rm "$M/missing" 2>/dev/null
mkdir "$M/d"
ln -s target "$M/d/s"
setfattr -n user.k -v 1 "$M/c%"
rm "$M/d/s"
rmdir "$M/d"
stat "$M/c%" >/dev/null

expect() { # the datagrams, without their time stamps
	cat <<EOF
HIT create $M/a%20b
HIT write $M/a%20b
HIT rename $M/a%20b $M/c%25
HIT chmod $M/c%25
HIT truncate $M/c%25
HIT utimens $M/c%25
HIT link $M/c%25 $M/l
HIT unlink $M/l
HIT mkdir $M/d
HIT symlink $M/d/s
HIT setxattr $M/c%25
HIT unlink $M/d/s
HIT rmdir $M/d
EOF
}
n=$(expect | wc -l)
got_all() { [ "$(wc -l <"$CFS_TMP/got")" -ge "$n" ]; }
CFS_TIMEOUT=10 cfs_wait_for got_all || true
touch "$CFS_TMP/stop"
wait $listener
# Each line: SEC.USEC (6 digits) HIT OP PATH [PATH2]
grep -vqE '^[0-9]+\.[0-9]{6} HIT ' "$CFS_TMP/got" &&
	cfs_fail "malformed datagram: $(grep -vE '^[0-9]+\.[0-9]{6} HIT ' "$CFS_TMP/got")"
diff <(expect) <(cut -d' ' -f2- "$CFS_TMP/got") >&2 ||
	cfs_fail "datagrams differ from the operations (above: - expected, + got)"
sent=$("$CACHEFSCTL" -m "$M" stats --json | jq .counters.notify_sent)
[ "$sent" = "$n" ] || cfs_fail "notify_sent is $sent, $n datagrams went out"
[ "$("$CACHEFSCTL" -m "$M" status --json | jq -r .notify.target)" = "127.0.0.1:$(cat "$CFS_TMP/port")" ] ||
	cfs_fail "status does not show the notify target"
cfs_umount "$M"
echo "notify: $n datagrams, in order: ok"
