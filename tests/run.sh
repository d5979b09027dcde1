#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Run the test suite: every tests/t_*.sh, the C unit tests (meson test) and,
# with --fuzz-build, a short fuzz run.
#
#   tests/run.sh [--anole PATH] [--fuzz-build DIR] [--meson-build DIR]
#                [--fuzz-seconds N] [--log-dir DIR] [--keep] [FILTER...]
#
# FILTERs select tests whose name contains one of them (t_cli, corrupt,
# meson_unit, fuzz, ...).  One line per test; full logs in the log directory;
# the last line is "N passed, N failed, N skipped"; exit status 1 if any failed.
# The fuzz run and tests marked "# background: cpu-bound" run in a second
# lane at nice 10 alongside the others; their lines come last.
# Needs root (mounts, device nodes).  Environment passed on to tests: ANOLE,
# TESTDIR, WORK (a fresh scratch directory per test), and optionally
# ANOLE_BUILD_OVERRIDE=mkfs / ANOLE_MOUNT_METHOD (see tests/lib.sh).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
anole=""
fuzz_build=""
meson_build=""
fuzz_seconds=${FUZZ_SECONDS:-60}
log_dir=""
keep=0
# a hang guard, not a speed check: the slowest test takes ~130 s on a quiet
# machine and several times that while other work loads the two cores
test_timeout=${TEST_TIMEOUT:-1200}
filters=()

usage() {
	sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-2}"
}
while [ $# -gt 0 ]; do
	case "$1" in
	--anole) anole=$2; shift 2 ;;
	--anole=*) anole=${1#*=}; shift ;;
	--fuzz-build) fuzz_build=$2; shift 2 ;;
	--fuzz-build=*) fuzz_build=${1#*=}; shift ;;
	--meson-build) meson_build=$2; shift 2 ;;
	--meson-build=*) meson_build=${1#*=}; shift ;;
	--fuzz-seconds) fuzz_seconds=$2; shift 2 ;;
	--log-dir) log_dir=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) usage 0 ;;
	-*) echo "run.sh: unknown option $1" >&2; usage 2 ;;
	*) filters+=("$1"); shift ;;
	esac
done

cd "$root" || exit 2
if [ -z "$anole" ]; then
	for c in build-asan/anole build/anole; do
		[ -x "$c" ] && { anole=$c; break; }
	done
fi
[ -n "$anole" ] || { echo "run.sh: no anole binary; pass --anole PATH" >&2; exit 2; }
anole=$(readlink -f "$anole")
if [ -z "$meson_build" ]; then
	d=$(dirname "$anole")
	[ -f "$d/build.ninja" ] && meson_build=$d
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "run.sh: warning: not root; tests that mount or create devices will skip" >&2
fi

stamp=$(date +%Y%m%d-%H%M%S)
# logs and kept scratch directories of old runs go after two days (not a
# scratch directory with something still mounted below it)
find "$root/tests/work" -maxdepth 1 -name 'logs-2*' -mtime +2 -exec rm -rf {} + 2>/dev/null
find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'anole-tests.*' -mtime +2 2>/dev/null | while read -r old; do
	grep -q " $old/" /proc/self/mountinfo || rm -rf "$old"
done
log_dir=${log_dir:-$root/tests/work/logs-$stamp}
mkdir -p "$log_dir" || exit 2
log_dir=$(cd "$log_dir" && pwd)
tmp_root=$(mktemp -d "${TMPDIR:-/tmp}/anole-tests.XXXXXX") || exit 2
ln -sfn "$log_dir" "$root/tests/work/logs-latest" 2>/dev/null || true

passed=0 failed=0 skipped=0
failed_names=()
t_start=$(date +%s.%N)

selected() {
	local name=$1 f
	[ ${#filters[@]} -eq 0 ] && return 0
	for f in "${filters[@]}"; do
		case "$name" in *"$f"*) return 0 ;; esac
	done
	return 1
}

# Undo whatever a test left behind: mounts below its WORK, loop devices
# backed by files below it (the test's own trap normally did this already).
sweep() {
	local dir=$1 m dev back
	awk -v d="$dir" '{ if ($5 == d || index($5, d "/") == 1) print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do
			echo "run.sh: unmounting leftover $m" >&2
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		done
	losetup -l -n -O NAME,BACK-FILE 2>/dev/null | while read -r dev back; do
		case "$back" in "$dir"/*)
			echo "run.sh: detaching leftover $dev ($back)" >&2
			losetup -d "$dev" 2>/dev/null ;;
		esac
	done
}

# report NAME RC SECONDS LOG
report() {
	local name=$1 rc=$2 secs=$3 log=$4
	case "$rc" in
	0) passed=$((passed + 1)); printf 'PASS %s (%ss)\n' "$name" "$secs" ;;
	77) skipped=$((skipped + 1))
	    printf 'SKIP %s (%ss)%s\n' "$name" "$secs" \
		"$(grep -m1 '^SKIP:' "$log" | sed 's/^SKIP:/:/')" ;;
	*) failed=$((failed + 1)); failed_names+=("$name")
	   printf 'FAIL %s (%ss, exit %s; log %s)\n' "$name" "$secs" "$rc" "$log"
	   tail -n 25 "$log" | sed 's/^/    | /' ;;
	esac
}

# exec_one NAME TIMEOUT CMD...: run a test (cwd: repo root; output to its
# log), sweep what it left, drop its scratch if it passed; sets RC and SECS
exec_one() {
	local name=$1 tmo=$2; shift 2
	local log="$log_dir/$name.log" work="$tmp_root/$name" t0 t1
	mkdir -p "$work"
	t0=$(date +%s.%N)
	{
		echo "# $name: $*"
		echo "# ANOLE=$anole WORK=$work $(date -Is)"
	} >"$log"
	ANOLE=$anole TESTDIR=$here WORK=$work ANOLE_TEST_LOG_DIR=$log_dir \
		timeout -k 15 "$tmo" "$@" </dev/null >>"$log" 2>&1
	RC=$?
	[ "$RC" -eq 124 ] && echo "run.sh: timed out after ${tmo}s" >>"$log"
	sweep "$work" >>"$log" 2>&1
	t1=$(date +%s.%N)
	SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	# keep the scratch of failed tests (and of all with --keep)
	if [ "$keep" -eq 0 ] && { [ "$RC" -eq 0 ] || [ "$RC" -eq 77 ]; }; then
		rm -rf "$work"
	fi
}

# run_one NAME TIMEOUT CMD...: run it now and report it
run_one() {
	exec_one "$@"
	report "$1" "$RC" "$SECS" "$log_dir/$1.log"
}

echo "anole tests: $anole"
echo "logs: $log_dir"
[ -n "${ANOLE_BUILD_OVERRIDE:-}" ] && echo "NOTE: ANOLE_BUILD_OVERRIDE=$ANOLE_BUILD_OVERRIDE (images built by mkfs.erofs)"

# The optional parts the binary has (`anole features`); a binary without
# that command predates them and has every part.
if features=$("$anole" features 2>/dev/null); then
	missing_features=$(awk '$2 == "no" { print $1 }' <<<"$features")
else
	missing_features=""
fi
# needed_features NAME FILE: the parts a test needs, by its name (t_diag_*,
# t_monitor_*, t_lazy_*) or a "# needs-features: A B" line of its own
needed_features() {
	case "$1" in
	t_diag_*) echo diag ;;
	t_monitor_*) echo monitor ;;
	t_lazy_*) echo fuse ;;
	esac
	sed -n 's/^# needs-features: *//p' "$2"
}

# skip_reason NAME FILE: why a test cannot run with this binary (empty: it can)
skip_reason() {
	local without="" f
	for f in $(needed_features "$1" "$2"); do
		grep -qx "$f" <<<"$missing_features" && without="$without $f"
	done
	[ -z "$without" ] || echo "anole was built without$without"
}

# The background queue. Most tests spend their time waiting on the kernel,
# daemons and timers, leaving a CPU idle; the fuzz run (a fixed wall-clock
# budget) and the tests marked "# background: cpu-bound" (image builds and
# checks with no timing in them, sharing nothing global: their own scratch,
# loop devices and mounts) run one after another in a second lane, at nice
# 10, and soak up that idle CPU. Their lines come last. Not SCHED_IDLE:
# starved for seconds behind a CPU-bound test, one fuzz input could pass
# libFuzzer's 30 s per-input hang limit, and their own per-operation
# timeouts (60 s and more) are far above what nice 10 stretches.
bg_list=()
for t in "$here"/t_*.sh; do
	[ -e "$t" ] || continue
	name=$(basename "$t" .sh)
	selected "$name" || continue
	grep -q '^# background: cpu-bound' "$t" || continue
	[ -z "$(skip_reason "$name" "$t")" ] || continue
	bg_list+=("$name")
done
bg_fuzz=0
if [ -n "$fuzz_build" ] && selected fuzz; then
	if [ -f "$root/fuzz/run.sh" ]; then
		bg_fuzz=1
	else
		printf 'SKIP fuzz: fuzz/run.sh does not exist\n'
		skipped=$((skipped + 1))
	fi
fi
bg_pid=""
if [ ${#bg_list[@]} -gt 0 ] || [ "$bg_fuzz" = 1 ]; then
	: >"$tmp_root/bg.results"
	(
		renice -n 10 -p $BASHPID >/dev/null
		if [ "$bg_fuzz" = 1 ]; then
			exec_one fuzz $((fuzz_seconds * 3 + 240)) bash "$root/fuzz/run.sh" \
				"$fuzz_build" "$fuzz_seconds"
			echo "fuzz $RC $SECS" >>"$tmp_root/bg.results"
		fi
		for name in "${bg_list[@]}"; do
			# three times the hang guard: at nice 10 it may wait its turn
			exec_one "$name" $((test_timeout * 3)) bash "$here/$name.sh"
			echo "$name $RC $SECS" >>"$tmp_root/bg.results"
		done
	) &
	bg_pid=$!
fi

for t in "$here"/t_*.sh; do
	[ -e "$t" ] || continue
	name=$(basename "$t" .sh)
	selected "$name" || continue
	why=$(skip_reason "$name" "$t")
	if [ -n "$why" ]; then
		printf 'SKIP %s: %s\n' "$name" "$why"
		skipped=$((skipped + 1))
		continue
	fi
	case " ${bg_list[*]} " in *" $name "*) continue ;; esac
	run_one "$name" "$test_timeout" bash "$t"
done

if selected meson_unit; then
	if [ -n "$meson_build" ] && [ -f "$meson_build/build.ninja" ]; then
		run_one meson_unit 900 meson test -C "$meson_build" --print-errorlogs --num-processes 2
	else
		printf 'SKIP meson_unit: no meson build directory (--meson-build)\n'
		skipped=$((skipped + 1))
	fi
fi

if [ -n "$bg_pid" ]; then
	echo "waiting for the background lane (fuzz and ${#bg_list[@]} cpu-bound tests)"
	wait "$bg_pid"
	done_bg=" "
	while read -r name rc secs; do
		report "$name" "$rc" "$secs" "$log_dir/$name.log"
		done_bg="$done_bg$name "
	done <"$tmp_root/bg.results"
	# one the lane never reported (it was killed): a failure, not a pass
	for name in "${bg_list[@]}" $([ "$bg_fuzz" = 1 ] && echo fuzz); do
		case "$done_bg" in *" $name "*) ;; *) report "$name" 1 0 "$log_dir/$name.log" ;; esac
	done
	rm -f "$tmp_root/bg.results"
fi

rmdir "$tmp_root" 2>/dev/null || echo "scratch kept: $tmp_root"
total=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
[ "$failed" -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "suite time: ${total}s; logs in $log_dir"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
