#!/bin/bash
# The memcached tier, with real servers on loopback: a tree copied into
# the mount (names with spaces, %, UTF-8) is served by nginx straight from
# two memcached servers, byte for byte, with contrib/nginx/cachefs.conf
# as it is; changes through the mount never let nginx serve old bytes;
# preload fills memcached from files already on the backend; killing
# memcached in the middle of a read loop costs no error and no wrong byte.
. "$TESTDIR/lib.sh"
: "${CACHEFSCTL:?CACHEFSCTL must point at the cachefsctl binary}"
: "${SRCDIR:?SRCDIR must point at the source tree}"
for p in memcached nginx curl rsync; do
	command -v "$p" >/dev/null || cfs_fail "$p is not installed (contrib/run-tests installs it)"
done
cfs_setup
cfs_dirs 1
B=$CFS_BACKEND M=$(realpath "$CFS_MNT")
PREFIX="cfs:"

# --- servers: two memcached, one nginx, all on 127.0.0.1 -----------------
MC1=$(cfs_free_tcp_port)
cfs_server mc1 "$MC1" memcached -u root -l 127.0.0.1 -p "$MC1" -U 0 -m 64
MC2=$(cfs_free_tcp_port)
[ "$MC2" != "$MC1" ] || MC2=$(cfs_free_tcp_port)
cfs_server mc2 "$MC2" memcached -u root -l 127.0.0.1 -p "$MC2" -U 0 -m 64
HTTP=$(cfs_free_tcp_port)
. "$TESTDIR/nginx.sh"
cfs_nginx "$HTTP" "$M" "$PREFIX" "127.0.0.1:$MC1" "127.0.0.1:$MC2"

# mcstat MNT FIELD -- a figure of MNT's memcached tier from status
mcstat() { "$CACHEFSCTL" -m "$1" status --json | jq ".cache.tiers[] | select(.name == \"memcached\") | .$2"; }
mc() { mcstat "$M" "$1"; }

# fetch PATH OUT -- GET the file at PATH (in the mount) through nginx;
# prints the HTTP status and where nginx took the body from.
fetch() {
	local url
	url=$(/usr/bin/python3 -c 'import sys, urllib.parse
print(urllib.parse.quote(sys.argv[1], safe="/"))' "$1")
	curl -s -o "$2" -D "$CFS_TMP/headers" -w '%{http_code} ' \
		"http://127.0.0.1:$HTTP$url" || echo -n "000 "
	tr -d '\r' <"$CFS_TMP/headers" | awk -F': ' 'tolower($1) == "x-cachefs-source" {s = $2} END {print s ? s : "none"}'
}

# --- a tree copied into the mount -----------------------------------------
SRC=$CFS_TMP/src
mkdir -p "$SRC/plain" "$SRC/with space" "$SRC/per%cent" "$SRC/ünïcødé/深い"
i=0
for d in plain "with space" "per%cent" "ünïcødé/深い"; do
	for name in "a.txt" "b c.html" "100%.css" "ß-€.js" "x"; do
		i=$((i + 1))
		head -c $((i * 997 % 70000 + 1)) /dev/urandom >"$SRC/$d/$name"
	done
done
: >"$SRC/plain/empty"
head -c 900000 /dev/urandom >"$SRC/plain/large.bin"     # within 1M
head -c 1500000 /dev/urandom >"$SRC/plain/toolarge.bin" # over memcached's 1M items
chmod -R a+rX "$SRC"
NFILES=$(find "$SRC" -type f | wc -l)

cfs_mount "$B" "$M" "allow_other,memcached=127.0.0.1:$MC1;127.0.0.1:$MC2,memcached_prefix=$PREFIX,revalidate=200ms"
cp -a "$SRC/." "$M/"

# Every file nginx serves is the file; every small one from memcached
# (so both servers hold what nginx's hash picks for it).
from_mc=0
while IFS= read -r -d '' f; do
	rel=${f#"$SRC"}
	read -r code source < <(fetch "$rel" "$CFS_TMP/got")
	[ "$code" = 200 ] || cfs_fail "GET $rel: HTTP $code"
	cmp -s "$f" "$CFS_TMP/got" || cfs_fail "GET $rel: other bytes ($source)"
	if [ "$rel" = /plain/toolarge.bin ]; then
		[ "$source" = fallback ] || cfs_fail "$rel over the item limit came from $source"
	else
		[ "$source" = memcached ] || cfs_fail "GET $rel: from $source, not memcached"
		from_mc=$((from_mc + 1))
	fi
done < <(find "$SRC" -type f -print0)
[ "$("$CACHEFSCTL" -m "$M" status --json | jq .cache.skipped)" -ge 1 ] ||
	cfs_fail "the 1.5 MB file was not counted as skipped"
for port in "$MC1" "$MC2"; do
	n=$(printf 'stats\r\nquit\r\n' | curl -s --max-time 2 "telnet://127.0.0.1:$port" |
		tr -d '\r' | awk '$2 == "curr_items" {print $3}')
	[ "${n:-0}" -gt 4 ] || cfs_fail "memcached on $port holds ${n:-0} items: keys not spread"
done
echo "memcached: cp -a of $NFILES files; nginx served $from_mc from two memcached servers, byte-identical: ok"

# --- changes through the mount: new bytes, or a fallback; never old ones ---
old=$CFS_TMP/old
never_old() { # never_old REL EXPECT -- EXPECT: a file, or "gone"
	local code source
	read -r code source < <(fetch "$1" "$CFS_TMP/got")
	if [ "$2" = gone ]; then
		[ "$code" = 404 ] || cfs_fail "GET $1 after its removal: HTTP $code from $source"
	else
		[ "$code" = 200 ] && cmp -s "$2" "$CFS_TMP/got" ||
			cfs_fail "GET $1: HTTP $code from $source, not the new bytes"
	fi
}
printf 'overwritten in place\n' >"$M/plain/a.txt"
never_old /plain/a.txt "$M/plain/a.txt"
printf 'appended' >>"$M/with space/b c.html"
never_old "/with space/b c.html" "$M/with space/b c.html"
truncate -s 10 "$M/per%cent/100%.css"
never_old "/per%cent/100%.css" "$M/per%cent/100%.css"
mv "$M/plain/x" "$M/plain/moved"
never_old /plain/x gone
never_old /plain/moved "$M/plain/moved"
rm "$M/plain/b c.html"
never_old "/plain/b c.html" gone
mv "$M/ünïcødé" "$M/renamed dir"
never_old "/ünïcødé/深い/a.txt" gone
never_old "/renamed dir/深い/a.txt" "$SRC/ünïcødé/深い/a.txt"
# not readable by others: memcached must not hand it to anyone
chmod 600 "$M/with space/a.txt"
read -r code source < <(fetch "/with space/a.txt" "$CFS_TMP/got")
[ "$source" != memcached ] ||
	cfs_fail "a 0600 file served from memcached (memcached: $(mc errors) errors, down $(mc down), $("$CACHEFSCTL" -m "$M" stats --json | jq .counters.shared_forget_deferred) deferred)"
# rsync writes a temporary file and renames it into place
mkdir "$SRC/rs"
head -c 5000 /dev/urandom >"$SRC/rs/r1"
head -c 7000 /dev/urandom >"$SRC/rs/r 2"
chmod -R a+rX "$SRC/rs"
rsync -a "$SRC/rs" "$M/"
for f in r1 "r 2"; do
	read -r code source < <(fetch "/rs/$f" "$CFS_TMP/got")
	[ "$code $source" = "200 memcached" ] && cmp -s "$SRC/rs/$f" "$CFS_TMP/got" ||
		cfs_fail "rsync'd /rs/$f: HTTP $code from $source"
done
echo "memcached: overwrite, append, truncate, rename, unlink, directory rename, chmod, rsync: never old bytes: ok"

# --- preload: files that reached the backend some other way ----------------
mkdir "$B/pre"
for n in 1 2 3; do head -c $((n * 3000)) /dev/urandom >"$B/pre/p$n"; done
head -c 1500000 /dev/urandom >"$B/pre/big"
chmod -R a+rX "$B/pre"
"$CACHEFSCTL" -m "$M" preload -r "$M/pre" >"$CFS_TMP/preload.out" 2>&1 ||
	{ cat "$CFS_TMP/preload.out" >&2; cfs_fail "preload failed"; }
grep -q "3 stored" "$CFS_TMP/preload.out" && grep -q "1 too big" "$CFS_TMP/preload.out" ||
	{ cat "$CFS_TMP/preload.out" >&2; cfs_fail "preload summary"; }
for n in 1 2 3; do
	read -r code source < <(fetch "/pre/p$n" "$CFS_TMP/got")
	[ "$code $source" = "200 memcached" ] && cmp -s "$B/pre/p$n" "$CFS_TMP/got" ||
		cfs_fail "preloaded /pre/p$n: HTTP $code from $source"
done
echo "memcached: preload: $(tail -1 "$CFS_TMP/preload.out"): ok"

# --- memcached stops answering, then dies: slower, never wrong -------------
# on_mc1 REL -- whether nginx's hash puts REL's key on the first server
on_mc1() {
	/usr/bin/python3 -c 'import sys, zlib
key = (sys.argv[1] + sys.argv[2]).encode()
sys.exit(((zlib.crc32(key) >> 16) & 0x7fff) % 2)' "$PREFIX" "$1"
}
victim=
for f in "$M"/plain/*; do
	rel=${f#"$M"}
	[ "$(stat -c %s "$f")" -lt 100000 ] && on_mc1 "$rel" && { victim=$rel; break; }
done
[ -n "$victim" ] || cfs_fail "no small file in /plain hashes to the first server"
read -r code source < <(fetch "$victim" "$CFS_TMP/got")
[ "$source" = memcached ] || cfs_fail "$victim not in memcached before the outage"

# A second host, cold: no memory tier, so its reads ask memcached.  No
# look-ahead: its listings would take the /pre names before the lookups
# counted below.
cfs_dirs 2
M2=$(realpath "$CFS_MNT")
cfs_mount "$B" "$M2" "lookahead=0,cache_size=0,memcached=127.0.0.1:$MC1;127.0.0.1:$MC2,memcached_prefix=$PREFIX,revalidate=200ms"
mc2() { mcstat "$M2" "$1"; }

# Names found: memcached holds the version of the /pre files' bytes, so
# the second host takes the attributes its backend client got with the
# walk to each name, without asking the backend again; not for a file
# changed on the backend directly since, whose version is another.
printf 'changed behind cachefs' >>"$B/pre/p2"
counter2() { "$CACHEFSCTL" -m "$M2" stats --json | jq ".counters.$1"; }
before=$(counter2 lookup_shared_current)
for n in 1 2 3; do
	[ "$(stat -c '%i %s %Y %Z %f %u %g %h' "$M2/pre/p$n")" = "$(stat -c '%i %s %Y %Z %f %u %g %h' "$B/pre/p$n")" ] ||
		cfs_fail "/pre/p$n: the second host's attributes are not the backend's"
done
[ $(($(counter2 lookup_shared_current) - before)) = 2 ] ||
	cfs_fail "$(($(counter2 lookup_shared_current) - before)) of 2 lookups shown current by memcached"
echo "memcached: a second host took 2 files' attributes as current from memcached's versions, not a changed one: ok"

# Names missing: what one host looked up in vain, another is told by
# memcached, for as long as the directory is unchanged.
mkdir "$B/neg"
# a directory changed within the last 2 s is not trusted for this
stored() { "$CACHEFSCTL" -m "$M" status --json | jq .cache.missing_stores; }
base=$(stored)
settled() { stat "$M/neg/probe$RANDOM$RANDOM" 2>/dev/null; [ "$(stored)" -gt "$base" ]; }
CFS_TIMEOUT=10 cfs_wait_for settled || cfs_fail "no missing name stored in memcached"
for n in 1 2 3; do ! stat "$M/neg/nope$n.php" 2>/dev/null || cfs_fail "nope$n exists"; done
[ "$(stored)" -ge $((base + 4)) ] ||
	cfs_fail "missing names not stored in memcached"
before=$(counter2 lookup_shared_missing)
for n in 1 2 3; do ! stat "$M2/neg/nope$n.php" 2>/dev/null || cfs_fail "nope$n exists on M2"; done
[ $(($(counter2 lookup_shared_missing) - before)) = 3 ] ||
	cfs_fail "$(($(counter2 lookup_shared_missing) - before)) of 3 missing names answered by memcached"
# A file created on the backend directly changes the directory: seen.
echo '<?php' >"$B/neg/nope1.php"
appeared() { stat "$M2/neg/nope1.php" >/dev/null 2>&1 && stat "$M/neg/nope1.php" >/dev/null 2>&1; }
# within revalidate=200ms plus a pass over every inode both mounts hold,
# which under ASan can take seconds: 10 s to see it
CFS_TIMEOUT=10 cfs_wait_for appeared || cfs_fail "a file created on the backend stays missing"
echo "memcached: 3 missing names answered by memcached on a second host; a new file seen: ok"
errors=0 wrong=0 reads=0
read_loop() { # read_loop PASSES ACTION -- ACTION runs after the first pass
	local f rel pass
	for pass in $(seq 1 "$1"); do
		while IFS= read -r -d '' f; do
			rel=${f#"$B"}
			echo 1 >/proc/sys/vm/drop_caches
			if ! cat "$M2$rel" >"$CFS_TMP/loop" 2>>"$CFS_TMP/loop.err"; then
				errors=$((errors + 1))
			elif ! cmp -s "$B$rel" "$CFS_TMP/loop"; then
				wrong=$((wrong + 1))
			fi
			reads=$((reads + 1))
		done < <(find "$B/plain" "$B/per%cent" -type f -size -100k -print0)
		[ "$pass" = 1 ] && $2
	done
}
hits=$(mc2 hits)
stop_mc1() { kill -STOP "${CFS_SERVERS[mc1]}"; }
read_loop 3 stop_mc1
[ "$(mc2 hits)" -gt "$hits" ] || cfs_fail "the second mount read nothing from memcached"
[ "$(mc2 down)" = true ] || cfs_fail "status does not show memcached down while it hangs"
[ "$(mc2 servers_down)" = 1 ] || cfs_fail "$(mc2 servers_down) memcached servers shown down, not 1"
"$CACHEFSCTL" -m "$M2" status | grep -q "memcached .*degraded (1 of 2 servers down)" ||
	cfs_fail "cachefsctl status does not say one memcached server is down"
# The server that answers goes on serving its files meanwhile.
other=
for f in "$M"/plain/*; do
	rel=${f#"$M"}
	[ "$(stat -c %s "$f")" -lt 100000 ] && ! on_mc1 "$rel" && { other=$rel; break; }
done
[ -n "$other" ] || cfs_fail "no small file in /plain hashes to the second server"
hits=$(mc2 hits)
echo 1 >/proc/sys/vm/drop_caches
cmp -s "$B$other" "$M2$other" || cfs_fail "$other: other bytes with one server hung"
[ "$(mc2 hits)" -gt "$hits" ] || cfs_fail "$other not read from the server that answers"
[ "$("$CACHEFSCTL" -m "$M2" status --json | jq -r .state)" = degraded ] ||
	cfs_fail "the mount is not shown degraded with memcached down"
# A change while it hangs: its forget waits, and is delivered first.
printf 'changed during the outage\n' >"$M$victim"
kill -CONT "${CFS_SERVERS[mc1]}"
up() { printf x >>"$M/probe"; [ "$(mc down)" = false ]; } # a write asks it
CFS_TIMEOUT=40 cfs_wait_for up || cfs_fail "memcached not used again after it answered"
never_old "$victim" "$M$victim"
# Killed outright, and started again empty.
kill_mc1() { cfs_server_kill mc1 KILL; }
read_loop 3 kill_mc1
[ "$errors" = 0 ] || { cat "$CFS_TMP/loop.err" >&2; cfs_fail "$errors read errors with memcached down"; }
[ "$wrong" = 0 ] || cfs_fail "$wrong reads gave other bytes with memcached down"
[ "$(mc2 errors)" -ge 1 ] || cfs_fail "no memcached errors counted"
cfs_server mc1 "$MC1" memcached -u root -l 127.0.0.1 -p "$MC1" -U 0 -m 64
up2() { echo 1 >/proc/sys/vm/drop_caches; cat "$M2/plain/large.bin" >/dev/null; [ "$(mc2 down)" = false ]; }
CFS_TIMEOUT=40 cfs_wait_for up2 || cfs_fail "memcached not used again after a restart"
cfs_umount "$M2"
echo "memcached: hung, then killed, during $reads reads: 0 errors, 0 wrong bytes; no old bytes after: ok"
cfs_umount "$M"
