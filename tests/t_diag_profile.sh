#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole diag profile samples CPU stacks: a test program (built here with
# frame pointers) spinning in anole_test_spin_here(), called from
# anole_test_spin_caller(), must show in its user stack, symbolised from
# its ELF symbol table, innermost first, in most of its samples; `dd` copying
# /dev/zero to /dev/null must show kernel frames (kallsyms) of the read
# syscall. -p reports only that process; -K drops user stacks; folded and
# text output; bad options are usage errors. No BPF object is left.
# Sampling counts CPU time, so each run lasts until the sampled processes
# have had a given CPU time (from the scheduler's accounting), then ends
# by SIGINT: a loaded machine gives them less of each wall-clock second.
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
need_diag
need_cmd cc dd

"$ANOLE" diag list --json >"$WORK/list.json" || fail "anole diag list failed"
runs=$(diag_json '[t for t in rows[0]["tools"] if t["name"] == "profile"][0]["runs"]' "$WORK/list.json")
[ "$runs" = True ] || skip "profile does not run on this kernel: $(cat "$WORK/list.json")"

cat >"$WORK/spin.c" <<'C'
#include <stdlib.h>
#include <time.h>
volatile unsigned long anole_test_sink;
void anole_test_spin_here(double secs)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	do {
		for (int i = 0; i < 200000; i++)
			anole_test_sink += (unsigned long)i;
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while (b.tv_sec - a.tv_sec + (b.tv_nsec - a.tv_nsec) / 1e9 < secs);
}
void anole_test_spin_caller(double secs)
{
	anole_test_spin_here(secs);
	anole_test_sink++;
}
int main(int argc, char **argv)
{
	anole_test_spin_caller(argc > 1 ? atof(argv[1]) : 1e9);
	return 0;
}
C
cc -g -O1 -fno-omit-frame-pointer -fno-inline -o "$WORK/anole-spin" "$WORK/spin.c" ||
	fail "cannot build the test program"

# the test program, spinning until the end of the test
"$WORK/anole-spin" &
SPIN=$!
add_pid "$SPIN"

# 1. -p, JSON: the spinning function on top of its user stacks, its caller
# below; 0.5 s of its CPU time at 99 Hz is about 50 samples
diag_start json profile -p "$SPIN" -F 99 --json
diag_wait_cpu "$SPIN" 0.5
diag_stop json
total=$(diag_json "sum(r['count'] for r in rows if r['pid'] == $SPIN)" "$WORK/json.out")
inner=$(diag_json "sum(r['count'] for r in rows if r['pid'] == $SPIN and r['user_stack'][:2] ==
	['anole_test_spin_here', 'anole_test_spin_caller'] and 'main' in r['user_stack'])" "$WORK/json.out")
log "anole-spin $SPIN: $total samples, $inner in anole_test_spin_here <- anole_test_spin_caller <- main"
[ "$total" -ge 10 ] || fail "profile -p $SPIN: only $total samples in 0.5 s of its CPU time at 99 Hz: $(cat "$WORK/json.out")"
[ $((inner * 2)) -gt "$total" ] ||
	fail "profile -p $SPIN: $inner of $total samples in anole_test_spin_here: $(head -c 3000 "$WORK/json.out")"
others=$(diag_json "sorted({r['pid'] for r in rows} - {$SPIN})" "$WORK/json.out")
assert_eq "$others" "[]" "profile -p $SPIN: other processes"
assert_eq "$(diag_json "{r['comm'] for r in rows}" "$WORK/json.out")" "{'anole-spin'}" "profile -p: comm"

# 2. all processes at the default 49 Hz: the spinner and dd, with dd's kernel frames
dd if=/dev/zero of=/dev/null bs=64k 2>/dev/null &
dd_pid=$!
add_pid "$dd_pid"
diag_start all profile --json
diag_wait_cpu "$SPIN" 0.3
diag_wait_cpu "$dd_pid" 0.3
diag_stop all
[ "$(diag_json "sum(r['count'] for r in rows if r['pid'] == $SPIN and r['user_stack'][:1] == ['anole_test_spin_here'])" "$WORK/all.out")" -gt 0 ] ||
	fail "profile missed anole_test_spin_here of $SPIN: $(grep -c . "$WORK/all.out") rows"
kern=$(diag_json "sum(r['count'] for r in rows if r['pid'] == $dd_pid and r['comm'] == 'dd' and
	{'ksys_read', 'vfs_read', 'read_zero', '__x64_sys_read', 'iov_iter_zero', 'ksys_write', 'vfs_write'} & set(r['kernel_stack']))" "$WORK/all.out")
log "dd $dd_pid: $kern samples in the kernel's read/write path"
[ "$kern" -gt 0 ] || fail "profile saw no kernel read/write frames of dd $dd_pid: $(grep "\"pid\":$dd_pid," "$WORK/all.out" | head -5)"
kill "$dd_pid" 2>/dev/null || true

# 3. -K: kernel stacks only
diag_start kern profile -K --json
diag_wait_cpu "$SPIN" 0.3
diag_stop kern
assert_eq "$(diag_json "sum(len(r['user_stack']) for r in rows if r['pid'])" "$WORK/kern.out")" 0 "profile -K: user frames"

# 4. folded and text (libbpf-tools layout)
diag_start folded profile -p "$SPIN" -F 99 -f
diag_wait_cpu "$SPIN" 0.3
diag_stop folded
assert_grep "^anole-spin;.*main;anole_test_spin_caller;anole_test_spin_here [0-9][0-9]*$" "$WORK/folded.out" "folded"
diag_start text profile -p "$SPIN" -F 99
diag_wait_cpu "$SPIN" 0.3
diag_stop text
assert_grep "^    anole_test_spin_here$" "$WORK/text.out" "text: the frame"
assert_grep "^    -  *anole-spin ($SPIN)$" "$WORK/text.out" "text: the process"

# 5. bad options: usage errors before loading anything
for bad in "-F 0" "-F abc" "-U -K"; do
	rc=0
	# shellcheck disable=SC2086
	"$ANOLE" diag profile --duration 1 $bad >"$WORK/bad.out" 2>"$WORK/bad.err" || rc=$?
	assert_eq "$rc" 2 "profile $bad: exit status"
done
log "pass"
