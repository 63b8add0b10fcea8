# A slow backend for the benchmarks (sourced): the stand-in for an NFS
# export mounted with actimeo=0 is an sshfs mount of a loopback sshd with
# every sshfs cache off, so each stat() is a network round trip.  (Its
# inode numbers are its own and change when it forgets a node; an NFS
# export's are the server's.)
# Needs openssh-server and sshfs.

# sshfs_backend EXPORT MOUNT DIR -- serve EXPORT with an sshd of our own
# (its keys and config in DIR) and mount it at MOUNT.  Sets SSHD_PID;
# the caller stops it and unmounts.
sshfs_backend() {
	local export=$1 mnt=$2 dir=$3 port
	for p in /usr/sbin/sshd sshfs ssh-keygen; do
		command -v "$p" >/dev/null || { echo "$p missing: apt-get install openssh-server sshfs" >&2; return 1; }
	done
	mkdir -p "$dir" /run/sshd
	ssh-keygen -q -t ed25519 -N '' -f "$dir/host"
	ssh-keygen -q -t ed25519 -N '' -f "$dir/user"
	cp "$dir/user.pub" "$dir/authorized_keys"
	port=$((20000 + RANDOM % 20000))
	cat >"$dir/sshd_config" <<-CONF
		ListenAddress 127.0.0.1
		Port $port
		HostKey $dir/host
		AuthorizedKeysFile $dir/authorized_keys
		PermitRootLogin prohibit-password
		StrictModes no
		UsePAM no
		PidFile $dir/sshd.pid
		Subsystem sftp internal-sftp
	CONF
	/usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/log" &
	SSHD_PID=$!
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		kill -0 "$SSHD_PID" || { echo "sshd did not start: $(cat "$dir/log")" >&2; return 1; }
		sleep 0.1
	done
	sshfs "root@127.0.0.1:$export" "$mnt" -p "$port" \
		-o IdentityFile="$dir/user",StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null \
		-o cache=no,attr_timeout=0,entry_timeout=0,negative_timeout=0,allow_other
}
