# Debian packages cachefs needs; sourced by quickstart and run-tests.
# cfs_install_deps PACKAGE... installs only what is missing.

CFS_BUILD_DEPS="gcc pkg-config meson ninja-build libfuse3-dev fuse3 uthash-dev libjansson-dev libevent-dev libssl-dev libmemcached-dev libssh-dev libcurl4-openssl-dev libfabric-dev"
CFS_TEST_DEPS="check attr acl procps util-linux jq curl python3 python3-prometheus-client clang libclang-rt-14-dev systemd memcached zlib1g-dev nginx-light rsync openssh-server openssh-client libfabric-bin"

cfs_install_deps() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Servers the packages bring (memcached, nginx) are started by the
	# tests that need them, on loopback ports of their own: not at install.
	local policy=/usr/sbin/policy-rc.d ours=0 r=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && ours=1
	fi
	apt-get update -qq &&
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || r=$?
	[ "$ours" = 1 ] && rm -f "$policy"
	return $r
}
