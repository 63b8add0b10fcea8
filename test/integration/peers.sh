#!/bin/bash
# Peer invalidation: two mounts of one backend tell each other what
# changed (the revalidator off, so only the peers can make it show):
# visible through the other mount within 50 ms (median), forged datagrams
# are dropped, and a lost datagram makes the receiver flush its cache.
. "$TESTDIR/lib.sh"
: "${CACHEFSCTL:?CACHEFSCTL must point at the cachefsctl binary}"
PY=/usr/bin/python3
cfs_setup
cfs_dirs 1
B=$CFS_BACKEND A=$(realpath "$CFS_MNT")
mkdir "$CFS_TMP/mntb"
MB=$(realpath "$CFS_TMP/mntb")
echo "a shared secret" >"$CFS_TMP/secret"
# free UDP ports, from the kernel
read -r PA PB PR < <("$PY" -c '
import socket
s = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
common="revalidate=0,peer_secret_file=$CFS_TMP/secret"
cfs_mount "$B" "$A" "$common,listen=127.0.0.1:$PA,peers=127.0.0.1:$PB"
cfs_mount "$B" "$MB" "$common,listen=127.0.0.1:$PB,peers=127.0.0.1:$PA"
content_is() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; }
now_us() { echo $(($(date +%s%N) / 1000)); }

# --- through A, seen through B ---------------------------------------------
echo 0 >"$A/f"
cat "$MB/f" >/dev/null
times=()
for k in $(seq 1 11); do
	t0=$(now_us)
	echo "version $k" >"$A/f"
	CFS_TIMEOUT=2 cfs_wait_for content_is "$MB/f" "version $k" ||
		cfs_fail "write $k through A not seen through B within 2 s"
	times+=($((($(now_us) - t0) / 1000)))
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 6p)
echo "peers: a write through A showed through B after ${times[*]} ms (median $median)"
[ "$median" -le 50 ] || cfs_fail "median ${median} ms > 50 ms"
! stat "$MB/created" 2>/dev/null || cfs_fail "created exists already"
echo new >"$A/created"
CFS_TIMEOUT=2 cfs_wait_for content_is "$MB/created" new || cfs_fail "a creation through A not seen through B"
mv "$A/created" "$A/renamed"
CFS_TIMEOUT=2 cfs_wait_for test ! -e "$MB/created" || cfs_fail "a rename through A not seen through B"
content_is "$MB/renamed" new || cfs_fail "the new name is not seen through B"
echo back >"$MB/f"
CFS_TIMEOUT=2 cfs_wait_for content_is "$A/f" back || cfs_fail "a write through B not seen through A"

# --- a forged datagram is dropped ---------------------------------------------
bad0=$("$CACHEFSCTL" -m "$MB" stats --json | jq .counters.peer_bad)
"$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"x" * 32 + b"{\"v\":1,\"id\":\"0123456789abcdef\",\"seq\":1,\"paths\":[\"/f\"]}",
         ("127.0.0.1", int(sys.argv[1])))' "$PB"
bad_counted() { [ "$("$CACHEFSCTL" -m "$MB" stats --json | jq .counters.peer_bad)" -gt "$bad0" ]; }
cfs_wait_for bad_counted || cfs_fail "a forged datagram was not counted as bad"
cfs_umount "$MB"
cfs_umount "$A"

# --- a lost datagram: the receiver flushes ----------------------------------
# A sends to a relay that drops the datagram about /lost on its way to B.
cfs_mount "$B" "$A" "$common,listen=127.0.0.1:$PA,peers=127.0.0.1:$PR"
cfs_mount "$B" "$MB" "$common,listen=127.0.0.1:$PB"
echo one >"$B/y"
"$PY" "$TESTDIR/udp_relay.py" "$PR" "$PB" 30 '"/lost"' >"$CFS_TMP/relay" &
relay=$!
cfs_wait_for grep -q ready "$CFS_TMP/relay" || cfs_fail "relay did not start"
sync_b() { CFS_TIMEOUT=2 cfs_wait_for content_is "$MB/$1" "$2"; }
content_is "$MB/y" one || cfs_fail "B does not read y"
echo two >"$A/y" # B learns of A (the first datagram from a sender sets its count)
sync_b y two || cfs_fail "y not seen through B"
! stat "$MB/lost" 2>/dev/null || cfs_fail "lost exists already" # a negative entry on B
mkdir "$A/lost" # one operation, one datagram: dropped
cfs_wait_for grep -q "dropped datagram" "$CFS_TMP/relay" || cfs_fail "nothing dropped"
gaps() { "$CACHEFSCTL" -m "$MB" stats --json | jq .counters.peer_gaps; }
# The directory's own path may follow in a datagram of its own, which
# reveals the gap at once; otherwise B must still miss the new name.
if stat "$MB/lost" >/dev/null 2>&1; then
	[ "$(gaps)" -ge 1 ] || cfs_fail "lost showed through B without its datagram or a gap"
fi
echo three >"$A/y" # the next datagram: B sees the gap and flushes
sync_b y three || cfs_fail "y not seen after the gap"
[ -d "$MB/lost" ] || cfs_fail "after a lost datagram B still serves a stale negative entry"
[ "$("$CACHEFSCTL" -m "$MB" stats --json | jq .counters.peer_gaps)" -ge 1 ] ||
	cfs_fail "the gap was not counted"
kill $relay 2>/dev/null; wait $relay 2>/dev/null
cfs_umount "$MB"
cfs_umount "$A"
echo "peers: changes cross within the bound; forged datagrams dropped; a lost one flushes"
