# Shared helpers for cachefs integration tests (bash).
#
#   . "$TESTDIR/lib.sh"
#   cfs_setup                       # temp dir, traps, $CACHEFS checked
#   cfs_mount "$B" "$M" [OPTS]      # mount in the foreground, wait for it
#   ...
#   cfs_umount "$M"                 # unmount, check the daemon exited 0
#
# The daemon runs with -f so that its exit status and any sanitizer report
# are seen; every mount is undone by the EXIT trap even when a test fails.

set -u
set -o pipefail

: "${CACHEFS:?CACHEFS must point at the cachefs binary}"
CFS_TIMEOUT=${CFS_TIMEOUT:-20}
CFS_MOUNTS=()
declare -A CFS_PIDS=()
declare -A CFS_LOGS=()
declare -A CFS_FDS=()
declare -A CFS_SRC=()
declare -A CFS_SERVERS=()	# name -> pid of a server the test started

cfs_fail() {
	echo "FAIL: $*" >&2
	exit 1
}

cfs_cleanup() {
	local m
	for m in "${CFS_MOUNTS[@]}"; do
		# /proc/self/mounts, not mountpoint(1): a mount whose daemon died
		# fails every stat and must be unmounted all the same
		if cfs_is_mounted "$m"; then
			fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		fi
	done
	for m in "${!CFS_PIDS[@]}"; do
		kill "${CFS_PIDS[$m]}" 2>/dev/null
	done
	for m in "${!CFS_SERVERS[@]}"; do
		# a server a test stopped (SIGSTOP) must be woken to die
		kill "${CFS_SERVERS[$m]}" 2>/dev/null
		kill -CONT "${CFS_SERVERS[$m]}" 2>/dev/null
	done
	if [ -n "${CFS_TMP:-}" ] && [ -d "$CFS_TMP" ]; then
		rm -rf --one-file-system "$CFS_TMP"
		# journals of mounts made without state_dir (mount(8), fstab)
		rm -rf /var/lib/cachefs/"$(cfs_escape "$CFS_TMP")"-*
	fi
}

# A path as cachefs names a mount after it (systemd-escape --path).
cfs_escape() {
	local p=${1#/}
	p=${p//-/\\x2d}
	echo "${p//\//-}"
}

cfs_setup() {
	[ -x "$CACHEFS" ] || cfs_fail "no cachefs binary at $CACHEFS"
	CFS_TMP=$(mktemp -d /tmp/cachefs-test.XXXXXX)
	chmod 755 "$CFS_TMP"
	trap cfs_cleanup EXIT
	trap 'exit 130' INT TERM
}

# True once $1 is a mount point of a fuse.cachefs file system.
cfs_is_mounted() {
	awk -v m="$1" '$2 == m && $3 == "fuse.cachefs" { f = 1 } END { exit !f }' \
		/proc/self/mounts
}

# Wait up to CFS_TIMEOUT seconds for a condition command to succeed.
cfs_wait_for() {
	local deadline=$((SECONDS + CFS_TIMEOUT))
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.02
	done
}

# cfs_mount BACKEND MNT [OPTIONS] -- starts cachefs -f in the background.
cfs_mount() {
	local b=$1 m=$2 o=${3:-} log
	m=$(realpath "$m")
	log="$CFS_TMP/cachefs.$(basename "$m").$RANDOM.log"
	# the journal in the test's directory, not /var/lib/cachefs
	case ",$o," in
	*,state_dir=*|*,journal=off,*) ;;
	*) o="${o:+$o,}state_dir=$CFS_TMP/state.$(basename "$m")" ;;
	esac
	if [ -n "$o" ]; then
		"$CACHEFS" -f "$b" "$m" -o "$o" 2>"$log" &
	else
		"$CACHEFS" -f "$b" "$m" 2>"$log" &
	fi
	CFS_PIDS[$m]=$!
	CFS_LOGS[$m]=$log
	CFS_SRC[$m]=$(realpath "$b")
	CFS_MOUNTS+=("$m")
	if ! cfs_wait_for cfs_mount_ready "$m"; then
		cat "$log" >&2
		cfs_fail "cachefs did not mount $m"
	fi
}

cfs_mount_ready() {
	cfs_is_mounted "$1" && return 0
	kill -0 "${CFS_PIDS[$1]}" 2>/dev/null || {
		cat "${CFS_LOGS[$1]}" >&2
		cfs_fail "cachefs exited before mounting $1"
	}
	return 1
}

# Report sanitizer findings in a daemon log.
cfs_check_log() {
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$1"; then
		cat "$1" >&2
		cfs_fail "sanitizer report in cachefs log"
	fi
}

# cfs_nfds PID DIR -- descriptors of PID that point below DIR.  (Worker
# threads come and go with their own /dev/fuse descriptors and pipes;
# only what reaches into the backend can leak.)
cfs_nfds() {
	local fd n=0 t
	for fd in /proc/"$1"/fd/*; do
		t=$(readlink "$fd" 2>/dev/null) || continue
		case $t in "$2" | "$2"/*) n=$((n + 1)) ;; esac
	done
	echo $n
}

# cfs_fd_baseline MNT -- remember how many descriptors the idle daemon holds.
cfs_fd_baseline() {
	local m
	m=$(realpath "$1")
	CFS_FDS[$m]=$(cfs_nfds "${CFS_PIDS[$m]}" "${CFS_SRC[$m]}")
}

# cfs_check_fds MNT -- once the kernel has forgotten every inode (drop the
# dentry and inode caches), the daemon must be back to its baseline of
# descriptors: anything more is a leak.
cfs_check_fds() {
	local m pid base src
	m=$(realpath "$1")
	pid=${CFS_PIDS[$m]}
	base=${CFS_FDS[$m]}
	src=${CFS_SRC[$m]}
	fds_at_baseline() {
		sync
		echo 2 >/proc/sys/vm/drop_caches
		[ "$(cfs_nfds "$pid" "$src")" -le "$base" ]
	}
	cfs_wait_for fds_at_baseline || {
		ls -l "/proc/$pid/fd" >&2
		cfs_fail "daemon holds $(cfs_nfds "$pid" "$src") backend descriptors, $base when idle"
	}
}

# cfs_umount MNT -- unmount and require a clean daemon exit.
cfs_umount() {
	local m rc=0 pid
	m=$(realpath "$1")
	pid=${CFS_PIDS[$m]:-}
	# A process that just closed its last file on the mount may still be
	# exiting: retry a busy unmount until the deadline.
	cfs_wait_for fusermount3 -u "$m" 2>"$CFS_TMP/umount.err" || {
		cat "$CFS_TMP/umount.err" >&2
		fuser -vm "$m" >&2 2>&1 || true
		cfs_fail "fusermount3 -u $m failed"
	}
	if [ -n "$pid" ]; then
		wait "$pid" || rc=$?
		unset "CFS_PIDS[$m]"
		cfs_check_log "${CFS_LOGS[$m]}"
		[ "$rc" -eq 0 ] || { cat "${CFS_LOGS[$m]}" >&2; cfs_fail "cachefs exited with $rc"; }
	fi
}

# cfs_op_count MNT OP -- how many OP requests the daemon of MNT answered
cfs_op_count() {
	"$CACHEFSCTL" -m "$1" stats --json | jq "(.ops.$2.count // 0)"
}

# A fresh backend and mount point under the test directory.
cfs_dirs() {
	CFS_BACKEND=$CFS_TMP/backend$1
	CFS_MNT=$CFS_TMP/mnt$1
	mkdir -p "$CFS_BACKEND" "$CFS_MNT"
	chmod 755 "$CFS_BACKEND" "$CFS_MNT"
}

# cfs_free_tcp_port -- a TCP port on 127.0.0.1 nobody listens on now.
cfs_free_tcp_port() {
	/usr/bin/python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# cfs_port_open PORT -- true once something accepts on 127.0.0.1:PORT.
cfs_port_open() {
	(exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# cfs_server NAME PORT CMD... -- start a server in the background (killed
# by the EXIT trap) and wait until it accepts on 127.0.0.1:PORT.
cfs_server() {
	local name=$1 port=$2
	shift 2
	"$@" >"$CFS_TMP/$name.log" 2>&1 &
	CFS_SERVERS[$name]=$!
	cfs_wait_for cfs_port_open "$port" || {
		cat "$CFS_TMP/$name.log" >&2
		cfs_fail "$name did not listen on 127.0.0.1:$port"
	}
}

# cfs_server_kill NAME [SIGNAL] -- stop a server started by cfs_server.
cfs_server_kill() {
	local pid=${CFS_SERVERS[$1]:-}
	[ -n "$pid" ] || return 0
	kill "-${2:-TERM}" "$pid" 2>/dev/null
	kill -CONT "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	unset "CFS_SERVERS[$1]"
}
