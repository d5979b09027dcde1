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
	sed -n '3,14p' "$0" | sed 's/^# \{0,1\}//'
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

# run_one NAME TIMEOUT CMD...  (cwd: repo root; output to the log)
run_one() {
	local name=$1 tmo=$2; shift 2
	local log="$log_dir/$name.log" work="$tmp_root/$name" rc t0 t1 secs
	mkdir -p "$work"
	t0=$(date +%s.%N)
	{
		echo "# $name: $*"
		echo "# ANOLE=$anole WORK=$work $(date -Is)"
	} >"$log"
	ANOLE=$anole TESTDIR=$here WORK=$work ANOLE_TEST_LOG_DIR=$log_dir \
		timeout -k 15 "$tmo" "$@" </dev/null >>"$log" 2>&1
	rc=$?
	[ "$rc" -eq 124 ] && echo "run.sh: timed out after ${tmo}s" >>"$log"
	sweep "$work" >>"$log" 2>&1
	t1=$(date +%s.%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	report "$name" "$rc" "$secs" "$log"
	# keep the scratch of failed tests (and of all with --keep)
	if [ "$keep" -eq 0 ] && { [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; }; then
		rm -rf "$work"
	fi
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

# The fuzz run is a fixed wall-clock budget of CPU work that shares nothing
# with the tests (its own scratch, no mounts, no ports), and most tests spend
# their time waiting on the kernel, daemons or timers: so it starts first, in
# the background at nice 10, and soaks up the CPU the tests leave idle. Its
# line comes last. (Not SCHED_IDLE: starved for seconds behind a CPU-bound
# test, one input could exceed libFuzzer's 30 s per-input hang limit.)
fuzz_pid=""
if [ -n "$fuzz_build" ] && selected fuzz; then
	if [ -f "$root/fuzz/run.sh" ]; then
		fuzz_t0=$(date +%s.%N)
		{
			echo "# fuzz: fuzz/run.sh $fuzz_build $fuzz_seconds (background, nice 10)"
			echo "# $(date -Is)"
		} >"$log_dir/fuzz.log"
		(
			timeout -k 15 $((fuzz_seconds * 3 + 240)) \
				nice -n 10 bash "$root/fuzz/run.sh" "$fuzz_build" "$fuzz_seconds" \
				</dev/null >>"$log_dir/fuzz.log" 2>&1
			echo $? >"$tmp_root/fuzz.rc"
		) &
		fuzz_pid=$!
	else
		printf 'SKIP fuzz: fuzz/run.sh does not exist\n'
		skipped=$((skipped + 1))
	fi
fi

for t in "$here"/t_*.sh; do
	[ -e "$t" ] || continue
	name=$(basename "$t" .sh)
	selected "$name" || continue
	without=""
	for f in $(needed_features "$name" "$t"); do
		grep -qx "$f" <<<"$missing_features" && without="$without $f"
	done
	if [ -n "$without" ]; then
		printf 'SKIP %s: anole was built without%s\n' "$name" "$without"
		skipped=$((skipped + 1))
		continue
	fi
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

if [ -n "$fuzz_pid" ]; then
	wait "$fuzz_pid"
	rc=$(cat "$tmp_root/fuzz.rc" 2>/dev/null || echo 1)
	[ "$rc" -eq 124 ] && echo "run.sh: fuzz timed out" >>"$log_dir/fuzz.log"
	report fuzz "$rc" "$(awk -v a="$fuzz_t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" \
		"$log_dir/fuzz.log"
	rm -f "$tmp_root/fuzz.rc"
fi

rmdir "$tmp_root" 2>/dev/null || echo "scratch kept: $tmp_root"
total=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
[ "$failed" -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "suite time: ${total}s; logs in $log_dir"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
