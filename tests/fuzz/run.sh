#!/bin/bash
# tests/fuzz/run.sh - build and run the libFuzzer targets.
#
#   run.sh build [TARGET...]     build the targets (all) into build-fuzz/
#   run.sh TARGET SECONDS        fuzz one target (config, ar, ... or
#                                fuzz_config, ...) for SECONDS
#   run.sh all SECONDS           fuzz every target for SECONDS each
#   run.sh smoke SECONDS         build, fuzz every target SECONDS from its
#                                seeds only, print TAP
#   run.sh repro FILE...         replay saved inputs (target from the file
#                                name: <target>-*), logs shown
#   run.sh list                  the target names
#
# Everything written goes under build-fuzz/ at the top of the tree (or
# $FUZZ_OUT): objects, binaries, logs (build-fuzz/logs/<target>.log), the
# working corpus build-fuzz/corpus/<target> (the seeds of
# tests/fuzz/corpus/<target> are merged into it first; nothing is ever
# written back into the source tree) and crash files
# build-fuzz/crashes/<target>-*. A smoke run works in its own
# build-fuzz/smoke/<pid>/, removed when it passes, so it can run next to
# a long fuzzing session; builds take a lock, and so does each target's
# working corpus.
# Environment: FUZZ_PARALLEL=N runs N targets at a time (default 1);
# FUZZ_JOBS=N compiles with make -jN (default 2); AG_BUILD_DIR is the
# configured build tree holding autoconf.h and, in filter/Makefile, the
# libraries' flags (default build/; without one a stub autoconf.h and
# default flags are used); FUZZ_ARENA=real links filter/util/arena.c instead
# of tests/fuzz/arena_malloc.c (see there).
# Exit status: 0 clean, 1 a target crashed (or hit a timeout, a leak or
# the memory limit), 2 usage or build error (a target that does not
# compile is reported as such; the others still run).
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${FUZZ_OUT:-$top/build-fuzz}
logs=$out/logs # smoke runs use their own (see the smoke case)
work=
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

usage() {
	sed -n '4,12p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# targets - short names of every fuzz_<name>.c
targets() {
	local f
	for f in "$here"/fuzz_*.c; do
		f=${f##*/fuzz_}
		echo "${f%.c}"
	done
}

# max_len - the largest input worth trying, per target
max_len() {
	case $1 in
	dns_rr) echo 600 ;;	# rdata is at most 512 bytes in practice
	cidr) echo 1024 ;;
	ar) echo 4096 ;;
	config | dkim_canon) echo 8192 ;;
	rfc5322 | pipeline | dkim_verify | mime) echo 16384 ;;
	*) echo 4096 ;;
	esac
}

# have_libfuzzer - can clang link a libFuzzer target here?
have_libfuzzer() {
	command -v clang >/dev/null 2>&1 &&
	    printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)\n{ return 0; }\n' |
	    clang -x c -fsanitize=fuzzer,address -o /dev/null - >/dev/null 2>&1
}

# build [NAME...] - compile what changed for these targets (default: all).
# make -k goes on past a target that does not compile, so the others still
# run: build_failed lists the ones left without an up-to-date binary.
# Returns 1 when any failed (the log is in $out/build.log).
build_failed=
build() {
	local inc=${AG_BUILD_DIR:-$top/build} t0 t1 jobs=${FUZZ_JOBS:-2} t
	local goals=() mk dep=() v

	command -v clang >/dev/null || {
		echo "run.sh: clang not found" >&2
		exit 2
	}
	mkdir -p "$out"
	if [ ! -f "$inc/autoconf.h" ]; then
		# Only main.c includes autoconf.h, and it is not built here.
		inc=$out/include
		mkdir -p "$inc"
		[ -f "$inc/autoconf.h" ] ||
			echo '#define PACKAGE_VERSION "fuzz"' >"$inc/autoconf.h"
	fi
	# The third-party flags configure found, when there is a build tree.
	if [ -f "$inc/filter/Makefile" ]; then
		v=$(sed -n 's/^AG_DEP_CFLAGS = *//p' "$inc/filter/Makefile")
		[ -n "$v" ] && dep+=(DEP_CFLAGS="$v")
		v=$(sed -n 's/^AG_DEP_LIBS = *//p' "$inc/filter/Makefile")
		[ -n "$v" ] && dep+=(DEP_LIBS="$v")
	fi
	[ $# -gt 0 ] || set -- $(targets)
	for t in "$@"; do
		goals+=("$out/fuzz_$t")
	done
	mk=(make -f "$here/fuzz.mk" TOP="$top" OUT="$out" AG_INCLUDE="$inc"
	    "${dep[@]}")
	t0=$(date +%s.%N)
	build_failed=
	# One build at a time in $out: a second run.sh waits for the first.
	if ! flock "$out/.build.lock" "${mk[@]}" -k -j"$jobs" "${goals[@]}" \
		>"$out/build.log" 2>&1; then
		for t in "$@"; do
			"${mk[@]}" -q "$out/fuzz_$t" >/dev/null 2>&1 ||
			    build_failed="$build_failed $t"
		done
		build_failed=${build_failed# }
		grep -E 'error:|Error [0-9]' "$out/build.log" | head -n 10 >&2
		echo "run.sh: build failed for: ${build_failed:-?}" \
		    "(see $out/build.log)" >&2
		[ -n "$build_failed" ] || build_failed="$*"
		return 1
	fi
	t1=$(date +%s.%N)
	echo "build: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')s" \
	    "($(grep -c -- ' -c -o ' "$out/build.log") files compiled)" >&2
}

# failed_build NAME - did NAME fail to build?
failed_build() {
	case " $build_failed " in
	*" $1 "*) return 0 ;;
	esac
	return 1
}

# make_dict NAME - the dictionary file for a target (may print nothing):
# tests/fuzz/fuzz_NAME.dict, and for config every parameter name of the
# table in filter/config.c, so a new parameter is in the dictionary
make_dict() {
	local name=$1 dict=$out/dict/$1.dict
	mkdir -p "$out/dict"
	: >"$dict"
	[ -f "$here/fuzz_$name.dict" ] && cat "$here/fuzz_$name.dict" >>"$dict"
	if [ "$name" = config ]; then
		grep -o '{"[a-z0-9_]*", *CONF_' "$top/filter/config.c" |
		    sed 's/{\("[a-z0-9_]*"\).*/\1/' >>"$dict"
	fi
	[ -s "$dict" ] && echo "$dict"
}

# short - "fuzz_ar" or "ar" -> "ar"
short() {
	local t=${1#fuzz_}
	[ -f "$here/fuzz_$t.c" ] || {
		echo "run.sh: no target '$1' (try: $(targets | tr '\n' ' '))" >&2
		exit 2
	}
	echo "$t"
}

# fuzz_one NAME SECONDS MODE - run one target; MODE is "corpus" (the
# persistent working corpus) or "smoke" (a fresh one in $work). Writes
# $logs/NAME.log and $logs/NAME.result:
# rc execs execs_per_s cov ft corpus_size crash_file
fuzz_one() {
	local name=$1 secs=$2 mode=$3 bin=$out/fuzz_$1 seeds=$here/corpus/$1
	local len log res corpus dict=() dirs=() d rc execs eps cov ft units crash

	len=$(max_len "$name")
	log=$logs/$name.log
	res=$logs/$name.result
	mkdir -p "$logs" "$out/crashes"
	d=$(make_dict "$name") && dict=(-dict="$d")
	if [ "$mode" = smoke ]; then
		corpus=$work/corpus/$name
		mkdir -p "$corpus"
		dirs=("$corpus")
		[ -d "$seeds" ] && dirs+=("$seeds")
	else
		corpus=$out/corpus/$name
		mkdir -p "$corpus"
		# One session per working corpus (and log) at a time.
		exec 9>"$out/corpus/$name.lock"
		if ! flock -n 9; then
			echo "fuzz_$name: another session uses $corpus" >"$log.busy"
			echo "99 0 0 0 0 0 -" >"$res"
			return
		fi
		if [ -d "$seeds" ]; then
			"$bin" -merge=1 -max_len="$len" -timeout=10 \
			    -rss_limit_mb=2048 "${dict[@]}" "$corpus" "$seeds" \
			    >"$logs/$name.merge.log" 2>&1
		fi
		dirs=("$corpus")
	fi
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	    -max_len="$len" -print_final_stats=1 \
	    -artifact_prefix="$out/crashes/$name-" "${dict[@]}" \
	    "${dirs[@]}" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	# The last status line: "#N  NEW|REDUCE|pulse|DONE  cov: C ft: F corp: U/..."
	cov=$(grep -aE '^#[0-9]+' "$log" | grep -o 'cov: [0-9]*' | tail -n 1 | cut -d' ' -f2)
	ft=$(grep -aE '^#[0-9]+' "$log" | grep -o 'ft: [0-9]*' | tail -n 1 | cut -d' ' -f2)
	units=$(grep -aE '^#[0-9]+' "$log" | grep -o 'corp: [0-9]*' | tail -n 1 | cut -d' ' -f2)
	[ -n "$execs" ] || execs=$(grep -aoE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
	crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
	echo "$rc ${execs:-0} ${eps:-0} ${cov:-0} ${ft:-0} ${units:-0} ${crash:--}" >"$res"
}

# report_lines LOG - the first lines of the sanitizer or harness report
report_lines() {
	grep -a -m 1 -A 14 -E '^==[0-9]+==|^==fuzz assertion|runtime error:|^==[0-9]+== ?ERROR|ERROR: libFuzzer' "$1" |
	    head -n 15
}

# run_many MODE SECONDS NAME... - fuzz several targets, FUZZ_PARALLEL at
# a time, then report in order (TAP in smoke mode)
run_many() {
	local mode=$1 secs=$2 par=${FUZZ_PARALLEL:-1} n=0 i=0 bad=0
	local name rc execs eps cov ft units crash
	shift 2
	for name in "$@"; do
		rm -f "$logs/$name.result" "$logs/$name.log.busy"
		if failed_build "$name"; then
			mkdir -p "$logs"
			echo "98 0 0 0 0 0 -" >"$logs/$name.result"
			continue
		fi
		fuzz_one "$name" "$secs" "$mode" &
		n=$((n + 1))
		if [ "$n" -ge "$par" ]; then
			wait -n
			n=$((n - 1))
		fi
	done
	wait
	[ "$mode" = smoke ] && echo "1..$#"
	for name in "$@"; do
		i=$((i + 1))
		if [ -f "$logs/$name.result" ]; then
			read -r rc execs eps cov ft units crash <"$logs/$name.result"
		else
			rc=99 execs=0 eps=0 cov=0 ft=0 units=0 crash=-
		fi
		if [ "$rc" = 98 ]; then
			bad=2
			if [ "$mode" = smoke ]; then
				echo "not ok $i - fuzz_$name: does not build"
			else
				echo "fuzz_$name: does not build"
			fi
			grep 'error:' "$out/build.log" |
			    grep -E "fuzz_$name\.c|/filter/" | head -n 3 |
			    sed 's/^/# /'
			continue
		fi
		if [ "$mode" = smoke ]; then
			if [ "$rc" = 0 ]; then
				echo "ok $i - fuzz_$name: $execs execs, 0 crashes, cov $cov"
			else
				echo "not ok $i - fuzz_$name: crashed after $execs execs, cov $cov (exit $rc)"
			fi
			echo "# fuzz_$name: $eps execs/s, cov $cov, ft $ft, corpus $units"
		else
			printf 'fuzz_%s: %s execs in %ss, %s execs/s, cov %s, ft %s, corpus %s, %s\n' \
			    "$name" "$execs" "$secs" "$eps" "$cov" "$ft" "$units" \
			    "$([ "$rc" = 0 ] && echo '0 crashes' || echo "CRASH (exit $rc)")"
		fi
		[ -f "$logs/$name.log.busy" ] && sed 's/^/# /' "$logs/$name.log.busy"
		grep -ao 'fuzz: known bug [^ ]* hit' "$logs/$name.log" 2>/dev/null |
		    sort -u | sed 's/^fuzz: \(.*\)/# \1 (reported, not counted: see tests\/fuzz\/crashes)/'
		if [ "$rc" != 0 ]; then
			[ "$bad" = 2 ] || bad=1
			echo "# crash file: $crash"
			echo "# log: $logs/$name.log"
			report_lines "$logs/$name.log" | sed 's/^/#   /'
		fi
	done
	return $bad
}

# repro FILE... - replay inputs with the daemon's log lines visible
repro() {
	local f name rc=0
	for f in "$@"; do
		name=$(basename "$f")
		name=${name%%-*}
		name=$(short "$name")
		echo "== fuzz_$name $f" >&2
		AG_FUZZ_VERBOSE=1 AG_FUZZ_STRICT=1 "$out/fuzz_$name" "$f" || rc=1
	done
	return $rc
}

[ $# -ge 1 ] || usage
case $1 in
build)
	shift
	for t in "$@"; do
		short "$t" >/dev/null || exit 2
	done
	# shellcheck disable=SC2046
	build $(for t in "$@"; do short "$t"; done) || exit 2
	;;
list)
	targets
	;;
repro)
	shift
	[ $# -ge 1 ] || usage
	build || true # repro reports a target it cannot run
	repro "$@"
	;;
all | smoke)
	[ $# -eq 2 ] && [ "$2" -gt 0 ] 2>/dev/null || usage
	if [ "$1" = smoke ] && ! have_libfuzzer; then
		# TAP: a machine without the tools skips, it does not fail
		echo "1..0 # SKIP clang with libFuzzer (-fsanitize=fuzzer) not available"
		exit 0
	fi
	# A target that does not compile is reported; the others still run.
	build || true
	if [ "$1" = smoke ]; then
		work=$out/smoke/$$
		logs=$work/logs
		rm -rf "$work"
		# shellcheck disable=SC2046
		run_many smoke "$2" $(targets)
		rc=$?
		[ "$rc" = 0 ] && rm -rf "$work"
		exit $rc
	fi
	# shellcheck disable=SC2046
	run_many corpus "$2" $(targets)
	exit $?
	;;
-h | --help | help)
	usage
	;;
*)
	[ $# -eq 2 ] && [ "$2" -gt 0 ] 2>/dev/null || usage
	name=$(short "$1") || exit 2
	build "$name" || exit 2
	run_many corpus "$2" "$name"
	exit $?
	;;
esac
