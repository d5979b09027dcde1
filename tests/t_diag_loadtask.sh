#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole diag loadtask shows what the load average counts: three processes
# held in uninterruptible sleep (D: a parent waits, in the kernel, for its
# vfork child to exit or exec; the child sleeps) and two busy loops (R)
# must be listed with their pids and states, the D ones with their wchan
# and a kernel stack through vfork, and counted by state and by command;
# -p lists only that process; text output; INTERVAL COUNT gives COUNT
# reports; --hook is a usage error (no BPF).
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
need_root
need_anole
need_cmd cc python3

cat >"$WORK/vfork.c" <<'C'
#include <unistd.h>
/* The parent stays in D (vfork waits TASK_UNINTERRUPTIBLE|TASK_KILLABLE)
 * until the child exits: when the test kills it (a fixed time could run
 * out before a loaded machine gets through the checks). */
int main(void)
{
	if (vfork() == 0) {
		pause();
		_exit(0);
	}
	return 0;
}
C
cc -O1 -o "$WORK/anole-vfork" "$WORK/vfork.c" || fail "cannot build the test program"

blocked=()
for _ in 1 2 3; do
	"$WORK/anole-vfork" &
	blocked+=($!)
	add_pid $!
done
loops=()
for _ in 1 2; do
	bash -c 'while :; do :; done' &
	loops+=($!)
	add_pid $!
done
# the vfork children too, so the EXIT trap ends their parents' wait; each
# parent in D once its child exists (a loaded machine may take a while)
for p in "${blocked[@]}"; do
	for _ in $(seq 300); do
		[ "$(awk '{ print $3 }' "/proc/$p/stat")" = D ] && break
		sleep 0.1
	done
	c=$(pgrep -P "$p" || true)
	[ -n "$c" ] && add_pid "$c"
	assert_eq "$(awk '{ print $3 }' "/proc/$p/stat")" D "process $p's state (the setup)"
done
log "D: ${blocked[*]}; R: ${loops[*]}"
dlist=$(IFS=,; echo "[${blocked[*]}]")
rlist=$(IFS=,; echo "[${loops[*]}]")

# 1. JSON: every blocked parent as D with a vfork stack, every loop as R, the counts
"$ANOLE" diag loadtask --json >"$WORK/all.out" 2>"$WORK/all.err" || fail "loadtask failed: $(cat "$WORK/all.err")"
assert_eq "$(diag_json 'len(rows)' "$WORK/all.out")" 1 "loadtask: reports"
seen_d=$(diag_json "len({t['pid'] for t in rows[0]['tasks'] if t['pid'] in $dlist and t['tid'] == t['pid'] and
	t['state'] == 'D' and t['comm'] == 'anole-vfork' and t['wchan'] != '-' and
	any('vfork' in f or f == 'kernel_clone' for f in t['stack'])})" "$WORK/all.out")
seen_r=$(diag_json "len({t['pid'] for t in rows[0]['tasks'] if t['pid'] in $rlist and t['state'] == 'R' and t['comm'] == 'bash'})" "$WORK/all.out")
log "loadtask: $seen_d of 3 D processes, $seen_r of 2 R loops; loadavg $(diag_json "rows[0]['loadavg'], rows[0]['kernel_runnable'], rows[0]['by_state']" "$WORK/all.out")"
assert_eq "$seen_d" 3 "loadtask: blocked processes listed as D with their vfork stack"
assert_eq "$seen_r" 2 "loadtask: busy loops listed as R"
[ "$(diag_json "rows[0]['by_state']['D']" "$WORK/all.out")" -ge 3 ] || fail "loadtask: D count below 3"
[ "$(diag_json "rows[0]['by_state']['R']" "$WORK/all.out")" -ge 2 ] || fail "loadtask: R count below 2"
assert_eq "$(diag_json "[c['D'] for c in rows[0]['by_comm'] if c['comm'] == 'anole-vfork']" "$WORK/all.out")" "[3]" \
	"loadtask: D count of anole-vfork"
diag_json "len(rows[0]['loadavg']) == 3 and '/' in rows[0]['kernel_runnable']" "$WORK/all.out" | grep -q True ||
	fail "loadtask: no load average"

# 2. -p: that process only
"$ANOLE" diag loadtask -p "${blocked[0]}" --json >"$WORK/pid.out" || fail "loadtask -p failed"
assert_eq "$(diag_json "sorted({t['pid'] for t in rows[0]['tasks']})" "$WORK/pid.out")" "[${blocked[0]}]" "loadtask -p: processes"

# 3. text: counts by command, a D row and its stack
"$ANOLE" diag loadtask >"$WORK/text.out" || fail "loadtask (text) failed"
assert_grep '^load average: [0-9.]* [0-9.]* [0-9.]*, kernel runnable/threads: [0-9]*/[0-9]*$' "$WORK/text.out" "text: load average"
assert_grep '^R  *D  *TOTAL  *COMM$' "$WORK/text.out" "text: by command"
assert_grep '^0  *3  *3  *anole-vfork$' "$WORK/text.out" "text: anole-vfork's count"
assert_grep "^D  *${blocked[1]}  *${blocked[1]}  *anole-vfork  *[a-z_]" "$WORK/text.out" "text: a D row"
assert_grep "^R  *${loops[0]}  *${loops[0]}  *bash " "$WORK/text.out" "text: an R row"
assert_grep '^    [a-z_]*vfork[a-z_0-9]*+0x' "$WORK/text.out" "text: a vfork stack frame"

# 4. INTERVAL COUNT: COUNT reports, then exit (the test's timeout catches
# a run that does not end), having waited INTERVAL twice in between. Only
# a lower bound on the time: scans on a loaded machine can take seconds.
start=$(date +%s.%N)
"$ANOLE" diag loadtask --json -S 0.3 3 >"$WORK/ival.out" || fail "loadtask 0.3 3 failed"
took=$("$PY" -c "print(round($(date +%s.%N) - $start, 3))")
assert_eq "$(diag_json 'len(rows)' "$WORK/ival.out")" 3 "loadtask 0.3 3: reports"
assert_eq "$(diag_json "{str(t['stack']) for r in rows for t in r['tasks']}" "$WORK/ival.out")" "{'None'}" "loadtask -S: stacks"
log "loadtask 0.3 3: took $took s"
fcmp "$took" '>=' 0.6 || fail "loadtask 0.3 3: three reports in $took s, less than two intervals"

# 5. once the children exit, the parents leave D
for p in "${blocked[@]}"; do c=$(pgrep -P "$p" || true); [ -z "$c" ] || kill "$c"; done
for p in "${blocked[@]}"; do wait "$p" 2>/dev/null || true; done
"$ANOLE" diag loadtask --json >"$WORK/after.out" || fail "loadtask failed"
assert_eq "$(diag_json "[t['pid'] for t in rows[0]['tasks'] if t['pid'] in $dlist]" "$WORK/after.out")" "[]" \
	"loadtask: the released processes"

# 6. usage: no hooks to choose
rc=0
"$ANOLE" diag loadtask --hook tp_btf >"$WORK/bad.out" 2>"$WORK/bad.err" || rc=$?
assert_eq "$rc" 2 "loadtask --hook: exit status"
assert_grep "does not apply" "$WORK/bad.err" "loadtask --hook: message"
log "pass"
