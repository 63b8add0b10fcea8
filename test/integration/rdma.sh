#!/bin/bash
# RDMA reads (-o rdma) over libfabric's tcp;ofi_rxm on loopback, against
# a real mount: a 1 GiB file (RDMA_BIG_MIB) read by four cachefs-get at
# once comes out identical; reads at unaligned offsets and past the end
# through the C API (rdma_check), in every buffer mode; a small file comes
# from the cache tiers; a wrong or missing secret is refused and counted;
# paths that leave the tree, and files nobody may read, are refused;
# hostile messages get an error or a disconnect; garbage on the port and
# clients killed mid-transfer or idle leave the server serving; a burst
# over the per-client limits is refused in part; a non-loopback address
# without a secret does not mount; and SIGTERM still unmounts.
. "$TESTDIR/lib.sh"
cfs_setup
: "${CACHEFS_GET:?CACHEFS_GET must point at cachefs-get}"
: "${RDMA_CHECK:?RDMA_CHECK must point at rdma_check}"
: "${CACHEFSCTL:?}"
for c in jq python3 sha256sum; do
	command -v "$c" >/dev/null || { echo "SKIP: $c not found"; exit 77; }
done
if ! fi_info -p "tcp;ofi_rxm" -t FI_EP_RDM >/dev/null 2>&1; then
	echo "SKIP: libfabric has no tcp;ofi_rxm provider (fi_info)"
	exit 77
fi

cfs_dirs 1
B=$CFS_BACKEND M=$CFS_MNT
S=$CFS_TMP/secret W=$CFS_TMP/wrong
printf 'rdma-test-%s%s\n' "$RANDOM" "$RANDOM" >"$S"
printf 'not-the-secret\n' >"$W"
chmod 600 "$S" "$W"

# The tree: files, links that stay inside and links that leave it.
mkdir -p "$CFS_TMP/outside" "$B/sub" "$B/closed"
echo secret >"$CFS_TMP/outside/secret.txt"
echo inside >"$B/inside.txt"
ln -s inside.txt "$B/rel"
ln -s ../inside.txt "$B/sub/up"
ln -s ../../outside/secret.txt "$B/sub/out"
ln -s "$CFS_TMP/outside/secret.txt" "$B/abs"
ln -s /proc/self/root/etc/passwd "$B/magic"
ln -s ../.. "$B/dotdot"
echo private >"$B/private"
chmod 600 "$B/private"
echo hidden >"$B/closed/file"
chmod 700 "$B/closed"
head -c 4000 /dev/urandom >"$B/small"
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >"$B/medium"
chmod 644 "$B/small" "$B/medium"
# 1 GiB (less under a sanitizer, where the suite runs it a second time),
# not sparse: AES-CTR is a fast source of incompressible bytes (openssl
# dies of SIGPIPE at the end)
BIG_MIB=${RDMA_BIG_MIB:-1024}
# (the burst reads the first 100 MiB)
[[ $BIG_MIB =~ ^[1-9][0-9]*$ ]] && [ "$BIG_MIB" -ge 128 ] ||
	cfs_fail "RDMA_BIG_MIB=$BIG_MIB: want a number of MiB, 128 or more"
BIG=$((BIG_MIB * 1048576))
{ openssl enc -aes-128-ctr -pass pass:cachefs -nosalt -pbkdf2 \
	</dev/zero 2>/dev/null || true; } | head -c "$BIG" >"$B/big"
if [ "$(stat -c %s "$B/big")" != "$BIG" ]; then
	head -c "$BIG" /dev/urandom >"$B/big"
fi
[ "$(stat -c %s "$B/big")" = "$BIG" ] || cfs_fail "no $BIG_MIB MiB file"

PORT=$(cfs_free_tcp_port)
A=127.0.0.1:$PORT
ctl() { "$CACHEFSCTL" -m "$M" "$@"; }
rdma() { ctl status --json | jq -r ".rdma.$1"; }
counter() { ctl stats --json | jq -r ".counters.$1"; }
get() { timeout 60 "$CACHEFS_GET" "$@"; }
check() { timeout 60 "$RDMA_CHECK" "$A" "$@"; }

# --- a non-loopback address needs a secret ---------------------------------

out=$(timeout 20 "$CACHEFS" -f "$B" "$M" \
	-o "rdma=0.0.0.0:$PORT,state_dir=$CFS_TMP/state.refused" 2>&1) &&
	cfs_fail "mounted with rdma on 0.0.0.0 without a secret"
grep -q "not a loopback address.*rdma_secret_file" <<<"$out" ||
	cfs_fail "no clear error without a secret: $out"
! cfs_is_mounted "$(realpath "$M")" || cfs_fail "mounted all the same"
out=$(timeout 20 "$CACHEFS" -f "$B" "$M" -o "rdma=nowhere:x" 2>&1) &&
	cfs_fail "mounted with a bad rdma address"
grep -q "rdma=nowhere:x: not an address" <<<"$out" ||
	cfs_fail "no clear error for a bad address: $out"

# --- the mount -------------------------------------------------------------

MPORT=$(cfs_free_tcp_port)
cfs_mount "$B" "$M" "rdma=$A,rdma_secret_file=$S,rdma_provider=tcp,metrics=$MPORT"
# the server starts before the control socket answers
rdma_up() { [ "$(rdma address 2>/dev/null)" = "$A" ]; }
cfs_wait_for rdma_up || cfs_fail "no rdma server in status"
[ "$(rdma provider)" = "tcp;ofi_rxm" ] || cfs_fail "provider $(rdma provider)"

# --- the big file by four clients at once ----------------------------------

want=$(sha256sum <"$B/big" | cut -d' ' -f1)
pids=()
for k in 1 2 3 4; do
	( set -o pipefail
	  get -q -s "$S" "$A" big | sha256sum | cut -d' ' -f1 >"$CFS_TMP/sum.$k"
	) &
	pids+=($!)
done
for k in 1 2 3 4; do
	wait "${pids[$((k - 1))]}" || cfs_fail "cachefs-get $k failed"
	[ "$(cat "$CFS_TMP/sum.$k")" = "$want" ] ||
		cfs_fail "client $k got other bytes"
done
[ "$(counter rdma_bytes)" -ge $((4 * BIG)) ] ||
	cfs_fail "rdma_bytes $(counter rdma_bytes) under 4 x $BIG_MIB MiB"

# --- reads at odd offsets and past the end, a copy to a file ---------------

check "$S" reads medium "$B/medium" || cfs_fail "reads"
get -s "$S" "$A" medium "$CFS_TMP/medium.copy" 2>"$CFS_TMP/get.err" ||
	cfs_fail "copy to a file: $(cat "$CFS_TMP/get.err")"
cmp "$B/medium" "$CFS_TMP/medium.copy" || cfs_fail "the copy differs"
[ ! -s "$CFS_TMP/get.err" ] || cfs_fail "a progress bar off a terminal"
[ "$(check "$S" stat sub dir)" -ge 0 ] || cfs_fail "stat of a directory"
[ "$(check "$S" stat rel file)" = 7 ] || cfs_fail "a link inside the tree"
[ "$(check "$S" stat sub/up file)" = 7 ] || cfs_fail "a link up, inside"
check "$S" expect sub EISDIR || cfs_fail "opened a directory"
check "$S" expect nothing ENOENT || cfs_fail "opened a missing file"

# --- the small file, the second time from the cache tiers ------------------

tier0=$(counter rdma_tier_reads)
get -s "$S" "$A" small "$CFS_TMP/small.1" || cfs_fail "small"
get -s "$S" "$A" small "$CFS_TMP/small.2" || cfs_fail "small again"
cmp "$B/small" "$CFS_TMP/small.2" || cfs_fail "small differs"
[ "$(counter rdma_tier_reads)" -gt "$tier0" ] ||
	cfs_fail "the small file was not read from a cache tier"

# --- secrets ---------------------------------------------------------------

fails0=$(counter rdma_auth_failures)
msg=$(check "$W" auth-fail) || cfs_fail "a wrong secret was not refused"
grep -q "wrong secret" <<<"$msg" || cfs_fail "unclear: $msg"
out=$(get -s "$W" "$A" small 2>&1) && cfs_fail "cachefs-get with a wrong secret"
grep -q "authentication failed: wrong secret" <<<"$out" ||
	cfs_fail "cachefs-get said: $out"
out=$(get "$A" small 2>&1) && cfs_fail "cachefs-get without a secret"
grep -q "needs a secret" <<<"$out" || cfs_fail "cachefs-get said: $out"
[ "$(counter rdma_auth_failures)" -ge $((fails0 + 3)) ] ||
	cfs_fail "auth failures not counted"

# --- nothing outside the tree, nothing nobody may read ---------------------

esc0=$(counter rdma_escapes)
for p in ../outside/secret.txt sub/../../outside/secret.txt \
	/etc/passwd "$CFS_TMP/outside/secret.txt" sub/out abs magic \
	dotdot/etc/passwd; do
	check "$S" expect "$p" EACCES || cfs_fail "$p was not refused"
done
[ "$(counter rdma_escapes)" -ge $((esc0 + 8)) ] ||
	cfs_fail "escapes not counted"
check "$S" expect private EACCES || cfs_fail "nobody read a private file"
check "$S" expect closed/file EACCES || cfs_fail "nobody went through 0700"
out=$(get -s "$S" "$A" /etc/passwd 2>&1) && cfs_fail "cachefs-get /etc/passwd"
grep -q "relative to the mount's root" <<<"$out" || cfs_fail "said: $out"

# --- hostile messages ------------------------------------------------------

bad0=$(counter rdma_bad_messages)
check "$S" hostile small || cfs_fail "hostile messages"
[ "$(counter rdma_bad_messages)" -gt "$bad0" ] || cfs_fail "bad messages"
[ "$(counter rdma_unauthenticated)" -gt 0 ] || cfs_fail "unauthenticated"
[ "$(counter rdma_bad_handles)" -gt 0 ] || cfs_fail "bad handles"
[ "$(counter rdma_bad_requests)" -gt 0 ] || cfs_fail "bad requests"

# --- garbage on the port ---------------------------------------------------

python3 - "$PORT" <<'EOF' || cfs_fail "garbage"
import os, socket, sys
port = int(sys.argv[1])
held = []
for k in range(20):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if k % 4 == 0:
        held.append(s)          # connected and silent, for now
        continue
    try:
        s.sendall(os.urandom(1 + k * 997))
    except OSError:
        pass                    # the provider may hang up first
    s.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for k in range(50):
    u.sendto(os.urandom(512), ("127.0.0.1", port))
for s in held:
    s.close()
EOF
get -s "$S" "$A" medium "$CFS_TMP/medium.2" || cfs_fail "after garbage"
cmp "$B/medium" "$CFS_TMP/medium.2" || cfs_fail "differs after garbage"

# --- clients killed: mid-transfer, and idle --------------------------------

clients_gone() { [ "$(rdma clients)" = 0 ]; }
cfs_wait_for clients_gone || cfs_fail "clients left: $(rdma clients)"
"$CACHEFS_GET" -s "$S" --bench -r 50 "$A" big >/dev/null &
pid=$!
in_flight() { [ "$(rdma requests_in_flight)" -gt 0 ]; }
cfs_wait_for in_flight || cfs_fail "the transfer did not start"
kill -9 "$pid"
wait "$pid" 2>/dev/null
cfs_wait_for clients_gone || cfs_fail "a killed client stays: $(rdma clients)"

coproc HOLD { exec "$RDMA_CHECK" "$A" "$S" hold small; }
CFS_SERVERS[hold]=$HOLD_PID # killed by the EXIT trap if still there
read -r -t 20 line <&"${HOLD[0]}" && [ "$line" = ready ] ||
	cfs_fail "the holding client did not connect"
[ "$(rdma handles)" = 1 ] || cfs_fail "handles: $(rdma handles)"
cfs_server_kill hold KILL
cfs_wait_for clients_gone || cfs_fail "an idle killed client stays"
[ "$(rdma handles)" = 0 ] || cfs_fail "its handle stays open"
get -s "$S" "$A" medium "$CFS_TMP/medium.3" || cfs_fail "after the kills"
cmp "$B/medium" "$CFS_TMP/medium.3" || cfs_fail "differs after the kills"

# --- status, stats, metrics ------------------------------------------------

ctl status | grep -q "^  rdma .*$A" || cfs_fail "no rdma line in status"
curl -sf "http://127.0.0.1:$MPORT/metrics" >"$CFS_TMP/metrics" ||
	cfs_fail "no metrics"
grep -q '^cachefs_rdma_clients 0$' "$CFS_TMP/metrics" ||
	cfs_fail "no cachefs_rdma_clients gauge"
grep -q '^cachefs_rdma_bytes_total [1-9]' "$CFS_TMP/metrics" ||
	cfs_fail "no cachefs_rdma_bytes_total"
cfs_umount "$M"

# --- limits, the other completion, a loopback server without a secret ------

PORT=$(cfs_free_tcp_port)
A=127.0.0.1:$PORT
cfs_mount "$B" "$M" "rdma=$PORT,rdma_max_requests=4,rdma_max_memory=4M,rdma_completion=delivery"
cfs_wait_for rdma_up || cfs_fail "no second rdma server"
[ "$(rdma completion)" = delivery_complete ] || cfs_fail "completion"
check - reads medium "$B/medium" || cfs_fail "reads, delivery complete"
check - burst big || cfs_fail "the burst"
[ "$(counter rdma_over_limit)" -gt 0 ] || cfs_fail "over_limit not counted"
get "$A" small >/dev/null || cfs_fail "no secret on loopback"
out=$(get -s "$S" "$A" small 2>&1) && cfs_fail "a server without the secret"
grep -q "cannot prove" <<<"$out" || cfs_fail "said: $out"
# SIGTERM still unmounts: libfabric's providers' signal handlers are undone
m=$(realpath "$M")
kill -TERM "${CFS_PIDS[$m]}"
wait "${CFS_PIDS[$m]}" || cfs_fail "cachefs exited with $? on SIGTERM"
unset "CFS_PIDS[$m]"
! cfs_is_mounted "$m" || cfs_fail "still mounted after SIGTERM"
cfs_check_log "${CFS_LOGS[$m]}"
echo "rdma: ok"
