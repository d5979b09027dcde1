#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole diag runqlat sees CPU contention: 2 x nproc busy loops pinned to one
# CPU wait on its run queue for milliseconds, so the histogram must have
# counts at or above 1 ms (slot 1024 us) - with the hook chosen here, with
# the raw_tp fallback, and with -p on one of the loops (while a sleeping
# process, never runnable, gets an empty histogram). Ctrl-C prints what was
# collected and detaches; no BPF object is left after any run. Runs are
# ended by SIGINT after a window of at least N seconds (--duration N could
# end one before diag_start sees it attached on a loaded machine).
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
need_diag
need_cmd taskset nproc

"$ANOLE" diag list --json >"$WORK/list.json" || fail "anole diag list failed"
runs=$(diag_json '[t for t in rows[0]["tools"] if t["name"] == "runqlat"][0]["runs"]' "$WORK/list.json")
[ "$runs" = True ] || skip "runqlat does not run on this kernel: $(cat "$WORK/list.json")"

# the contention: busy loops on CPU 0
n=$(( 2 * $(nproc) ))
loops=()
for _ in $(seq "$n"); do
	taskset -c 0 bash -c 'while :; do :; done' &
	add_pid $!
	loops+=($!)
done
sleep 30 &
sleeper=$!
add_pid "$sleeper"
log "$n busy loops on CPU 0: ${loops[*]}"

# above_1ms NAME: counts at or above 1024 us in the (only) JSON report
above_1ms() {
	[ "$(diag_json 'len(rows)' "$WORK/$1.out")" -eq 1 ] ||
		fail "$1: expected one JSON report, got: $(cat "$WORK/$1.out")"
	diag_json 'above(rows[0]["hist"], 1024)' "$WORK/$1.out"
}

# 1. the hook this kernel offers first
diag_start all runqlat --json
sleep 3
diag_stop all
a=$(above_1ms all)
log "all tasks: $(diag_json 'rows[0]["total"]' "$WORK/all.out") wakeups, $a at >= 1 ms"
[ "$a" -gt 0 ] || fail "runqlat saw no run-queue latency >= 1 ms under contention: $(cat "$WORK/all.out")"
assert_eq "$(diag_json 'rows[0]["unit"]' "$WORK/all.out")" usecs "unit"

# 2. the raw_tp fallback, when the kernel has it
if grep -q '"raw_tp"' "$WORK/list.json"; then
	diag_start raw runqlat --hook raw_tp --json
	assert_grep 'using raw_tp' "$WORK/raw.err" "runqlat --hook raw_tp"
	sleep 3
	diag_stop raw
	a=$(above_1ms raw)
	[ "$a" -gt 0 ] || fail "runqlat (raw_tp) saw no latency >= 1 ms: $(cat "$WORK/raw.out")"
fi

# 3. -p: one busy loop has latency; the sleeper has none
diag_start pid runqlat -p "${loops[0]}" --json
diag_wait_cpu "${loops[0]}" 0.05 # it was switched in: after a wait behind the others
diag_stop pid
a=$(above_1ms pid)
[ "$a" -gt 0 ] || fail "runqlat -p ${loops[0]} saw no latency >= 1 ms: $(cat "$WORK/pid.out")"
diag_start idle runqlat -p "$sleeper" --json
sleep 1
diag_stop idle
assert_eq "$(diag_json 'rows[0]["total"]' "$WORK/idle.out")" 0 "runqlat -p of a sleeping process"

# 3b. -P: a histogram per process; every busy loop's has waits >= 1 ms and
# is named after it; -L keys by thread (a loop is one thread: same ids)
diag_start perpid runqlat -P --json
for l in "${loops[@]}"; do diag_wait_cpu "$l" 0.05; done
diag_stop perpid
for l in "${loops[@]}"; do
	a=$(diag_json "sum(above(h['hist'], 1024) for h in rows[0]['hists'] if h['pid'] == $l)" "$WORK/perpid.out")
	[ "$a" -gt 0 ] || fail "runqlat -P: no waits >= 1 ms for busy loop $l: $(cat "$WORK/perpid.out")"
	assert_eq "$(diag_json "[h['comm'] for h in rows[0]['hists'] if h['pid'] == $l][0]" "$WORK/perpid.out")" bash "runqlat -P: name of process $l"
done
[ "$(diag_json "len([h for h in rows[0]['hists'] if h['pid'] == $sleeper])" "$WORK/perpid.out")" -eq 0 ] ||
	fail "runqlat -P: a histogram for the sleeping process $sleeper"
diag_start pertid runqlat -L -p "${loops[0]}" --json
diag_wait_cpu "${loops[0]}" 0.05
diag_stop pertid
assert_eq "$(diag_json "[h['tid'] for h in rows[0]['hists']]" "$WORK/pertid.out")" "[${loops[0]}]" "runqlat -L -p: its one thread"
rc=0
"$ANOLE" diag runqlat -P -L --duration 1 >/dev/null 2>"$WORK/pl.err" || rc=$?
assert_eq "$rc" 2 "runqlat -P -L: exit status"
assert_grep 'P and -L go alone' "$WORK/pl.err" "runqlat -P -L message"

# 4. text output and Ctrl-C: the libbpf-tools histogram, then a clean exit
diag_start text runqlat
sleep 1
kill -INT "$DIAG_PID"
diag_finish text
assert_grep '^     usecs               : count    distribution$' "$WORK/text.out" "histogram header"
assert_grep '^         0 -> 1          : [0-9]' "$WORK/text.out" "first histogram row"
assert_grep '^      1024 -> 2047       : [0-9]* *|[* ]*|$' "$WORK/text.out" "1 ms row"

# 5. SIGTERM with an interval: reports so far, then a clean exit
diag_start term runqlat -m 1
sleep 1.5
kill -TERM "$DIAG_PID"
diag_finish term
assert_grep '^     msecs               : count    distribution$' "$WORK/term.out" "-m header"
log "pass"
