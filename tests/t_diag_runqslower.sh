#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole diag runqslower sees CPU contention: 2 x nproc busy loops pinned to
# one CPU each wait milliseconds on its run queue, so with a 1 ms threshold
# each loop's pid must be reported, with the task it waited behind -
# with the hook chosen here and with the raw_tp and tracepoint fallbacks
# (the tracepoint's -p and -c are checked in user space); -p reports only
# that loop, a sleeping process nothing; -c only a loop in a test cgroup; a
# 1 s threshold reports no loop; text columns as libbpf-tools'; a bad
# MIN_US is a usage error. No BPF object is left after any run. A run
# that must see loops lasts until each has had CPU time after attaching
# (a 50 ms slice's worth: it was switched in, after waiting behind the
# others), then ends by SIGINT; --duration could close it first on a
# loaded machine.
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
need_diag
need_cmd taskset nproc

"$ANOLE" diag list --json >"$WORK/list.json" || fail "anole diag list failed"
runs=$(diag_json '[t for t in rows[0]["tools"] if t["name"] == "runqslower"][0]["runs"]' "$WORK/list.json")
[ "$runs" = True ] || skip "runqslower does not run on this kernel: $(cat "$WORK/list.json")"

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
pylist=$(IFS=,; echo "[${loops[*]}]")
log "$n busy loops on CPU 0: ${loops[*]}"

# seen NAME: loops reported by run NAME (pid, a wait >= 1 ms, the task it
# waited behind: another loop, or a task of a test running beside this one)
seen() {
	diag_json "len({r['pid'] for r in rows if r['pid'] in $pylist and r['tid'] == r['pid'] and
		r['lat_us'] >= 1000 and r['prev_tid'] > 0 and r['prev_comm'] and r['comm'] == 'bash'})" "$WORK/$1.out"
}

# 1. every hook this kernel offers: each loop is reported
for h in default raw_tp tracepoint; do
	if [ "$h" = default ]; then
		diag_start "$h" runqslower --json 1000
	else
		grep -q "\"$h\"" "$WORK/list.json" || continue
		diag_start "$h" runqslower --hook "$h" --json 1000
		assert_grep "using $h" "$WORK/$h.err" "runqslower --hook $h"
	fi
	for l in "${loops[@]}"; do diag_wait_cpu "$l" 0.05; done
	diag_stop "$h"
	s=$(seen "$h")
	log "$h: $(wc -l <"$WORK/$h.out") events, $s of $n loops seen; $(head -n1 "$WORK/$h.out")"
	[ "$(diag_json "sum(r['prev_tid'] in $pylist for r in rows if r['pid'] in $pylist)" "$WORK/$h.out")" -gt 0 ] ||
		fail "runqslower ($h): no loop waited behind another loop"
	[ "$s" -eq "$n" ] || fail "runqslower ($h) saw $s of the $n contending loops: $(head -n 20 "$WORK/$h.out")"
done

# 2. -p: that loop only (tp_btf, and the tracepoint's user-space check); the sleeper: nothing
for h in default tracepoint; do
	args=(-p "${loops[1]}" --json 1000)
	[ "$h" = default ] || args+=(--hook "$h")
	diag_start "pid-$h" runqslower "${args[@]}"
	diag_wait_cpu "${loops[1]}" 0.05
	diag_stop "pid-$h"
	others=$(diag_json "sorted({r['pid'] for r in rows} - {${loops[1]}})" "$WORK/pid-$h.out")
	assert_eq "$others" "[]" "runqslower -p ${loops[1]} ($h): other processes"
	[ "$(diag_json "sum(r['pid'] == ${loops[1]} for r in rows)" "$WORK/pid-$h.out")" -gt 0 ] ||
		fail "runqslower -p ${loops[1]} ($h) reported nothing"
done
# -c: a loop in a cgroup, contending with the others; the tracepoint's
# woken threads are matched to the cgroup from /proc
cg=$(diag_mkcgroup runqslower)
bash -c "echo \$\$ >'$cg/cgroup.procs' && exec taskset -c 0 bash -c 'while :; do :; done'" &
inside=$!
add_pid "$inside"
for h in default tracepoint; do
	args=(-c "$cg" --json 1000)
	[ "$h" = default ] || args+=(--hook "$h")
	diag_start "cg-$h" runqslower "${args[@]}"
	diag_wait_cpu "$inside" 0.05
	diag_stop "cg-$h"
	assert_eq "$(diag_json "sorted({r['pid'] for r in rows})" "$WORK/cg-$h.out")" "[$inside]" \
		"runqslower -c ($h): processes reported"
done
kill "$inside"
diag_start idle runqslower -p "$sleeper" --json 0
sleep 1
diag_stop idle
assert_eq "$(wc -l <"$WORK/idle.out")" 0 "runqslower -p of a sleeping process: events"

# 3. the threshold: no loop waits a whole second
diag_start slow runqslower --json 1000000
for l in "${loops[@]}"; do diag_wait_cpu "$l" 0.05; done
diag_stop slow
assert_eq "$(seen slow)" 0 "runqslower 1000000: loops reported"

# 4. text: libbpf-tools' columns, a loop's row, Ctrl-C detaches
diag_start text runqslower 1000
diag_wait_cpu "${loops[0]}" 0.05
diag_stop text
assert_grep '^Tracing run queue latency higher than 1000 us$' "$WORK/text.out" "text: banner"
assert_grep '^COMM  *TID  *LAT(us) PREV COMM  *PREV TID$' "$WORK/text.out" "text: header"
assert_grep "^bash  *${loops[0]}  *[0-9][0-9]* [^ ].*  *[0-9][0-9]*$" "$WORK/text.out" "text: a loop's row"

# 5. bad MIN_US: a usage error before loading anything
for bad in abc -5 "1000 2"; do
	rc=0
	# shellcheck disable=SC2086
	"$ANOLE" diag runqslower --duration 1 $bad >"$WORK/bad.out" 2>"$WORK/bad.err" || rc=$?
	assert_eq "$rc" 2 "runqslower $bad: exit status"
done
log "pass"
