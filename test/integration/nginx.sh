# nginx for the integration tests, serving contrib/nginx/cachefs.conf as
# it is, but for its four marked lines (sourced after lib.sh).

# cfs_nginx PORT ROOT PREFIX SERVER... -- start nginx on 127.0.0.1:PORT
# for the cachefs mount at ROOT, whose keys start with PREFIX, with the
# memcached SERVERs (HOST:PORT) in the order cachefs has them.
cfs_nginx() {
	local port=$1 root=$2 prefix=$3 dir=$CFS_TMP/nginx servers="" s
	shift 3
	mkdir -p "$dir/tmp"
	for s in "$@"; do
		servers+="	server $s max_fails=0;\n"
	done
	sed -e "s|^.*# @servers\$|$servers|" \
		-e "s|^\(\s*\)listen .*# @listen\$|\1listen 127.0.0.1:$port;|" \
		-e "s|\"cfs:\$uri\";\(\s*\)# @prefix\$|\"$prefix\$uri\";|" \
		-e "s|^\(\s*\)root .*# @root\$|\1root $root;|" \
		"$SRCDIR/contrib/nginx/cachefs.conf" >"$dir/site.conf"
	for s in servers listen prefix root; do
		! grep -q "# @$s\$" "$dir/site.conf" ||
			cfs_fail "contrib/nginx/cachefs.conf: the @$s line was not replaced"
	done
	cat >"$dir/nginx.conf" <<-CONF
		daemon off;
		worker_processes 1;
		pid $dir/nginx.pid;
		error_log $dir/error.log;
		events { worker_connections 256; }
		http {
			include /etc/nginx/mime.types;
			access_log off;
			client_body_temp_path $dir/tmp/body;
			proxy_temp_path $dir/tmp/proxy;
			fastcgi_temp_path $dir/tmp/fastcgi;
			uwsgi_temp_path $dir/tmp/uwsgi;
			scgi_temp_path $dir/tmp/scgi;
			include $dir/site.conf;
		}
	CONF
	nginx -t -q -c "$dir/nginx.conf" -p "$dir" 2>"$dir/t.err" ||
		{ cat "$dir/t.err" >&2; cfs_fail "nginx rejects the site"; }
	cfs_server nginx "$port" nginx -c "$dir/nginx.conf" -p "$dir"
}
