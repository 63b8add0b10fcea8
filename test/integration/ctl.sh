#!/bin/bash
# cachefsctl against a live mount: exit codes, exact operation counts in
# stats and in /metrics (parsed as Prometheus text), config get/set, cache
# on/off, the trace (filters, file, rotation by log reopen and SIGHUP) and
# the log file.
. "$TESTDIR/lib.sh"
: "${CACHEFSCTL:?CACHEFSCTL must point at the cachefsctl binary}"
PY=/usr/bin/python3
cfs_setup
cfs_dirs 1
B=$CFS_BACKEND M=$(realpath "$CFS_MNT")
ctl() { "$CACHEFSCTL" -m "$M" "$@"; }

# expect_rc RC MESSAGE CMD... : CMD exits with RC and prints MESSAGE on stderr.
expect_rc() {
	local want=$1 msg=$2 rc=0
	shift 2
	"$@" >"$CFS_TMP/out" 2>"$CFS_TMP/err" || rc=$?
	[ "$rc" -eq "$want" ] ||
		{ cat "$CFS_TMP/err"; cfs_fail "$* exited $rc, not $want"; }
	grep -qF -- "$msg" "$CFS_TMP/err" ||
		{ cat "$CFS_TMP/err"; cfs_fail "$*: no '$msg' on stderr"; }
	[ "$(wc -l <"$CFS_TMP/err")" -eq 1 ] ||
		{ cat "$CFS_TMP/err"; cfs_fail "$*: more than a one-line message"; }
}

# jget JSON-FILE FILTER
jget() { jq -er "$2" "$1" || cfs_fail "no $2 in $(head -c 300 "$1")"; }

# --- no daemon: exit 3, one line ----------------------------------------
expect_rc 3 "cannot reach the cachefs daemon" "$CACHEFSCTL" -s "$CFS_TMP/nosock" status
expect_rc 3 "is not a cachefs mount point" "$CACHEFSCTL" -m "$CFS_TMP" status
# usage errors: exit 2
expect_rc 2 "unknown command 'frobnicate'" "$CACHEFSCTL" frobnicate
expect_rc 2 "unknown option '--bogus'" "$CACHEFSCTL" -s /x stats --bogus
expect_rc 2 "config set: needs NAME VALUE" "$CACHEFSCTL" -s /x config set attr_timeout
expect_rc 2 "-m and -s exclude each other" "$CACHEFSCTL" -m / -s /x status
expect_rc 2 "trace on: bad pid" "$CACHEFSCTL" -s /x trace on --pid abc

cfs_mount "$B" "$M" "attr_timeout=0,entry_timeout=0,negative_timeout=0,metrics=0,log_file=$CFS_TMP/cachefs.log"
pid=${CFS_PIDS[$M]}

# --- status ---------------------------------------------------------------
ctl status >"$CFS_TMP/status" || cfs_fail "status failed"
grep -q "^$M: ok" "$CFS_TMP/status" || { cat "$CFS_TMP/status"; cfs_fail "status: no header"; }
for k in backend uptime options ops errors cache descriptors open inodes process; do
	grep -qE "^  $k +" "$CFS_TMP/status" || { cat "$CFS_TMP/status"; cfs_fail "status: no $k"; }
done
grep -qF "$(realpath "$B")" "$CFS_TMP/status" || cfs_fail "status: backend missing"
ctl status --json >"$CFS_TMP/status.json" || cfs_fail "status --json failed"
[ "$(jget "$CFS_TMP/status.json" .pid)" = "$pid" ] || cfs_fail "status: wrong pid"
[ "$(jget "$CFS_TMP/status.json" .mountpoint)" = "$M" ] || cfs_fail "status: wrong mount point"
metrics=$(jget "$CFS_TMP/status.json" .metrics)
# Without -m, status covers every cachefs mount (an array in JSON).
# (Other cachefs mounts on this machine may not answer: ignore the status.)
"$CACHEFSCTL" status --json >"$CFS_TMP/all.json" 2>/dev/null || true
jq -e --arg m "$M" 'map(.mountpoint) | index($m) != null' "$CFS_TMP/all.json" >/dev/null ||
	cfs_fail "status without -m does not list $M"

# --- exact counts -----------------------------------------------------------
N=40
echo hello >"$M/present"
ctl stats --reset >/dev/null || cfs_fail "stats --reset failed"
for k in $(seq $N); do mkdir "$M/d$k"; done
for k in $(seq $N); do [ ! -e "$M/missing$k" ] || cfs_fail "missing$k exists"; done
head -c 1048576 /dev/zero >"$M/mib" # one create, 1 MiB written
ctl stats --json >"$CFS_TMP/stats.json" || cfs_fail "stats --json failed"
[ "$(jget "$CFS_TMP/stats.json" .ops.mkdir.count)" -eq $N ] || cfs_fail "mkdir count is not $N"
[ "$(jget "$CFS_TMP/stats.json" .ops.mkdir.errors)" -eq 0 ] || cfs_fail "mkdir errors"
[ "$(jget "$CFS_TMP/stats.json" .ops.create.count)" -eq 1 ] || cfs_fail "create count is not 1"
[ "$(jget "$CFS_TMP/stats.json" .ops.write.bytes)" -eq 1048576 ] || cfs_fail "write bytes are not 1 MiB"
# Missing names: each mkdir and the create look their name up first, and
# each missing$k once: 2N + 1 lookups answered ENOENT.
[ "$(jget "$CFS_TMP/stats.json" .ops.lookup.errors)" -eq $((2 * N + 1)) ] ||
	cfs_fail "lookup errors are not $((2 * N + 1))"
[ "$(jget "$CFS_TMP/stats.json" .errors.ENOENT)" -eq $((2 * N + 1)) ] ||
	cfs_fail "ENOENT count is not $((2 * N + 1))"
hist=$(jq '[.ops.mkdir.histogram[].count] | add' "$CFS_TMP/stats.json")
[ "$hist" -eq $N ] || cfs_fail "mkdir histogram holds $hist, not $N"
# --reset: a new count starts from zero
ctl stats --json --reset >/dev/null
ctl stats --json >"$CFS_TMP/stats2.json"
[ "$(jget "$CFS_TMP/stats2.json" .ops.mkdir.count)" -eq 0 ] || cfs_fail "reset did not reset"
ctl stats >"$CFS_TMP/stats.txt" || cfs_fail "stats failed"
grep -q "^# ops" "$CFS_TMP/stats.txt" && grep -q "^# counters" "$CFS_TMP/stats.txt" ||
	cfs_fail "stats: sections missing"

# --- /metrics, as Prometheus text ---------------------------------------
curl -sf "http://$metrics/metrics" >"$CFS_TMP/metrics" || cfs_fail "no /metrics at $metrics"
"$PY" - "$CFS_TMP/metrics" "$N" <<'EOF' || cfs_fail "/metrics does not parse or is wrong"
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
n = int(sys.argv[2])
fams = {f.name: f for f in text_string_to_metric_families(text)}
def sample(fam, name, **labels):
    for s in fams[fam].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise SystemExit("no sample %s %s" % (name, labels))
# totals since the mount: the N mkdirs above, untouched by --reset
assert sample("cachefs_ops", "cachefs_ops_total", op="mkdir") == n, "mkdir"
assert sample("cachefs_op_duration_seconds", "cachefs_op_duration_seconds_count", op="mkdir") == n
assert sample("cachefs_op_duration_seconds", "cachefs_op_duration_seconds_bucket", op="mkdir", le="+Inf") == n
assert sample("cachefs_errors", "cachefs_errors_total", errno="ENOENT") >= n
assert sample("cachefs_process_resident_memory_bytes", "cachefs_process_resident_memory_bytes") > 0
assert fams["cachefs_op_duration_seconds"].type == "histogram"
print("metrics: %d families parsed" % len(fams))
EOF
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$metrics/other")" = 404 ] ||
	cfs_fail "/other is not 404"

# --- config -------------------------------------------------------------
[ "$(ctl config get attr_timeout)" = 0s ] || cfs_fail "config get attr_timeout"
ctl config set attr_timeout 90s >/dev/null || cfs_fail "config set attr_timeout"
[ "$(ctl config get attr_timeout)" = 90s ] || cfs_fail "attr_timeout not changed"
ctl config set attr_timeout 0 >/dev/null
ctl config get >"$CFS_TMP/config" || cfs_fail "config get"
grep -qE '^threads +32 ' "$CFS_TMP/config" || cfs_fail "config get lists no threads"
expect_rc 1 "cannot be changed while mounted" ctl config set threads 4
expect_rc 1 "no option 'bogus'" ctl config set bogus 1
expect_rc 1 "is not a duration" ctl config set attr_timeout soon
expect_rc 1 "no option 'bogus'" ctl config get bogus
expect_rc 1 "unknown command 'nope'" ctl call nope

# --- cache on/off ----------------------------------------------------------
# With long timeouts the kernel answers repeated stats itself; with the
# cache off every one reaches the daemon.
ctl config set attr_timeout 1h >/dev/null
ctl config set entry_timeout 1h >/dev/null
stat "$M/present" >/dev/null
ops() { ctl stats --json | jq '.ops.getattr.count + .ops.lookup.count'; }
ctl stats --reset >/dev/null
for k in $(seq 10); do stat "$M/present" >/dev/null; done
[ "$(ops)" -eq 0 ] || cfs_fail "cache on: stats reached the daemon"
[ "$(ctl cache off)" = "cache off" ] || cfs_fail "cache off"
[ "$(ctl config get cache)" = off ] || cfs_fail "cache is not off"
ctl stats --reset >/dev/null
for k in $(seq 10); do stat "$M/present" >/dev/null; done
[ "$(ops)" -ge 10 ] || cfs_fail "cache off: stats did not reach the daemon"
ctl cache on >/dev/null
stat "$M/present" >/dev/null
ctl stats --reset >/dev/null
for k in $(seq 10); do stat "$M/present" >/dev/null; done
[ "$(ops)" -eq 0 ] || cfs_fail "cache on again: stats reached the daemon"
ctl config set attr_timeout 0 >/dev/null
ctl config set entry_timeout 0 >/dev/null

# --- trace ------------------------------------------------------------------
mkdir "$M/traced" "$M/other"
echo in >"$M/traced/f"
echo out >"$M/other/f"
[ "$(ctl trace on --path /traced)" = "trace on, below /traced" ] || cfs_fail "trace on"
cat "$M/traced/f" "$M/other/f" >/dev/null
ctl trace show >"$CFS_TMP/trace" || cfs_fail "trace show"
grep -qE " cat read /traced/f size=[0-9]+ off=0 res=0 " "$CFS_TMP/trace" ||
	{ cat "$CFS_TMP/trace"; cfs_fail "trace: no read of /traced/f by cat"; }
! grep -q "/other" "$CFS_TMP/trace" || cfs_fail "trace: /other recorded despite --path"
# --pid: the shell's own stat is traced, a child's is not.
ctl trace on --pid $$ >/dev/null
[ -e "$M/traced/bypid" ] || true
stat "$M/traced/notme" 2>/dev/null || true
ctl trace show --json -n 1000 >"$CFS_TMP/trace.json"
jq -e --arg p $$ 'select(.path == "/traced/bypid") | .pid == ($p | tonumber) and .op == "lookup" and .error == "ENOENT"' \
	"$CFS_TMP/trace.json" >/dev/null || cfs_fail "trace --pid: own lookup missing"
! grep -q notme "$CFS_TMP/trace.json" || cfs_fail "trace --pid: other process recorded"
# trace file, rotated by log reopen and by SIGHUP
ctl config set trace_file "$CFS_TMP/trace.log" >/dev/null || cfs_fail "set trace_file"
ctl trace on >/dev/null
# (files made on the backend: the first read through the mount reaches
# the daemon, whatever the kernel kept of earlier ones)
echo in >"$B/traced/t1"
cat "$M/traced/t1" >/dev/null
grep -q " cat read /traced/t1 " "$CFS_TMP/trace.log" || cfs_fail "trace file: no read"
mv "$CFS_TMP/trace.log" "$CFS_TMP/trace.log.1"
ctl log reopen >/dev/null || cfs_fail "log reopen"
echo out >"$B/other/t2"
cat "$M/other/t2" >/dev/null
grep -q " cat read /other/t2 " "$CFS_TMP/trace.log" || cfs_fail "trace file not reopened"
! grep -q "/other/t2" "$CFS_TMP/trace.log.1" || cfs_fail "rotated trace file still written"
mv "$CFS_TMP/trace.log" "$CFS_TMP/trace.log.2"
mv "$CFS_TMP/cachefs.log" "$CFS_TMP/cachefs.log.1"
kill -HUP "$pid"
cfs_wait_for test -e "$CFS_TMP/trace.log" || cfs_fail "SIGHUP did not reopen the trace file"
cfs_wait_for test -e "$CFS_TMP/cachefs.log" || cfs_fail "SIGHUP did not reopen the log file"
kill -0 "$pid" || cfs_fail "SIGHUP killed the daemon"
ctl trace off >/dev/null
[ "$(jq -r .trace.on <(ctl status --json))" = false ] || cfs_fail "trace still on"
grep -q "serving $(realpath "$B") at $M" "$CFS_TMP/cachefs.log.1" || cfs_fail "log file: no start message"
ctl config set log_level info >/dev/null
ctl log reopen >/dev/null
cfs_wait_for grep -q "log and trace files reopened" "$CFS_TMP/cachefs.log" ||
	cfs_fail "log file: reopen not logged"

# --- accurate under load: counts match while status is polled ---------------
ctl stats --reset >/dev/null
(for k in $(seq 300); do mkdir "$M/load$k"; rmdir "$M/load$k"; done) &
load=$!
while kill -0 $load 2>/dev/null; do
	ctl status >/dev/null || cfs_fail "status failed under load"
	ctl stats --json >/dev/null || cfs_fail "stats failed under load"
done
wait $load || cfs_fail "load loop failed"
ctl stats --json >"$CFS_TMP/load.json"
[ "$(jget "$CFS_TMP/load.json" .ops.mkdir.count)" -eq 300 ] &&
	[ "$(jget "$CFS_TMP/load.json" .ops.rmdir.count)" -eq 300 ] ||
	cfs_fail "under load: mkdir/rmdir counts are not 300"

cfs_umount "$M"
[ ! -e "$(jq -r .socket "$CFS_TMP/status.json")" ] || cfs_fail "control socket left behind"
expect_rc 3 "is not a cachefs mount point" "$CACHEFSCTL" -m "$M" status
echo "ctl: counts, metrics, config, cache, trace and logs check out"
