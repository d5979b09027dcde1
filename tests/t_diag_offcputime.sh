#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole diag offcputime sees a task sleeping in a known syscall: `sleep 1.5`
# (clock_nanosleep) is reported with its pid and comm, about 1.5 s off CPU,
# and a kernel stack through the scheduler (schedule/__schedule) and
# do_nanosleep - with the hook chosen here and the raw_tp fallback; -p on a
# process blocked reading a pipe reports only that process, in pipe_read;
# -c reports only the cgroup's tasks; text and folded output. No BPF object
# is left after any run. User stacks: the reader's, symbolised, starts in
# libc's read(). Each run is ended by SIGINT once what it must see has
# happened (a loaded machine can take seconds to start a `sleep`).
# The kernel does not report every switch-in (about one switch-out in a
# thousand here comes with no switch-in before it, and the tool warns
# "lost"): a sleep missed with that warning is run again, up to 3 times.
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
need_diag

"$ANOLE" diag list --json >"$WORK/list.json" || fail "anole diag list failed"
runs=$(diag_json '[t for t in rows[0]["tools"] if t["name"] == "offcputime"][0]["runs"]' "$WORK/list.json")
[ "$runs" = True ] || skip "offcputime does not run on this kernel: $(cat "$WORK/list.json")"

# slept NAME PID: the JSON rows of run NAME show PID as `sleep`, >= 1.2 s off
# CPU in one stack through the scheduler and nanosleep
slept() {
	diag_json "any(r['pid'] == $2 and r['comm'] == 'sleep' and r['usecs'] >= 1200000 and
		{'schedule', '__schedule'} & set(r['kernel_stack']) and
		any('nanosleep' in f for f in r['kernel_stack']) for r in rows if r['pid'])" "$WORK/$1.out"
}

# watch_sleep NAME CHECK SECS [CGROUP] -- TOOL-ARGS: runs of offcputime
# TOOL-ARGS named NAME (then NAME.2, NAME.3) around `sleep SECS` (moved into
# CGROUP first when given), until `CHECK RUN PID` succeeds; a run is repeated
# only when the tool said it lost a period. Sets RUN and SP to the last.
watch_sleep() {
	local name=$1 check=$2 secs=$3 cg=$4 try
	shift 5
	for try in 1 2 3; do
		RUN=$name
		[ "$try" = 1 ] || RUN=$name.$try
		diag_start "$RUN" offcputime "$@"
		if [ -n "$cg" ]; then
			bash -c "echo \$\$ >'$cg/cgroup.procs' && exec sleep $secs" &
		else
			sleep "$secs" &
		fi
		SP=$!
		wait "$SP"
		diag_stop "$RUN"
		"$check" "$RUN" "$SP" && return 0
		grep -q 'periods lost' "$WORK/$RUN.err" || return 1
		log "$RUN: sleep $SP missed with a lost switch-in reported: $(grep 'periods lost' "$WORK/$RUN.err")"
	done
	return 1
}
slept_json() { [ "$(slept "$1" "$2")" = True ]; }

# 1. the hook chosen here, and raw_tp when the kernel has it
hooks=default
grep -q '"raw_tp"' "$WORK/list.json" && hooks="default raw_tp"
for h in $hooks; do
	args=(--json)
	[ "$h" = default ] || args=(--hook "$h" --json)
	watch_sleep "json-$h" slept_json 1.5 "" -- "${args[@]}" ||
		fail "offcputime ($h) did not report sleep $SP in nanosleep: $(grep "\"pid\":$SP," "$WORK/$RUN.out"; cat "$WORK/$RUN.err")"
	[ "$h" = default ] || assert_grep "using $h" "$WORK/$RUN.err" "offcputime --hook $h"
	log "$h: $(grep -m1 "\"pid\":$SP," "$WORK/$RUN.out")"
done

# 2. -p: a process blocked reading a pipe (a writer wakes it every 0.3 s)
cat >"$WORK/reader.py" <<'PY'
import os, time
r, w = os.pipe()
if os.fork() == 0:
    os.close(r)
    while True:
        time.sleep(0.3)
        os.write(w, b"x")
os.close(w)
while os.read(r, 1):
    pass
PY
"$PY" "$WORK/reader.py" &
reader=$!
add_pid "$reader"
# its writer child exists once python has started and forked (which takes
# a while on a loaded machine): wait for it, not for a fixed time
writer=
while [ -z "$writer" ] && kill -0 "$reader" 2>/dev/null; do
	writer=$(pgrep -P "$reader" | head -n1 || true)
	[ -n "$writer" ] || sleep 0.1
done
[ -n "$writer" ] || fail "the pipe reader $reader exited before forking its writer"
add_pid "$writer"
diag_start pid offcputime -p "$reader" --json
sleep 2.5 # about 8 blocks of 0.3 s; the check asks for 1 s of them
diag_stop pid
others=$(diag_json "sorted({r['pid'] for r in rows if r['pid'] and r['pid'] != $reader})" "$WORK/pid.out")
assert_eq "$others" "[]" "offcputime -p $reader: other processes"
us=$(diag_json "sum(r['usecs'] for r in rows if r['pid'] == $reader and any('pipe_read' in f for f in r['kernel_stack']))" "$WORK/pid.out")
log "reader $reader: $us us off CPU in pipe_read"
[ "$us" -ge 1000000 ] || fail "offcputime -p $reader: only $us us in pipe_read: $(cat "$WORK/pid.out")"
# its user stack too (libdwfl): the libc read() it blocked in
ur=$(diag_json "sum(r['usecs'] for r in rows if r['pid'] == $reader and r['user_stack'] and 'read' in r['user_stack'][0])" "$WORK/pid.out")
log "reader $reader: $ur us off CPU in a user read() frame"
[ "$ur" -ge 1000000 ] || fail "offcputime -p $reader: user stacks without read(): $(cat "$WORK/pid.out")"

# 3. -c: only the cgroup's tasks
cg=$(diag_mkcgroup offcputime)
watch_sleep cg slept_json 1.5 "$cg" -- -c "$cg" --json ||
	fail "offcputime -c missed sleep $SP in the cgroup: $(cat "$WORK/$RUN.out" "$WORK/$RUN.err")"
others=$(diag_json "sorted({r['pid'] for r in rows if r['pid'] and r['pid'] != $SP})" "$WORK/$RUN.out")
assert_eq "$others" "[]" "offcputime -c: processes outside the cgroup"

# 4. text (libbpf-tools layout) and folded output
# the sleep's stack: its nanosleep and the scheduler frames above it
slept_text() {
	awk -v want="-  *sleep [(]$2[)]" '
		/^    __schedule$/ { s = 1 } /nanosleep/ { n = 1 }
		$0 ~ "^    " want "$" && s && n { found = 1 }
		/^$/ { s = n = 0 } END { exit !found }' "$WORK/$1.out"
}
slept_folded() { grep -q "^sleep;.*nanosleep.*;schedule;__schedule [0-9][0-9]*$" "$WORK/$1.out"; }
watch_sleep text slept_text 1.2 "" -- ||
	fail "text: no stack of sleep $SP through nanosleep and __schedule: $(cat "$WORK/$RUN.out" "$WORK/$RUN.err")"
watch_sleep folded slept_folded 1.2 "" -- --folded ||
	fail "folded: no stack of sleep $SP through nanosleep: $(cat "$WORK/$RUN.out" "$WORK/$RUN.err")"

# 5. bad input: a usage error before loading anything
rc=0
"$ANOLE" diag offcputime -m 10 -M 5 --duration 1 >"$WORK/bad.out" 2>"$WORK/bad.err" || rc=$?
assert_eq "$rc" 2 "offcputime -m 10 -M 5: exit status"
assert_grep "min-block-time is above" "$WORK/bad.err" "offcputime -m 10 -M 5: message"
log "pass"
