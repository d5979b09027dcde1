#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole diag nosched sees tasks that keep a CPU without scheduling: a test
# program spinning in user space on one CPU (SCHED_FIFO, so nothing on a
# busy machine preempts it) for 1 s must be reported with a 50 ms
# threshold - its pid, > 50 ms on CPU, caught in user mode - with the hook
# chosen here and with the raw_tp and tracepoint fallbacks. With -k
# (kernel only, as SysAK's nosched) the user spinner is not reported but
# dd reading /dev/zero in big blocks is, with its kernel stack. -p keeps
# only that process. A run still going when tracing ends is reported with
# its user stack symbolised. No BPF object is left after any run. Runs are
# ended by SIGINT once their workload is done, not after fixed seconds.
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
need_diag
need_cmd cc dd taskset nproc chrt

"$ANOLE" diag list --json >"$WORK/list.json" || fail "anole diag list failed"
runs=$(diag_json '[t for t in rows[0]["tools"] if t["name"] == "nosched"][0]["runs"]' "$WORK/list.json")
[ "$runs" = True ] || skip "nosched does not run on this kernel: $(cat "$WORK/list.json")"

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
int main(int argc, char **argv)
{
	anole_test_spin_here(argc > 1 ? atof(argv[1]) : 1);
	return 0;
}
C
cc -g -O1 -fno-omit-frame-pointer -fno-inline -o "$WORK/anole-spin" "$WORK/spin.c" ||
	fail "cannot build the test program"

cpu=$(( $(nproc) - 1 ))
# SCHED_FIFO keeps other tasks of this shared machine from preempting the
# spinner (RT throttling still leaves them 5% of the CPU)
rt=(chrt -f 1)
if ! chrt -f 1 true 2>/dev/null; then
	rt=()
	log "SCHED_FIFO refused here: the spinner runs as a normal task"
fi

# on_cpu CMD...: CMD pinned to $cpu (SCHED_FIFO), in the background; sets BUSY
on_cpu() {
	"${rt[@]}" taskset -c "$cpu" "$@" &
	BUSY=$!
	add_pid "$BUSY"
}

# 1. every hook this kernel offers: the spinner, > 50 ms in user mode
for h in default raw_tp tracepoint; do
	args=(-t 50 --json)
	if [ "$h" != default ]; then
		grep -q "\"$h\"" "$WORK/list.json" || continue
		args+=(--hook "$h")
	fi
	diag_start "$h" nosched "${args[@]}"
	[ "$h" = default ] || assert_grep "using $h" "$WORK/$h.err" "nosched --hook $h"
	on_cpu "$WORK/anole-spin" 1
	wait "$BUSY"
	diag_stop "$h"
	ms=$(diag_json "max([r['ms'] for r in rows if r['pid'] == $BUSY and r['tid'] == $BUSY and
		r['comm'] == 'anole-spin' and r['user_samples'] > 0 and 'user' in r['mode']] or [0])" "$WORK/$h.out")
	log "$h: spinner $BUSY on CPU $cpu for up to $ms ms without scheduling"
	python3 -c "import sys; sys.exit(0 if $ms > 50 else 1)" ||
		fail "nosched ($h) did not report spinner $BUSY: $(cat "$WORK/$h.out")"
done

# 2. -k: only runs caught in the kernel: dd, not the user spinner
diag_start kernel nosched -k -t 50 --json
on_cpu "$WORK/anole-spin" 0.6
spinner=$BUSY
wait "$spinner"
on_cpu dd if=/dev/zero of=/dev/null bs=64M count=100 status=none
wait "$BUSY"
diag_stop kernel
assert_eq "$(diag_json "sum(r['pid'] == $spinner for r in rows)" "$WORK/kernel.out")" 0 \
	"nosched -k: the user-mode spinner"
kframes=$(diag_json "[r['kernel_stack'] for r in rows if r['pid'] == $BUSY and r['comm'] == 'dd' and r['kernel_samples'] > 0]" "$WORK/kernel.out")
log "-k: dd $BUSY: $kframes"
# where the latest sample found it: reading, faulting pages in, or freeing them at exit
diag_json "any({'read_zero', 'read_iter_zero', 'iov_iter_zero', 'vfs_read', 'ksys_read', 'clear_user',
	'handle_mm_fault', 'do_exit', 'exit_mmap', 'unmap_page_range', 'do_syscall_64', 'invoke_syscall',
	'do_trap_ecall_u'} & set(s) for s in $kframes)" "$WORK/kernel.out" |
	grep -q True || fail "nosched -k: no kernel stack of dd $BUSY: $(cat "$WORK/kernel.out")"

# 3. -p: that process only; then text. The spinner outlives both runs (it
# spins until killed), so its runs are reported while it exists (user stack
# symbolised), and the run going on when tracing ends is reported as still
# running - unless RT throttling (50 ms a second) just switched it out: two
# chances, and up to four more -p runs if both missed (other tests' work
# beside this one keeps normal tasks waiting for the spinner's CPU, which the
# fair server lets in: in CI both chances were missed once). The -p and
# text runs each last until the spinner has had 2 s of CPU: the spinner may
# keep its CPU for 0.95 s at most (RT throttling and the fair server take
# the rest of each second), so each of them holds at least one whole run,
# reported at its switch out whatever happens at the end (in CI a text run
# of 0.5 s had no row for the spinner at all). The extra -p runs, which
# look only at the end, last 0.5 s.
on_cpu "$WORK/anole-spin" 1e9
spinner=$BUSY
diag_start pid nosched -p "$spinner" -t 20 --json
diag_wait_cpu "$spinner" 2
diag_stop pid
others=$(diag_json "sorted({r['pid'] for r in rows} - {$spinner})" "$WORK/pid.out")
assert_eq "$others" "[]" "nosched -p $spinner: other processes"
assert_eq "$(diag_json "any(r['user_stack'][:1] == ['anole_test_spin_here'] for r in rows)" "$WORK/pid.out")" \
	True "nosched -p $spinner: the spinner's user frame"
diag_start text nosched -t 20
diag_wait_cpu "$spinner" 2
diag_stop text
assert_grep '^COMM  *PID  *TID  *CPU  *ON-CPU(ms) MODE$' "$WORK/text.out" "text: header"
assert_grep "^anole-spin  *$spinner  *$spinner  *$cpu  *[0-9.]*  *[a-z+]*user" "$WORK/text.out" "text: the spinner"
assert_grep '^    anole_test_spin_here$' "$WORK/text.out" "text: the spinner's user frame"
ongoing=$(diag_json "sum(r['ongoing'] for r in rows)" "$WORK/pid.out")
grep -q "^anole-spin  *$spinner .* (still running)$" "$WORK/text.out" && ongoing=$((ongoing + 1))
for i in 1 2 3 4; do
	[ "$ongoing" -eq 0 ] || break
	log "chance $((i + 2)) for the run going on at the end"
	diag_start "pid$i" nosched -p "$spinner" -t 20 --json
	diag_wait_cpu "$spinner" 0.5
	diag_stop "pid$i"
	ongoing=$(diag_json "sum(r['ongoing'] for r in rows)" "$WORK/pid$i.out")
done
[ "$ongoing" -gt 0 ] || fail "nosched: the spinner's run at the end was not reported as still running"
kill "$spinner"
wait "$spinner" 2>/dev/null || true

# 5. bad threshold: a usage error
for bad in "-t 0" "-t abc"; do
	rc=0
	# shellcheck disable=SC2086
	"$ANOLE" diag nosched --duration 1 $bad >"$WORK/bad.out" 2>"$WORK/bad.err" || rc=$?
	assert_eq "$rc" 2 "nosched $bad: exit status"
done
log "pass"
