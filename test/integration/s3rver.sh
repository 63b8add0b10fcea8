# S3 for tests: s3rver (@20minutes/s3rver), a fake S3 in node that checks
# SigV4 signatures, on 127.0.0.1.  Sourced after lib.sh:
#
#   . "$TESTDIR/s3rver.sh"
#   cfs_setup
#   s3rver_start BUCKET          # sets S3_PORT and S3_ENDPOINT
#   s3rver_stop [SIGNAL]
#   s3rver_start BUCKET "$S3_PORT"   # again, on the same port and data
#
# Its account is S3_KEY/S3_SECRET.  It is installed from npm once into
# S3RVER_CACHE; after that the tests need no network.

S3RVER_VERSION=5.0.0
S3RVER_CACHE=${S3RVER_CACHE:-/var/cache/cachefs-test/s3rver}
S3RVER_PKG=$S3RVER_CACHE/node_modules/@20minutes/s3rver
S3_KEY=S3RVER
S3_SECRET=S3RVER

s3rver_installed() {
	[ "$(node -p "require('$S3RVER_PKG/package.json').version" 2>/dev/null)" = "$S3RVER_VERSION" ]
}

# s3rver answers a PUT whose body it buffered (every signed one) before
# the bytes reach its file, so a CopyObject right after can copy what was
# there before: real S3 reads its own writes.  It is made to answer once
# they are written.
s3rver_patch() {
	local f=$S3RVER_PKG/lib/stores/filesystem.js
	grep -q 'writeStream.end(content, () =>' "$f" && return 0
	/usr/bin/python3 - "$f" <<'EOF' || cfs_fail "cannot patch $f"
import sys
p = sys.argv[1]
s = open(p).read()
old = '''        writeStream.end(content)
        md5Context.update(content)
        resolve([content.length, md5Context.digest('hex')])'''
new = '''        md5Context.update(content)
        const md5 = md5Context.digest('hex')
        writeStream.on('error', reject)
        writeStream.end(content, () => resolve([content.length, md5]))'''
if old not in s:
    sys.exit("the code to patch is not there")
open(p, "w").write(s.replace(old, new))
EOF
}

s3rver_install() {
	command -v node >/dev/null && command -v npm >/dev/null ||
		cfs_fail "s3rver needs node (>= 20) and npm"
	if s3rver_installed; then
		s3rver_patch
		return 0
	fi
	mkdir -p "$S3RVER_CACHE"
	# its package.json asks for node 24; it runs on 20
	flock "$S3RVER_CACHE" npm install --prefix "$S3RVER_CACHE" --no-audit \
		--no-fund --loglevel=error --engine-strict=false \
		"@20minutes/s3rver@$S3RVER_VERSION" >"$CFS_TMP/npm.log" 2>&1 &&
		s3rver_installed && s3rver_patch || {
		cat "$CFS_TMP/npm.log" >&2
		cfs_fail "cannot install @20minutes/s3rver@$S3RVER_VERSION"
	}
}

# True once s3rver answers HTTP (any status: it checks no signature here).
s3rver_answers() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' "$S3_ENDPOINT/") &&
		[ "$code" != 000 ]
}

# s3rver_start BUCKET [PORT] -- s3rver on 127.0.0.1 with its data in
# $CFS_TMP/s3rver and BUCKET there.
s3rver_start() {
	local bucket=$1
	S3_PORT=${2:-$(cfs_free_tcp_port)}
	S3_ENDPOINT=http://127.0.0.1:$S3_PORT
	s3rver_install
	# the package ships no bin/: its CLI module, called as the bin would;
	# its continuation tokens use DES, in OpenSSL 3's legacy provider
	cfs_server s3rver "$S3_PORT" node --openssl-legacy-provider -e '
		require(process.argv[1] + "/lib/cli.js")
			.parseAsync(["node", "s3rver", ...process.argv.slice(2)])
			.catch((e) => { console.error(e.message); process.exit(1) })' \
		"$S3RVER_PKG" --address 127.0.0.1 --port "$S3_PORT" \
		--directory "$CFS_TMP/s3rver" --silent --configure-bucket "$bucket"
	cfs_wait_for s3rver_answers || {
		cat "$CFS_TMP/s3rver.log" >&2
		cfs_fail "s3rver does not answer at $S3_ENDPOINT"
	}
}

s3rver_stop() {
	cfs_server_kill s3rver "${1:-TERM}"
}
