#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Fuzz a parser with libFuzzer for a time budget:
#
#	run-fuzz.sh SOURCE_ROOT [SECONDS [TARGET]]	(30 s, ctl_request)
#
# TARGET is ctl_request (the control protocol, test/fuzz/fuzz_ctl_request.c
# with src/shared/ctl_proto.c), journal (the journal's record decoder,
# test/fuzz/fuzz_journal.c with src/daemon/journal.c) or rdma (the RDMA
# protocol's decoders, test/fuzz/fuzz_rdma.c with src/shared/rdma_proto.c,
# and libcrypto for its MAC).  Builds it with
# clang (-fsanitize=fuzzer,address,undefined) and fuzzes from a temporary
# copy of test/fuzz/corpus/TARGET, so new inputs never land in the source
# tree.  Exits 0 when nothing was found, 1 on a crash, leak, timeout or
# OOM (the input is printed; add it to the corpus once fixed), 77 (skip)
# without clang, libFuzzer or the pkg-config files of jansson (and
# libcrypto, for rdma).  FUZZ_CC overrides clang.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 3 ]]; then
	echo "usage: $0 SOURCE_ROOT [SECONDS [TARGET]]" >&2
	exit 2
fi
src=$(cd "$1" && pwd)
budget=${2:-30}
target=${3:-ctl_request}
pkgs=(jansson)
case $target in
ctl_request)
	sources=("$src/test/fuzz/fuzz_ctl_request.c" "$src/src/shared/ctl_proto.c")
	includes=(-I"$src/src/shared") ;;
journal)
	sources=("$src/test/fuzz/fuzz_journal.c" "$src/src/daemon/journal.c")
	includes=(-I"$src/src/daemon" -pthread) ;;
rdma)
	sources=("$src/test/fuzz/fuzz_rdma.c" "$src/src/shared/rdma_proto.c")
	includes=(-I"$src/src/shared")
	pkgs+=(libcrypto) ;;
*)
	echo "$0: unknown target '$target' (ctl_request, journal or rdma)" >&2
	exit 2 ;;
esac
corpus=$src/test/fuzz/corpus/$target
CC=${FUZZ_CC:-clang}

skip() {
	echo "SKIP: $*"
	exit 77
}

command -v "$CC" >/dev/null ||
	skip "$CC not found (Debian: apt-get install clang)"
command -v pkg-config >/dev/null || skip "pkg-config not found"
libs=$(pkg-config --cflags --libs "${pkgs[@]}") ||
	skip "pkg-config files not found: ${pkgs[*]}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cachefs-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/probe.c" <<'PROBE'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return 0;
}
PROBE
"$CC" -fsanitize=fuzzer,address,undefined "$tmp/probe.c" -o "$tmp/probe" \
	2>"$tmp/probe.log" ||
	skip "$CC cannot build a libFuzzer target (Debian 12: apt-get" \
		"install libclang-rt-14-dev):" \
		"$(head -n 1 "$tmp/probe.log")"

# shellcheck disable=SC2086 # $libs is a list of flags
"$CC" -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -D_GNU_SOURCE \
	"${includes[@]}" -I"$src/test/fuzz" "${sources[@]}" \
	$libs -o "$tmp/fuzz_$target"

mkdir "$tmp/corpus" "$tmp/artifacts"
cp -- "$corpus"/* "$tmp/corpus/"
seeds=$(find "$tmp/corpus" -type f | wc -l)

echo "fuzzing $target for ${budget}s from $seeds inputs in $corpus"
rc=0
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
	"$tmp/fuzz_$target" -max_total_time="$budget" -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$tmp/artifacts/" "$tmp/corpus" || rc=$?

# libFuzzer writes crash-*, leak-*, timeout-*, oom-* artifacts on failure.
artifacts=("$tmp"/artifacts/*)
[[ -e ${artifacts[0]} ]] || artifacts=()
if [[ $rc -ne 0 || ${#artifacts[@]} -gt 0 ]]; then
	echo "FAIL: fuzzer exited with status $rc"
	for f in "${artifacts[@]}"; do
		keep=${TMPDIR:-/tmp}/cachefs-$(basename "$f")
		cp -- "$f" "$keep"
		echo "input saved as $keep ($(stat -c %s "$f") bytes," \
			"first 1 KiB below); once fixed, add it to $corpus/"
		head -c 1024 "$f" | od -A d -t x1z -v
	done
	exit 1
fi
echo "OK: $(($(find "$tmp/corpus" -type f | wc -l) - seeds)) new corpus" \
	"units found (not written back to $corpus)"
