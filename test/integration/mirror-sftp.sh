#!/bin/bash
# The SFTP mirror target against OpenSSH's sshd on loopback, key-only:
# every op with many steps in flight, checked in the directory sshd serves
# (mirror_target_check); bad URLs refused at create; an unknown or changed
# host key and a key the server does not know refused at connect, saying
# what to do; the server killed mid-run fails the steps in flight and a
# connect works again once it is back; the throughput of 1 KiB puts, on
# the test's disk and where the disk costs nothing (tmpfs).  Mounts
# nothing.
. "$TESTDIR/lib.sh"
. "$TESTDIR/sshd.sh"
CHECK=${1:?usage: mirror-sftp.sh MIRROR_TARGET_CHECK}
cfs_setup
sshd_setup
sshd_start
T=$CFS_TMP
ROOT=$T/served/mirror # not there yet: connect makes it
: >"$T/empty_hosts"

url() { # url IDENTITY KNOWN_HOSTS [MORE [ROOT]]
	echo "sftp://root@127.0.0.1:$SSHD_PORT${4:-$ROOT}?identity=$1&known_hosts=$2${3:-}"
}
URL=$(url "$SSHD_ID" "$SSHD_KNOWN")

# --- create: bad URLs -----------------------------------------------------
bad_url() { # bad_url URL WORD -- create refuses URL, its message has WORD
	local msg
	msg=$("$CHECK" --bad-url "$1") || cfs_fail "create accepted $1"
	grep -qF -- "$2" <<<"$msg" ||
		cfs_fail "create $1: '$msg' does not say $2"
	echo "ok: create refuses $1: $msg"
}
bad_url "$(url "$SSHD_ID" "$SSHD_KNOWN" "&colour=blue")" colour
bad_url "$(url "$T/missing" "$SSHD_KNOWN")" "$T/missing"
bad_url "$(url "$SSHD_ID" "$SSHD_KNOWN" "&sessions=0")" "sessions is a number from 1 to 16"
bad_url "$(url "$SSHD_ID" "$SSHD_KNOWN" "&sessions=2x")" "sessions is a number"
bad_url "$(url "$SSHD_ID" "$SSHD_KNOWN" "&sessions=17")" "sessions is a number"
bad_url "sftp://root@127.0.0.1:99999$ROOT?identity=$SSHD_ID" port
bad_url "sftp://root@127.0.0.1:22x$ROOT?identity=$SSHD_ID" port
bad_url "sftp://root:secret@127.0.0.1:$SSHD_PORT$ROOT?identity=$SSHD_ID" \
	password

# --- connect: keys refused --------------------------------------------------
rejected() { # rejected URL WORD... -- connect fails, the message says them
	local msg w
	msg=$("$CHECK" --reject "$1") || cfs_fail "connect did not refuse $1"
	shift
	for w in "$@"; do
		grep -qF -- "$w" <<<"$msg" || cfs_fail "'$msg' does not say $w"
	done
	echo "ok: connect refuses: $msg"
}
rejected "$(url "$SSHD_ID" "$SSHD_CHANGED")" "[127.0.0.1]:$SSHD_PORT" \
	"$SSHD_CHANGED" "ssh-keyscan -p $SSHD_PORT 127.0.0.1"
rejected "$(url "$SSHD_ID" "$T/empty_hosts")" "[127.0.0.1]:$SSHD_PORT" \
	"$T/empty_hosts" "ssh-keyscan -p $SSHD_PORT 127.0.0.1"
rejected "$(url "$SSHD_STRANGER" "$SSHD_KNOWN")" "127.0.0.1:$SSHD_PORT" \
	"$SSHD_STRANGER"
[ ! -e "$ROOT" ] || cfs_fail "$ROOT made before authenticating"

# --- every op, the server killed midway, throughput -------------------------
# The driver says "kill" and "revive" on its stdout and waits for a line.
mkfifo "$T/to_check" "$T/from_check"
"$CHECK" --outage --bench "${SFTP_BENCH_PUTS:-300}" "$URL" "$ROOT" \
	<"$T/to_check" >"$T/from_check" &
check_pid=$!
exec 7>"$T/to_check" 8<"$T/from_check"
while IFS= read -r line <&8; do
	case $line in
	kill) sshd_kill; echo done >&7 ;;
	revive) sshd_start; echo done >&7 ;;
	*) echo "$line" ;;
	esac
done
exec 7>&- 8<&-
wait "$check_pid" || cfs_fail "mirror_target_check failed"

# The same puts where fsync and the file system cost the server nothing:
# what the pipeline itself does.
if [ -d /dev/shm ]; then
	SHM=$(mktemp -d /dev/shm/cachefs-sftp.XXXXXX)
	trap 'rm -rf "$SHM"; cfs_cleanup' EXIT
	"$CHECK" --bench-only "${SFTP_BENCH_PUTS:-300}" \
		"$(url "$SSHD_ID" "$SSHD_KNOWN" "" "$SHM/mirror")" \
		"$SHM/mirror" | sed 's/^bench:/bench on tmpfs:/' ||
		cfs_fail "mirror_target_check --bench-only failed"
fi
