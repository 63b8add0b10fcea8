# OpenSSH's sshd for tests, on a free 127.0.0.1 port, key-only, with
# keys made in the test's directory.  Sourced after lib.sh:
#
#   . "$TESTDIR/sshd.sh"
#   cfs_setup
#   sshd_setup          # SSHD_PORT, SSHD_ID (the client key), SSHD_KNOWN
#   sshd_start
#   sshd_kill           # as if it crashed: the listener and its sessions
#   sshd_start          # again, same port and keys
#
# Also SSHD_CHANGED (a known_hosts with another key for it) and
# SSHD_STRANGER (a key it does not know).

sshd_setup() {
	local t=$CFS_TMP/sshd
	if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keyscan >/dev/null; then
		. "$SRCDIR/contrib/deps.sh"
		cfs_install_deps openssh-server openssh-client ||
			cfs_fail "cannot install openssh-server"
	fi
	# its privilege separation directory, which its init script makes
	[ -d /run/sshd ] || { mkdir -p /run/sshd && chmod 0755 /run/sshd; }
	mkdir -p "$t"
	ssh-keygen -q -t ed25519 -N '' -C host -f "$t/host_key"
	ssh-keygen -q -t ed25519 -N '' -C other -f "$t/other_host_key"
	ssh-keygen -q -t ed25519 -N '' -C client -f "$t/id"
	ssh-keygen -q -t ed25519 -N '' -C stranger -f "$t/stranger"
	cp "$t/id.pub" "$t/authorized_keys"
	SSHD_PORT=$(cfs_free_tcp_port)
	SSHD_ID=$t/id
	SSHD_STRANGER=$t/stranger
	SSHD_KNOWN=$t/known_hosts
	SSHD_CHANGED=$t/changed_hosts
	SSHD_CONFIG=$t/sshd_config
	cat >"$SSHD_CONFIG" <<EOF
ListenAddress 127.0.0.1:$SSHD_PORT
HostKey $t/host_key
PidFile none
AuthorizedKeysFile $t/authorized_keys
# the keys are under /tmp, which is world-writable
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
Subsystem sftp internal-sftp
EOF
	/usr/sbin/sshd -t -f "$SSHD_CONFIG" ||
		cfs_fail "sshd refuses its configuration"
	echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$t/other_host_key.pub")" \
		>"$SSHD_CHANGED"
}

sshd_start() {
	cfs_server sshd "$SSHD_PORT" /usr/sbin/sshd -D -e -f "$SSHD_CONFIG"
	if [ ! -s "$SSHD_KNOWN" ]; then
		ssh-keyscan -p "$SSHD_PORT" -t ed25519 127.0.0.1 \
			>"$SSHD_KNOWN" 2>/dev/null
		[ -s "$SSHD_KNOWN" ] || cfs_fail "ssh-keyscan got no key from sshd"
	fi
}

# pid and every descendant of it
sshd_pid_tree() {
	local c
	for c in $(pgrep -P "$1"); do sshd_pid_tree "$c"; done
	echo "$1"
}

sshd_kill() {
	[ -n "${CFS_SERVERS[sshd]:-}" ] || return 0
	kill -KILL $(sshd_pid_tree "${CFS_SERVERS[sshd]}") 2>/dev/null
	cfs_server_kill sshd KILL
}
