#!/bin/bash
# Checks of what ships beside the binaries, without mounting anything:
#
#  - the bash completion of cachefsctl parses, registers itself when
#    sourced, and completes the commands;
#  - every command that "cachefsctl help" lists has an entry (.SS or .TP)
#    in man/cachefsctl.8, and the man pages format without a warning;
#  - "systemd-analyze verify" finds nothing to say about the units in
#    contrib/systemd (the template checked as cachefs@var-www.service),
#    with their /usr/local/sbin paths pointed at the built binaries.
#
# Needs CACHEFS and CACHEFSCTL (the built binaries) and SRCDIR (the source
# tree).  Exits 77 (skipped) when systemd-analyze is missing, once the
# other checks have passed.
set -eu
set -o pipefail

: "${CACHEFS:?CACHEFS must point at the cachefs binary}"
: "${CACHEFSCTL:?CACHEFSCTL must point at the cachefsctl binary}"
: "${SRCDIR:?SRCDIR must point at the source tree}"

COMPLETION=$SRCDIR/contrib/bash-completion/cachefsctl
MANPAGE=$SRCDIR/man/cachefsctl.8
UNITS=$SRCDIR/contrib/systemd

failed=0
fail() {
	echo "FAIL: $*" >&2
	failed=1
}

TMP=$(mktemp -d /tmp/cachefs-systemd-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

for f in "$CACHEFS" "$CACHEFSCTL"; do
	[ -x "$f" ] || { echo "FAIL: no executable at $f" >&2; exit 1; }
done
for f in "$COMPLETION" "$MANPAGE" "$UNITS/cachefs@.service" \
	"$UNITS/var-www.mount"; do
	[ -f "$f" ] || { echo "FAIL: $f is missing" >&2; exit 1; }
done

# --- bash completion --------------------------------------------------------

if ! bash -n "$COMPLETION"; then
	fail "bash -n $COMPLETION"
fi
# In a clean shell, without the bash-completion package.
if ! out=$(bash --norc --noprofile -c '. "$1" && complete -p cachefsctl' \
	sh "$COMPLETION" 2>&1); then
	fail "sourcing $COMPLETION: $out"
elif [[ $out != *"-F _cachefsctl"*cachefsctl ]]; then
	fail "sourcing $COMPLETION registers no completion function: $out"
fi
# Complete "cachefsctl tr" and "cachefsctl config ".
complete_words() {
	bash --norc --noprofile -c '
		. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		_cachefsctl cachefsctl "${COMP_WORDS[COMP_CWORD]}" \
			"${COMP_WORDS[COMP_CWORD - 1]}" 2>/dev/null
		echo "${COMPREPLY[*]}"' sh "$COMPLETION" "$@"
}
out=$(complete_words cachefsctl tr)
[ "$out" = trace ] || fail "completing 'cachefsctl tr' gave '$out', not 'trace'"
out=$(complete_words cachefsctl config '')
[ "$out" = "get set" ] ||
	fail "completing 'cachefsctl config ' gave '$out', not 'get set'"

# --- man page -----------------------------------------------------------------

# Commands: the lines of "cachefsctl help" that start with two spaces and
# a lower-case word ("  status [--json]", "  config get [NAME] | ...").
help=$("$CACHEFSCTL" help) || fail "cachefsctl help failed"
commands=$(printf '%s\n' "$help" | sed -n 's/^  \([a-z][a-z0-9_-]*\).*/\1/p' |
	sort -u)
[ -n "$commands" ] || fail "no commands found in the output of cachefsctl help"
# Entries: the first word of each .SS heading and of the line after each
# .TP, without font macros, quotes and font escapes.
entries=$(awk '
	function first(s) {
		sub(/^\.(B|I|R|BR|BI|RB|RI|IB|IR)[ \t]+/, "", s)
		gsub(/\\f[BIRP]|"/, "", s)
		sub(/^[ \t]+/, "", s)
		split(s, w, /[ \t]/)
		return w[1]
	}
	tp { print first($0); tp = 0; next }
	/^\.TP/ { tp = 1; next }
	/^\.SS[ \t]/ { sub(/^\.SS[ \t]+/, ""); print first($0) }
' "$MANPAGE" | sort -u)
for c in $commands; do
	if ! printf '%s\n' "$entries" | grep -qxF -- "$c"; then
		fail "command '$c' (cachefsctl help) has no .SS or .TP entry in man/cachefsctl.8"
	fi
done
if command -v groff >/dev/null 2>&1; then
	for m in "$MANPAGE" "$SRCDIR/man/cachefs.8"; do
		if ! out=$(groff -man -Tutf8 -ww -z "$m" 2>&1) || [ -n "$out" ]; then
			fail "groff warns about $m: $out"
		fi
	done
else
	echo "note: groff not found, man pages not formatted" >&2
fi

# --- systemd units ------------------------------------------------------------

if [ "$failed" -ne 0 ]; then
	exit 1
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze not found; systemd units not verified"
	exit 77
fi

# sed replacement text: escape \, & and the | delimiter.
sed_escape() {
	printf '%s' "$1" | sed 's/[\\&|]/\\&/g'
}

# The template, as the instance for /var/www, and the mount unit, with the
# binaries of the build tree.
tmpl=$TMP/units/cachefs@var-www.service
mkdir "$TMP/units"
cp "$UNITS/cachefs@.service" "$tmpl"
cp "$UNITS/var-www.mount" "$TMP/units/var-www.mount"
grep -q '/usr/local/sbin/cachefs ' "$tmpl" ||
	fail "cachefs@.service does not run /usr/local/sbin/cachefs"
grep -q '/usr/local/sbin/cachefsctl ' "$tmpl" ||
	fail "cachefs@.service does not run /usr/local/sbin/cachefsctl"
sed -i \
	-e "s|/usr/local/sbin/cachefsctl\\b|$(sed_escape "$CACHEFSCTL")|g" \
	-e "s|/usr/local/sbin/cachefs\\b|$(sed_escape "$CACHEFS")|g" \
	"$tmpl"
# fusermount3 where this system has it (the unit says /usr/bin).
if [ ! -x /usr/bin/fusermount3 ]; then
	fm=$(command -v fusermount3 || true)
	if [ -z "$fm" ]; then
		echo "SKIP: fusermount3 not found; systemd units not verified"
		exit 77
	fi
	sed -i "s|/usr/bin/fusermount3\\b|$(sed_escape "$fm")|g" "$tmpl"
fi
if grep -n '^[^#]*/usr/local/sbin' "$tmpl"; then
	fail "paths left unrewritten in the copy of cachefs@.service"
fi

args=()
if systemd-analyze --help 2>/dev/null | grep -q -- '--recursive-errors'; then
	args+=(--recursive-errors=no) # our units, not those of this system
fi
# Documentation= is checked against our own man pages when man(1) is here.
if command -v man >/dev/null 2>&1; then
	mkdir -p "$TMP/man/man8"
	cp "$SRCDIR/man/cachefs.8" "$SRCDIR/man/cachefsctl.8" "$TMP/man/man8/"
	args+=(--man=yes)
	export MANPATH=$TMP/man
else
	args+=(--man=no)
fi

cd "$TMP/units"
for unit in cachefs@var-www.service var-www.mount; do
	rc=0
	out=$(systemd-analyze verify "${args[@]}" "./$unit" 2>&1) || rc=$?
	# Anything it says about our units is a finding.
	ours=$(printf '%s\n' "$out" |
		grep -F -e "$TMP" -e "$unit" -e 'cachefs@' -e 'var-www' || true)
	if [ "$rc" -ne 0 ] || [ -n "$ours" ]; then
		fail "systemd-analyze verify $unit (exit status $rc):"
		printf '%s\n' "$out" | sed 's/^/    /' >&2
	else
		echo "ok: systemd-analyze verify $unit"
		if [ -n "$out" ]; then
			echo "    (about other units:)"
			printf '%s\n' "$out" | sed 's/^/    /'
		fi
	fi
done

# systemd-analyze verify checks that the binaries exist; make sure it
# would notice a wrong one, so that a pass above means something.
sed "s|^ExecStart=[^ ]*|ExecStart=$TMP/no-such-cachefs|" "$tmpl" \
	>"$TMP/units/cachefs@broken.service"
if systemd-analyze verify "${args[@]}" ./cachefs@broken.service \
	>/dev/null 2>&1; then
	fail "systemd-analyze verify does not notice a missing ExecStart binary"
fi

exit "$failed"
