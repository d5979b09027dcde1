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

# 1. the hook chosen here, and raw_tp when the kernel has it
hooks=default
grep -q '"raw_tp"' "$WORK/list.json" && hooks="default raw_tp"
for h in $hooks; do
	if [ "$h" = default ]; then
		diag_start "json-$h" offcputime --json
	else
		diag_start "json-$h" offcputime --hook "$h" --json
		assert_grep "using $h" "$WORK/json-$h.err" "offcputime --hook $h"
	fi
	sleep 1.5 &
	sp=$!
	wait "$sp"
	diag_stop "json-$h"
	[ "$(slept "json-$h" "$sp")" = True ] ||
		fail "offcputime ($h) did not report sleep $sp in nanosleep: $(grep "\"pid\":$sp," "$WORK/json-$h.out")"
	log "$h: $(grep -m1 "\"pid\":$sp," "$WORK/json-$h.out")"
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
diag_start cg offcputime -c "$cg" --json
bash -c "echo \$\$ >'$cg/cgroup.procs' && exec sleep 1.5" &
sp=$!
wait "$sp"
diag_stop cg
[ "$(slept cg "$sp")" = True ] || fail "offcputime -c missed sleep $sp in the cgroup: $(cat "$WORK/cg.out")"
others=$(diag_json "sorted({r['pid'] for r in rows if r['pid'] and r['pid'] != $sp})" "$WORK/cg.out")
assert_eq "$others" "[]" "offcputime -c: processes outside the cgroup"

# 4. text (libbpf-tools layout) and folded output
diag_start text offcputime
sleep 1.2 &
sp=$!
wait "$sp"
diag_stop text
assert_grep "^    -  *sleep ($sp)$" "$WORK/text.out" "text: the sleep's stack"
assert_grep "^    __schedule$" "$WORK/text.out" "text: a scheduler frame"
diag_start folded offcputime --folded
sleep 1.2 &
sp=$!
wait "$sp"
diag_stop folded
assert_grep "^sleep;.*nanosleep.*;schedule;__schedule [0-9][0-9]*$" "$WORK/folded.out" "folded: the sleep's stack"

# 5. bad input: a usage error before loading anything
rc=0
"$ANOLE" diag offcputime -m 10 -M 5 --duration 1 >"$WORK/bad.out" 2>"$WORK/bad.err" || rc=$?
assert_eq "$rc" 2 "offcputime -m 10 -M 5: exit status"
assert_grep "min-block-time is above" "$WORK/bad.err" "offcputime -m 10 -M 5: message"
log "pass"
