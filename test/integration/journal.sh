#!/bin/bash
# The change journal on a real mount: one record per change of every kind
# before the call returns, streamed by "cachefsctl watch" (past, live,
# filtered, with a cursor that survives a restart); nothing lost to
# kill -9 in a write storm; torn and corrupt records recovered; a full
# journal refuses changes (or drops, as configured), never silently.
. "$TESTDIR/lib.sh"
: "${CACHEFSCTL:?CACHEFSCTL must point at the cachefsctl binary}"
cfs_setup
cfs_dirs 1
B=$CFS_BACKEND M=$(realpath "$CFS_MNT") S=$CFS_TMP/state
PY=/usr/bin/python3
CTL() { "$CACHEFSCTL" -m "$M" "$@"; }

# The journal's records from SEQ on (default 1), as op<TAB>path<TAB>path2.
records() {
	CTL watch --json --no-follow --since "${1:-1}" >"$CFS_TMP/w.json" ||
		cfs_fail "watch --no-follow failed"
	$PY - "$CFS_TMP/w.json" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if "seq" in e:
        print(f'{e["op"]}\t{e["path"]}\t{e.get("path2", "-")}')
EOF
}

# journal_status FIELD -- a field of status's "journal" object.
journal_status() {
	CTL status --json | $PY -c '
import json, sys
v = json.load(sys.stdin)["journal"][sys.argv[1]]
print(json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else v)' "$1"
}

cfs_mount "$B" "$M" "state_dir=$S"

# --- every kind of change, in order, with its paths -------------------------
$PY "$TESTDIR/journal_ops.py" "$M" >"$CFS_TMP/want" || cfs_fail "ops failed"
records >"$CFS_TMP/got"
diff "$CFS_TMP/want" "$CFS_TMP/got" >&2 ||
	cfs_fail "the journal does not hold exactly the changes made"
n=$(wc -l <"$CFS_TMP/want")
[ "$(journal_status newest)" -eq "$n" ] || cfs_fail "newest is not $n"
# identities: the rename's record names the inode that moved
CTL watch --json --no-follow --since 1 | $PY -c '
import json, os, sys
ev = [json.loads(l) for l in sys.stdin if "\"seq\"" in l]
g = [e for e in ev if e["op"] == "create" and e["path"] == "/d/g"][0]
st = os.stat(sys.argv[1] + "/renamed dir %/g")
assert g["ino"] == st.st_ino, (g, st.st_ino)
assert g["class"] == "entry" and g["handle"], g
assert all(e["class"] == {"write": "data", "chmod": "metadata"}.get(e["op"], e["class"]) for e in ev)
assert [e["seq"] for e in ev] == list(range(1, len(ev) + 1))
' "$B" || cfs_fail "identities or classes wrong"
# reads, lookups and failed changes leave no record
cat "$M/renamed dir %/g" >/dev/null
ls -laR "$M" >/dev/null
mkdir "$M/renamed dir %" 2>/dev/null && cfs_fail "mkdir over a directory"
[ "$(journal_status newest)" -eq "$n" ] || cfs_fail "a non-change was recorded"
echo "ok: $n changes of every kind recorded in order"

# --- runs of writes take one record while nobody has read it ---------------
$PY -c '
import os, sys
fd = os.open(sys.argv[1] + "/big", os.O_CREAT | os.O_WRONLY, 0o644)
for k in range(256):
    os.write(fd, b"x" * 4096)
os.close(fd)' "$M"
records $((n + 1)) >"$CFS_TMP/got"
printf 'create\t/big\t-\nwrite\t/big\t-\n' | diff - "$CFS_TMP/got" >&2 ||
	cfs_fail "256 writes did not take one record"
[ "$(journal_status coalesced)" -ge 255 ] || cfs_fail "coalesced not counted"
# once read, the next write is a new record
echo more >>"$M/big"
records $((n + 2)) | grep -c '^write' | grep -qx 2 ||
	cfs_fail "a write after the record was read was coalesced into it"
n=$(journal_status newest)
echo "ok: a run of writes is one record until read"

# --- live, filtered, from a cursor ------------------------------------------
CTL watch --json --path "/live" --cursor t1 >"$CFS_TMP/live" 2>&1 &
watcher=$!
cfs_wait_for grep -q . <(CTL cursor list --json) 2>/dev/null || true
cfs_wait_for sh -c "'$CACHEFSCTL' -m '$M' cursor list | grep -q t1" ||
	cfs_fail "the watch's cursor was not made"
mkdir "$M/live" "$M/elsewhere"
echo a >"$M/live/a"
mv "$M/live/a" "$M/elsewhere/a"  # path2 outside, path inside: shown
echo b >"$M/elsewhere/b"         # not shown
touch "$M/lively"                # a prefix, not below it: not shown
cfs_wait_for grep -q '"op":"rename"' "$CFS_TMP/live" ||
	{ cat "$CFS_TMP/live"; cfs_fail "the live watch did not see the rename"; }
kill "$watcher"
wait "$watcher" 2>/dev/null
$PY - "$CFS_TMP/live" <<'EOF' || cfs_fail "the path filter is wrong"
import json, sys
got = [(e["op"], e["path"]) for e in map(json.loads, open(sys.argv[1])) if "seq" in e]
assert got == [("mkdir", "/live"), ("create", "/live/a"), ("write", "/live/a"),
               ("rename", "/live/a")], got
EOF
echo "ok: a live watch sees changes below its path as they happen"

# --- the C API example, as a user would run it -----------------------------
EX=${BUILDDIR:?}/contrib/examples/watch-events
[ -x "$EX" ] || cfs_fail "no example program at $EX"
"$EX" "$M" ex >"$CFS_TMP/ex.out" 2>"$CFS_TMP/ex.err" &
ex=$!
cfs_wait_for grep -q "^watch-events: from" "$CFS_TMP/ex.err" ||
	{ cat "$CFS_TMP/ex.err"; cfs_fail "the example did not subscribe"; }
mkdir "$M/ex"
mv "$M/ex" "$M/ex2"
cfs_wait_for grep -q " rename /ex -> /ex2$" "$CFS_TMP/ex.out" ||
	{ cat "$CFS_TMP/ex.out" "$CFS_TMP/ex.err"; cfs_fail "the example missed the rename"; }
grep -q " mkdir /ex$" "$CFS_TMP/ex.out" || cfs_fail "the example missed the mkdir"
# it acked what it printed: a second run starts after it
cfs_wait_for sh -c "'$CACHEFSCTL' -m '$M' cursor list --json | grep -q '\"lag_records\": *0'" ||
	cfs_fail "the example did not ack"
CTL cursor list --json | jq -e '.cursors[] | select(.name == "ex") | .lag_bytes == 0' >/dev/null ||
	cfs_fail "a cursor with nothing behind lags in bytes"
kill "$ex"
wait "$ex" 2>/dev/null
rmdir "$M/ex2"
"$EX" "$M" ex >"$CFS_TMP/ex.out" 2>"$CFS_TMP/ex.err" &
ex=$!
cfs_wait_for grep -q " rmdir /ex2$" "$CFS_TMP/ex.out" ||
	{ cat "$CFS_TMP/ex.out" "$CFS_TMP/ex.err"; cfs_fail "the second run missed the rmdir"; }
kill "$ex"
wait "$ex" 2>/dev/null
[ "$(wc -l <"$CFS_TMP/ex.out")" -eq 1 ] ||
	{ cat "$CFS_TMP/ex.out"; cfs_fail "the second run repeated acked events"; }
CTL cursor remove ex >/dev/null
echo "ok: the libcachefs example streams, acks, and resumes after its ack"

# --- a gap is caught up with a crawl: changes --since ----------------------
mkdir -p "$M/crawl/old" && echo old >"$M/crawl/old/f"
t0=$(date +%s)
cfs_wait_for sh -c "[ \$(date +%s) -gt $t0 ]" || cfs_fail "the clock stands still"
since=$(date +%s)
echo new >"$M/crawl/new"
echo changed >>"$M/crawl/old/f"
CTL changes --since "@$since" /crawl >"$CFS_TMP/crawl" || cfs_fail "changes failed"
printf '/crawl\n/crawl/new\n/crawl/old\n/crawl/old/f\n' >"$CFS_TMP/want"
# /crawl/old itself did not change: its entry did not
grep -vx /crawl/old "$CFS_TMP/want" | diff - "$CFS_TMP/crawl" >&2 ||
	cfs_fail "changes --since listed the wrong paths"
CTL changes --since "@$((since + 3600))" /crawl | grep -q . &&
	cfs_fail "changes listed paths older than --since"
CTL changes --since yesterday 2>"$CFS_TMP/err" && cfs_fail "a bad TIME was taken"
grep -q "TIME" "$CFS_TMP/err" || grep -qi "time" "$CFS_TMP/err" ||
	cfs_fail "unclear: $(cat "$CFS_TMP/err")"
echo "ok: changes --since lists what changed after a time"

# --- the cursor: acked records are not sent again, across a restart -------
last=$(journal_status newest)
$PY - "$M" "$last" <<'EOF' || cfs_fail "ack over the stream failed"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
import subprocess
sock = subprocess.run([sys.argv[0] if False else "true"], check=True)
EOF
CTL watch --json --no-follow --cursor t2 --since 1 >/dev/null ||
	cfs_fail "watch with a new cursor failed"
# t2 was made at 0 and acks what it printed
acked=$(CTL cursor list --json | $PY -c '
import json, sys
print([c for c in json.load(sys.stdin)["cursors"] if c["name"] == "t2"][0]["acked"])')
[ "$acked" -eq "$last" ] || cfs_fail "t2 acked $acked, not $last"
cfs_umount "$M"
cfs_mount "$B" "$M" "state_dir=$S"
touch "$M/after-restart"
CTL watch --json --no-follow --cursor t2 >"$CFS_TMP/resumed" ||
	cfs_fail "watch after restart failed"
# touch: a create and a utimens, and nothing from before the ack
grep '"seq"' "$CFS_TMP/resumed" | grep -vq '"path":"/after-restart"' &&
	{ cat "$CFS_TMP/resumed"; cfs_fail "the cursor did not resume after its ack"; }
grep -q '"op":"create","class":"entry","path":"/after-restart"' "$CFS_TMP/resumed" ||
	cfs_fail "the change after the restart is missing"
CTL cursor remove t2 >/dev/null || cfs_fail "cursor remove failed"
CTL cursor remove t2 2>"$CFS_TMP/err" && cfs_fail "removed a missing cursor"
grep -q "no cursor" "$CFS_TMP/err" || cfs_fail "unclear: $(cat "$CFS_TMP/err")"
echo "ok: a cursor resumes after its acked record across a restart"

# --- the protocol refuses what makes no sense, and stays up ----------------
SOCK=$(CTL status --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["socket"])')
$PY - "$SOCK" <<'EOF' || cfs_fail "bad watch requests were not refused clearly"
import json, socket, sys

def session(*reqs):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.settimeout(10)
    f = s.makefile("rwb")
    out = []
    for r in reqs:
        f.write(json.dumps(r).encode() + b"\n")
        f.flush()
        while True:
            line = json.loads(f.readline())
            if "ok" in line:
                out.append(line)
                break
    s.close()
    return out

def refused(r, words):
    assert r["ok"] is False and words in r["error"], r

w = {"cmd": "watch", "args": {"follow": True}}
refused(session({"cmd": "watch", "args": {"cursor": "bad/name"}})[0], "bad cursor name")
refused(session({"cmd": "watch", "args": {"since": -1}})[0], "since")
refused(session({"cmd": "watch", "args": {"path": "rel"}})[0], "path must start")
refused(session({"cmd": "watch", "args": {"bogus": 1}})[0], "bad arguments")
refused(session({"cmd": "ack", "args": {"seq": 1}})[0], "only on a watch stream")
ok, r = session(w, {"cmd": "ack", "args": {"seq": 1}})
assert ok["ok"], ok
refused(r, "no cursor")
ok, r = session(w, {"cmd": "status"})
refused(r, "only ack")
w = {"cmd": "watch", "args": {"cursor": "probe", "since": 1}}
ok, r = session(w, {"cmd": "ack", "args": {"seq": 10**12}})
refused(r, "not sent yet")
EOF
CTL cursor remove probe >/dev/null || cfs_fail "probe cursor"
CTL status >/dev/null || cfs_fail "the daemon did not survive bad requests"
echo "ok: malformed watch requests get clear errors"

# --- kill -9 in a write storm loses no record of a returned call -----------
# Writers log each change once its call returned; the daemon is killed at
# a random moment, remounted, and killed again, for STORM seconds and at
# least 5 kills.  After, every logged change must be in the journal, and
# each writer's changes in the order they returned.
STORM=${JOURNAL_STORM_SECONDS:-30}
base=$(journal_status newest)
mkdir "$M/storm"
: >"$CFS_TMP/done"
storm_round() { # $1: round number; writers until the daemon dies
	$PY - "$M" "$CFS_TMP/done" "$1" <<'EOF' &
import os, sys, threading
mnt, log, rnd = sys.argv[1], sys.argv[2], sys.argv[3]
lock = threading.Lock()
out = open(log, "a", buffering=1)

def writer(t):
    try:
        for k in range(1000000):
            name = f"/storm/r{rnd}t{t}-{k}"
            fd = os.open(mnt + name, os.O_CREAT | os.O_WRONLY, 0o644)
            with lock:
                out.write(f"{rnd}.{t}\tcreate\t{name}\n")
            os.write(fd, b"x")
            with lock:
                out.write(f"{rnd}.{t}\twrite\t{name}\n")
            os.close(fd)
            if k % 3 == 0:
                os.rename(mnt + name, mnt + name + ".r")
                with lock:
                    out.write(f"{rnd}.{t}\trename\t{name}\n")
    except OSError:
        pass  # the daemon died under us

ts = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
for t in ts: t.start()
for t in ts: t.join()
EOF
}
kills=0
storm_end=$((SECONDS + STORM))
while [ "$kills" -lt 5 ] || [ "$SECONDS" -lt "$storm_end" ]; do
	pid=${CFS_PIDS[$M]}
	storm_round "$kills"
	writers=$!
	sleep "$($PY -c 'import random; print(round(random.uniform(1.5, 5), 2))')"
	disown "$pid" # (or bash reports the kill)
	kill -9 "$pid"
	kills=$((kills + 1))
	wait "$writers"
	cfs_wait_for sh -c "! kill -0 $pid 2>/dev/null" || cfs_fail "kill -9 $pid"
	unset "CFS_PIDS[$M]"
	fusermount3 -u -z "$M" 2>/dev/null || umount -l "$M"
	cfs_wait_for sh -c "! cut -d' ' -f2 /proc/self/mounts | grep -qx '$M'" ||
		cfs_fail "the dead mount stayed"
	cfs_mount "$B" "$M" "state_dir=$S"
done
CTL watch --json --no-follow --since "$((base + 1))" >"$CFS_TMP/w.json" ||
	cfs_fail "watch after the storm failed"
$PY - "$CFS_TMP/done" "$CFS_TMP/w.json" <<'EOF' || cfs_fail "changes acknowledged to the writers are missing or out of order"
import json, sys
where = {}
for e in map(json.loads, open(sys.argv[2])):
    if "seq" in e:
        where.setdefault((e["op"], e["path"]), e["seq"])
last, n, missing, disorder = {}, 0, [], []
for line in open(sys.argv[1]):
    who, op, path = line.rstrip("\n").split("\t")
    n += 1
    seq = where.get((op, path))
    if seq is None:
        missing.append(line)
        continue
    if seq < last.get(who, 0):
        disorder.append(line)
    last[who] = seq
print(f"{n} acknowledged changes, {len(missing)} missing, {len(disorder)} out of order")
if missing or disorder:
    print("".join((missing + disorder)[:10]), file=sys.stderr)
    sys.exit(1)
EOF
echo "ok: $kills kills with kill -9 in ${STORM}s of writes lost no acknowledged change"
cfs_umount "$M"

# --- a torn tail is cut, a damaged record in the middle skipped ------------
seg=$(ls "$S"/*.seg | tail -1)
# damage a path byte of the 10th record from the end, and leave the start
# of a record that was never finished
victim=$($PY - "$seg" <<'EOF'
import struct, sys
path = sys.argv[1]
b = bytearray(open(path, "rb").read())
offs, off = [], 0
while off + 57 <= len(b):
    offs.append(off)
    off += struct.unpack_from("<H", b, off + 2)[0]
victim = offs[-10]
b[victim + 60] ^= 0xff
b += b"\xc7\x01\x40\x00"
open(path, "wb").write(bytes(b))
print(struct.unpack_from("<Q", b, victim + 12)[0])
EOF
) || cfs_fail "could not damage the segment"
newest=$($PY - "$seg" <<'EOF'
import struct, sys
b = open(sys.argv[1], "rb").read()
off, seq = 0, 0
while off + 57 <= len(b):
    seq = struct.unpack_from("<Q", b, off + 12)[0]
    off += struct.unpack_from("<H", b, off + 2)[0]
print(seq)
EOF
)
cfs_mount "$B" "$M" "state_dir=$S"
[ "$(journal_status torn_truncated)" -ge 1 ] || cfs_fail "the torn tail was not counted"
[ "$(journal_status corrupt_skipped)" -ge 1 ] || cfs_fail "the damage was not counted"
[ "$(journal_status newest)" -eq "$newest" ] || cfs_fail "records after the damage were lost"
grep -qiE "torn|damaged|corrupt" "${CFS_LOGS[$M]}" || cfs_fail "recovery was not logged"
CTL watch --json --no-follow --since $((victim - 1)) >"$CFS_TMP/w.json"
grep -q "\"gap\":{\"from\":$victim,\"to\":$victim}" "$CFS_TMP/w.json" ||
	{ head -3 "$CFS_TMP/w.json"; cfs_fail "no gap for the damaged record $victim"; }
grep -q "\"seq\":$((victim + 1))," "$CFS_TMP/w.json" ||
	cfs_fail "the record after the damaged one is missing"
echo x >"$M/after-recovery"
[ "$(journal_status newest)" -eq $((newest + 2)) ] || cfs_fail "appending after recovery"
records $((newest + 1)) | cut -f1,2 | tr '\n' ' ' | grep -qx "create./after-recovery write./after-recovery " ||
	cfs_fail "the records after recovery are not the new ones"
cfs_umount "$M"
echo "ok: torn tail cut, damaged record $victim skipped with a gap, the rest kept"

# --- full: refused (fail) or dropped with a gap (drop), never silent ------
long=$(printf 'n%.0s' $(seq 200))
S2=$CFS_TMP/state2
cfs_mount "$B" "$M" "state_dir=$S2,journal_max=256K"
CTL watch --no-follow --cursor holder >/dev/null || cfs_fail "holder cursor"
refused=0
for k in $(seq 4000); do
	if ! touch "$M/storm/$long-$k" 2>"$CFS_TMP/err"; then
		refused=$k
		break
	fi
done
[ "$refused" -gt 0 ] || cfs_fail "a held journal_max=256K journal never filled"
grep -q "No space left" "$CFS_TMP/err" || cfs_fail "not ENOSPC: $(cat "$CFS_TMP/err")"
[ -e "$M/storm/$long-$refused" ] && cfs_fail "the refused change was made"
[ "$(journal_status full)" = true ] || cfs_fail "status does not say full"
[ "$(journal_status alarm)" = true ] || cfs_fail "no alarm"
CTL status | grep -qi "degraded" || cfs_fail "state not degraded while full"
grep -q "journal.*full" "${CFS_LOGS[$M]}" || cfs_fail "full was not logged"
cat "$M/storm/r0t0-1" >/dev/null || cfs_fail "reads must go on while full"
CTL cursor remove holder >/dev/null
touch "$M/storm/after-full" || cfs_fail "changes still refused after the cursor went"
[ "$(journal_status full)" = false ] || cfs_fail "still full"
cfs_umount "$M"
echo "ok: a full journal refused change $refused with ENOSPC until its cursor went"

S3=$CFS_TMP/state3
cfs_mount "$B" "$M" "state_dir=$S3,journal_max=256K,journal_full=drop"
CTL watch --no-follow --cursor slow >/dev/null || cfs_fail "slow cursor"
for k in $(seq 3000); do
	touch "$M/storm/$long-d$k" || cfs_fail "journal_full=drop refused a change"
done
CTL watch --json --no-follow --cursor slow >"$CFS_TMP/w.json"
head -1 "$CFS_TMP/w.json" | grep -q '"gap":{"from":1,' ||
	{ head -2 "$CFS_TMP/w.json"; cfs_fail "the slow cursor got no gap"; }
grep -q "dropped its oldest segment" "${CFS_LOGS[$M]}" || cfs_fail "the drop was not logged"
cfs_umount "$M"

# Without cursors the journal is a window of the newest changes.
S4=$CFS_TMP/state4
cfs_mount "$B" "$M" "state_dir=$S4,journal_max=256K"
for k in $(seq 3000); do
	touch "$M/storm/$long-w$k" || cfs_fail "a cursorless journal refused a change"
done
[ "$(journal_status oldest)" -gt 1 ] || cfs_fail "the window did not move"
[ "$(du -sb "$S4" | cut -f1)" -le $((256 * 1024 + 8192)) ] || cfs_fail "over journal_max"
CTL watch --json --no-follow --since 1 | head -1 | grep -q '"gap"' || cfs_fail "no gap from 1"
cfs_umount "$M"
echo "ok: journal_full=drop gives a lagging cursor a gap; without cursors, a window"

# --- journal=off, and a journal two daemons would share -------------------
cfs_mount "$B" "$M" "journal=off"
CTL watch --no-follow 2>"$CFS_TMP/err" && cfs_fail "watch with the journal off"
grep -q "journal is off" "$CFS_TMP/err" || cfs_fail "unclear: $(cat "$CFS_TMP/err")"
touch "$M/storm/off" || cfs_fail "a change with the journal off"
cfs_umount "$M"

cfs_mount "$B" "$M" "state_dir=$S"
mkdir -p "$CFS_TMP/m2"
if "$CACHEFS" -f "$B" "$CFS_TMP/m2" -o "state_dir=$S" 2>"$CFS_TMP/err"; then
	cfs_fail "two daemons opened one journal"
fi
grep -q "in use by another cachefs" "$CFS_TMP/err" || cfs_fail "unclear: $(cat "$CFS_TMP/err")"
cfs_umount "$M"
echo "ok: journal=off and a shared state_dir are refused clearly"
