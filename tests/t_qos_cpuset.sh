#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole qos run on cgroup v1, BE CPU suppression as a cpuset (forced with
# cpu_suppress.mode = "cpuset": "auto" picks it from cpuset_min_cpus CPUs,
# and this machine may have 2): BE's groups get whole CPUs, the highest-
# numbered, at least one; an LS spinner takes BE down to one CPU within 3 of
# the agent's passes and a BE spinner then runs on that CPU only; a budget
# under one CPU is a quota on that CPU, lifted when LS eases off; stopping
# LS gives the CPU back; SIGKILL leaves the cpuset cut and `anole qos
# restore` puts it back byte for byte; with LS pinned to a CPU, BE has the
# others; an adopted BE group with no cpuset directory gets a quota; "auto"
# is a cpuset from cpuset_min_cpus CPUs (default 4), a quota below.
. "$TESTDIR/lib.sh"
. "$TESTDIR/qos_lib.sh"
need_anole
have_v1 || skip "needs cpu, memory and blkio on cgroup v1"
[ -f $V1CS/cpuset.cpus ] || skip "no v1 cpuset controller"
ALL=$(cat $V1CS/cpuset.cpus)
NCPU=$("$PY" -c "
n = 0
for r in '$ALL'.split(','):
    a, _, b = r.partition('-'); n += int(b or a) - int(a) + 1
print(n)")
[ "$NCPU" -ge 2 ] || skip "one CPU: BE cannot be given fewer than LS has"
LAST=$("$PY" -c "print('$ALL'.replace('-', ',').split(',')[-1])")

# Capacity 8 CPUs, threshold 52%, reserve 25% (2 CPUs, at least this whole
# machine's "system" use): budget = 4.16 - 2 - LS = 2.16 - LS CPUs, so BE has
# 2 whole CPUs (capped at what the machine has) while LS is idle and 1 as
# soon as LS uses more than 0.16 CPU over an interval.
base=('capacity_millicpus = 8000' 'threshold_percent = 52'
	'reserve_percent = 25' '[memory]' 'enabled = false' '[evict]' 'enabled = false'
	'[blkio]' 'enabled = false' '[cpu_burst]' 'enabled = false')
qos_conf 'interval_ms = 1000' '[cpu_suppress]' 'mode = "cpuset"' "${base[@]}"
for c in ls mid be; do "$ANOLE" qos exec -c "$QCONF" --class $c -- true; done
BECS=$V1CS/$QNAME-be/cpuset.cpus
BEQ=$V1CPU/$QNAME-be/cpu.cfs_quota_us
# a new v1 cpuset group gets its parent's CPUs and memory nodes (else no task
# could join it)
assert_eq "$(cat $BECS)" "$ALL" "BE's cpuset when created"
[ -n "$(cat $V1CS/$QNAME-be/cpuset.mems)" ] || fail "BE's cpuset.mems is empty"
echo 262144 >"$V1CPU/$QNAME/cpu.shares"
echo 262144 >"$V1CPU/$QNAME/ls/cpu.shares"
knob_snapshot "$WORK/before"
"$ANOLE" qos status -c "$QCONF" --json >"$WORK/status.json"
assert_eq "$("$PY" -c "import json; print(json.load(open('$WORK/status.json'))['knobs']['cpuset'])")" \
	True "status: cpuset knob"

"$ANOLE" qos exec -c "$QCONF" --class be -- sh -c 'while :; do :; done' & be_pid=$!
add_pid $be_pid
wait_until 20 "grep -qx $be_pid $V1CS/$QNAME-be/cgroup.procs" || fail "the BE spinner is not in BE's cpuset"
qos_start
qos_wait_passes 2
assert_eq "$(qos_json "s['agent']['metrics']['policies']['cpu_suppress']['mode']")" cpuset "mode"
assert_eq "$(cat $BECS)" "$ALL" "BE's cpuset with LS idle (2 CPUs or all)"
assert_eq "$(cat $BEQ)" -1 "BE's quota in cpuset mode"

log "an LS spinner takes BE down to one CPU"
"$ANOLE" qos exec -c "$QCONF" --class ls -- sh -c 'while :; do :; done' & ls_pid=$!
add_pid $ls_pid
wait_until 20 "grep -qx $ls_pid $V1CPU/$QNAME/ls/cgroup.procs" || fail "the LS spinner did not start"
# the third pass after now has a whole interval of LS spinning
qos_within_passes 3 "[ \"\$(cat $BECS)\" = $LAST ]" ||
	fail "BE's cpuset is $(cat $BECS) with LS spinning, want $LAST"
assert_eq "$(qos_json "s['agent']['metrics']['policies']['cpu_suppress']['be_cpus']")" "$LAST" \
	"be_cpus in status"
assert_eq "$(awk '/^Cpus_allowed_list/ {print $2}' /proc/$be_pid/status)" "$LAST" \
	"the BE spinner's allowed CPUs"
# where it runs: field 39 of stat, the CPU it last ran on, sampled while it
# spins (the cpuset moved it at once)
for _ in $(seq 10); do
	cpu=$(awk '{print $39}' /proc/$be_pid/stat)
	assert_eq "$cpu" "$LAST" "the BE spinner's CPU"
	sleep 0.1
done

log "a second LS spinner: BE's budget is under one CPU, a quota on that CPU"
# budget = 2.16 - LS: two LS spinners at 256 times BE's parent's shares use
# more than 1.36 CPUs even next to other work, so the quota is under 0.8 CPU
"$ANOLE" qos exec -c "$QCONF" --class ls -- sh -c 'while :; do :; done' & ls2_pid=$!
add_pid $ls2_pid
qos_within_passes 3 "q=\$(cat $BEQ); [ \"\$q\" != -1 ] && [ \"\$q\" -le 80000 ]" ||
	fail "BE's quota is $(cat $BEQ) with two LS spinners, want a quota under 0.8 CPU"
assert_eq "$(cat $BECS)" "$LAST" "BE's cpuset with two LS spinners"
kill -KILL $ls2_pid; wait $ls2_pid 2>/dev/null || true
qos_within_passes 3 "[ \"\$(cat $BEQ)\" = -1 ]" ||
	fail "BE's quota is $(cat $BEQ) with one LS spinner again, want none (-1)"

log "LS stops: BE gets its CPUs back (one per interval)"
kill -KILL $ls_pid; wait $ls_pid 2>/dev/null || true
qos_within_passes $((NCPU + 3)) "[ \"\$(cat $BECS)\" = $ALL ]" ||
	fail "BE's cpuset is $(cat $BECS) after LS stopped, want $ALL"

log "SIGKILL mid-cut: restore puts BE's cpuset back"
"$ANOLE" qos exec -c "$QCONF" --class ls -- sh -c 'while :; do :; done' & ls_pid=$!
add_pid $ls_pid
qos_within_passes 4 "[ \"\$(cat $BECS)\" = $LAST ]" || fail "BE not cut again"
kill -KILL "$QPID"
wait_until 10 "! kill -0 $QPID 2>/dev/null" || fail "the agent survived SIGKILL"
kill -KILL $ls_pid; wait $ls_pid 2>/dev/null || true
assert_eq "$(cat $BECS)" "$LAST" "BE still cut after SIGKILL"
assert_exists "$QSTATE/$QNAME.state"
"$ANOLE" qos restore -c "$QCONF" >"$WORK/restore.out" || fail "restore failed"
knob_snapshot "$WORK/after"
diff "$WORK/before" "$WORK/after" >&2 || fail "knobs differ after restore"
assert_eq "$(awk '/^Cpus_allowed_list/ {print $2}' /proc/$be_pid/status)" "$ALL" \
	"the BE spinner's CPUs after restore"

log "LS pinned to CPU $LAST: BE's CPUs are others"
echo "$LAST" >"$V1CS/$QNAME/ls/cpuset.cpus"
qos_start
# the budget's 2 CPUs: the highest two but LAST (one on a 2-CPU node), as
# the kernel prints a list
EXPECT=$("$PY" -c "
n = []
for r in '$ALL'.split(','):
    a, _, b = r.partition('-'); n += range(int(a), int(b or a) + 1)
n.remove($LAST)
n = n[-2:]
out, i = [], 0
while i < len(n):
    j = i
    while j + 1 < len(n) and n[j + 1] == n[j] + 1: j += 1
    out.append(str(n[i]) if i == j else '%d-%d' % (n[i], n[j])); i = j + 1
print(','.join(out))")
qos_within_passes 3 "[ \"\$(cat $BECS)\" = $EXPECT ]" ||
	fail "BE's cpuset is $(cat $BECS) with LS pinned to $LAST"
qos_stop
assert_eq "$(cat $BECS)" "$ALL" "BE's cpuset after stop"
echo "$ALL" >"$V1CS/$QNAME/ls/cpuset.cpus"

log "an adopted BE group outside the cpuset hierarchy gets a quota"
for h in $V1CPU $V1ACCT $V1MEM; do mkdir -p "$h/$QNAME-adopt"; done
qos_conf 'interval_ms = 1000' '[cpu_suppress]' 'mode = "cpuset"' "${base[@]}" '[be]' \
	"cgroups = [\"/$QNAME-adopt\"]"
qos_start
qos_wait_passes 2
assert_ne "$(cat $V1CPU/$QNAME-adopt/cpu.cfs_quota_us)" -1 "the adopted group's quota"
assert_eq "$(cat $V1CPU/$QNAME-be/cpu.cfs_quota_us)" -1 "BE's own quota in cpuset mode"
qos_stop
assert_eq "$(cat $V1CPU/$QNAME-adopt/cpu.cfs_quota_us)" -1 "the adopted group's quota after stop"

log "auto: a cpuset from cpuset_min_cpus CPUs (default 4), else a quota"
qos_conf 'interval_ms = 1000' '[cpu_suppress]' "${base[@]}"
qos_start
qos_wait_passes 1
assert_eq "$(qos_json "s['agent']['metrics']['policies']['cpu_suppress']['mode']")" \
	"$([ "$NCPU" -ge 4 ] && echo cpuset || echo quota)" "auto mode on $NCPU CPUs"
qos_stop
qos_conf 'interval_ms = 1000' '[cpu_suppress]' "cpuset_min_cpus = $NCPU" "${base[@]}"
qos_start
qos_wait_passes 1
assert_eq "$(qos_json "s['agent']['metrics']['policies']['cpu_suppress']['mode']")" cpuset \
	"auto mode with cpuset_min_cpus $NCPU"
qos_stop
qos_conf 'interval_ms = 1000' '[cpu_suppress]' "cpuset_min_cpus = $((NCPU + 1))" "${base[@]}"
qos_start
qos_wait_passes 1
assert_eq "$(qos_json "s['agent']['metrics']['policies']['cpu_suppress']['mode']")" quota \
	"auto mode with cpuset_min_cpus $((NCPU + 1))"
assert_eq "$(cat $BECS)" "$ALL" "BE's cpuset under auto as a quota"
assert_ne "$(cat $BEQ)" -1 "BE's quota under auto as a quota"
qos_stop
