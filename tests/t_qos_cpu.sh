#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole qos run on cgroup v1: BE CPU suppression follows LS usage (an LS
# spinner takes BE's quota down within 3 of the agent's passes, stopping it
# gives it back), cpu.idle=1 on BE (BE spinners get almost nothing next to a normal
# group outside anole's tree), cpu.cfs_burst_us on an adopted LS cgroup with a quota (its bursts
# counted), the configured CFS period on BE's group (the quota scaled to it),
# and every knob byte-exact after the agent stops (the period too).
. "$TESTDIR/lib.sh"
. "$TESTDIR/qos_lib.sh"
need_anole
have_v1 || skip "needs cpu, memory and blkio on cgroup v1"
[ -f $V1CPU/cpu.idle ] || skip "this kernel has no v1 cpu.idle"

# Capacity 8 CPUs, threshold 65%, reserve 25% (2 CPUs): the reserve is at
# least the whole machine's 2 CPUs of "system" use, so other work on the
# host cannot move the budget: budget = 5.2 - 2 - LS = 3.2 CPUs - LS.
# BE's CFS period is 250 ms (the kernel's default is 100 ms), so its quota
# is the budget x 250000 us.
INTERVAL=1000
qos_conf "interval_ms = $INTERVAL" '[cpu_suppress]' 'mode = "quota"' 'capacity_millicpus = 8000' \
	'period_us = 250000' \
	'threshold_percent = 65' 'reserve_percent = 25' '[memory]' 'enabled = false' \
	'[evict]' 'enabled = false' '[blkio]' 'enabled = false' '[ls]' \
	"cgroups = [\"/$QNAME-adopt\"]"
for h in $V1CPU $V1ACCT $V1MEM $V1BLK; do mkdir -p "$h/$QNAME-adopt"; done
echo 50000 >"$V1CPU/$QNAME-adopt/cpu.cfs_quota_us"
# the classes exist before the agent (as when work was placed first)
"$ANOLE" qos exec -c "$QCONF" --class ls -- true
"$ANOLE" qos exec -c "$QCONF" --class be -- true
"$ANOLE" qos exec -c "$QCONF" --class mid -- true
# LS's weight: a spinner there gets a whole CPU even on a loaded host
# (anole's subtree competes with the host's other work as one group)
echo 262144 >"$V1CPU/$QNAME/cpu.shares"
echo 262144 >"$V1CPU/$QNAME/ls/cpu.shares"
mkdir -p "$V1CPU/$QNAME-ref" "$V1ACCT/$QNAME-ref"
knob_snapshot "$WORK/before"

qos_start
BEQ=$V1CPU/$QNAME-be/cpu.cfs_quota_us
# the first pass sets cpu.idle, the burst and a budget without LS usage
qos_wait_passes 1
assert_eq "$(cat $V1CPU/$QNAME-be/cpu.cfs_period_us)" 250000 "BE's CFS period"
assert_ge "$(cat $BEQ)" 750000 "BE quota (3.2 CPUs of a 250 ms period)"
assert_eq "$(cat $V1CPU/$QNAME-be/cpu.idle)" 1 "BE cpu.idle"
assert_eq "$(cat $V1CPU/$QNAME/ls/cpu.idle)" 0 "LS cpu.idle"
assert_eq "$(cat $V1CPU/$QNAME-adopt/cpu.cfs_burst_us)" 50000 "adopted LS burst"

# budget_after_passes WHAT: the metrics of the third pass after now or later.
# The next pass may have sampled before now, so the interval of the one after
# it may begin before now; the third's interval is wholly after now. Counted
# in the agent's own passes: a loaded host only makes them come later.
budget_after_passes() {
	local p0
	p0=$(qos_passes)
	qos_wait_passes $((p0 + 3))
	"$ANOLE" qos status -c "$QCONF" --json >"$WORK/status.json"
	log "$1: BE quota $(cat $BEQ) at pass $(qos_passes) (from pass $p0)"
}

log "suppression: an LS spinner takes BE's quota down"
"$ANOLE" qos exec -c "$QCONF" --class ls -- sh -c 'while :; do :; done' & ls_pid=$!
add_pid $ls_pid
wait_until 20 "grep -qx $ls_pid $V1CPU/$QNAME/ls/cgroup.procs" || fail "the LS spinner did not start"
# LS >= 0.4 CPU over a whole interval brings the budget to <= 2.8 CPUs
budget_after_passes "LS spinning"
assert_le "$(cat $BEQ)" 700000 "BE quota with an LS spinner"
"$PY" - "$WORK/status.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["agent"]["metrics"]
ls = m["classes"]["ls"]["cpu_usage_cores"]
b = m["policies"]["cpu_suppress"]["be_budget_millicpus"]
assert b <= 2800, b
# the formula, from the agent's own sample (both from one interval)
assert abs(b - (3200 - ls * 1000)) <= 2, (b, ls)
PY
kill -KILL $ls_pid; wait $ls_pid 2>/dev/null || true
budget_after_passes "LS stopped"
assert_ge "$(cat $BEQ)" 750000 "BE quota after LS stopped"

log "cpu.idle: BE spinners next to a normal group outside anole's tree"
# (as a container runtime's LS cgroup would be: cpu.idle ranks a group
# only among its siblings, so BE must be idle at the top, beside it, not
# inside /$QNAME, which competes with it at full weight)
echo 1024 >"$V1CPU/$QNAME/cpu.shares"
# everything on one CPU: there the share between siblings is exactly the
# weights' (the load balancer cannot give BE a CPU of its own)
need_cmd taskset
for _ in 1 2; do
	"$ANOLE" qos exec -c "$QCONF" --class be -- taskset -c 0 sh -c 'while :; do :; done' &
	add_pid $!
done
for _ in 1 2; do
	taskset -c 0 sh -c 'echo $$ >'"$V1CPU/$QNAME-ref/tasks"'; echo $$ >'"$V1ACCT/$QNAME-ref/tasks"'; while :; do :; done' &
	add_pid $!
done
sleep 0.5
be0=$(cat $V1ACCT/$QNAME-be/cpuacct.usage); ref0=$(cat $V1ACCT/$QNAME-ref/cpuacct.usage)
sleep 2
be1=$(cat $V1ACCT/$QNAME-be/cpuacct.usage); ref1=$(cat $V1ACCT/$QNAME-ref/cpuacct.usage)
log "BE $(((be1 - be0) / 1000000)) ms, normal group $(((ref1 - ref0) / 1000000)) ms of CPU"
# SCHED_IDLE group weight 3 against 1024 on that CPU: BE gets well under a
# tenth of the normal group's time (1/300 in the weights)
[ $(((be1 - be0) * 10)) -lt $((ref1 - ref0)) ] || fail "cpu.idle BE was not starved by a normal group"

log "burst: the adopted LS group bursts above its quota"
b0=$(awk '/nr_bursts/ {print $2}' $V1CPU/$QNAME-adopt/cpu.stat)
# 80 ms of CPU every 400 ms: over a 50 ms quota, within quota + burst
sh -c "echo \$\$ >$V1CPU/$QNAME-adopt/tasks; echo \$\$ >$V1ACCT/$QNAME-adopt/tasks; echo 262144 >$V1CPU/$QNAME-adopt/cpu.shares; exec $PY -c '
import time
for i in range(8):
    t = time.thread_time()
    while time.thread_time() - t < 0.08: pass
    time.sleep(0.4)
'"
b1=$(awk '/nr_bursts/ {print $2}' $V1CPU/$QNAME-adopt/cpu.stat)
log "nr_bursts $b0 -> $b1"
[ "$b1" -gt "$b0" ] || fail "the adopted LS group never used its burst"

log "stop: every knob as it was"
qos_stop
knob_snapshot "$WORK/after"
diff "$WORK/before" "$WORK/after" >&2 || fail "knobs differ after the agent stopped"
