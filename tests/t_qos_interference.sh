#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole qos run, [interference]: LS's p99 drives a cap on BE's CPU budget
# (AIMD). A synthetic LS latency file over target takes BE's quota down by
# half per pass to the configured minimum, never below; within target it
# comes back by increase_millicpus per pass; a stale file changes nothing.
# Then the agent's own probe with a target no wake-up can meet (1 µs) takes
# BE to its minimum too.
. "$TESTDIR/lib.sh"
. "$TESTDIR/qos_lib.sh"
need_anole
have_v1 || skip "needs cpu, memory and blkio on cgroup v1"

# Capacity 8 CPUs, threshold 65%, reserve 25% (at least this machine's
# whole "system" use): the formula's budget is 3.2 CPUs - LS, LS idle here.
LAT=$WORK/ls-p99
base=('[cpu_suppress]' 'mode = "quota"' 'capacity_millicpus = 8000' 'threshold_percent = 65'
	'reserve_percent = 25' 'min_millicpus = 200' '[memory]' 'enabled = false' '[evict]'
	'enabled = false' '[blkio]' 'enabled = false' '[cpu_burst]' 'enabled = false')
qos_conf 'interval_ms = 500' "${base[@]}" '[interference]' 'enabled = true' \
	'target_p99_us = 1000' "latency_file = \"$LAT\"" 'decrease_percent = 50' \
	'increase_millicpus = 400' 'stale_intervals = 6'
for c in ls mid be; do "$ANOLE" qos exec -c "$QCONF" --class $c -- true; done
knob_snapshot "$WORK/before"
BEQ=$V1CPU/$QNAME-be/cpu.cfs_quota_us
MINQ=20000      # 200 millicpus of a 100 ms period

# writer P99: rewrite the latency file every 0.1 s, as an exporter would
writer_pid=
writer() {
	[ -z "$writer_pid" ] || { kill "$writer_pid"; wait "$writer_pid" 2>/dev/null || true; }
	sh -c "while :; do echo $1 >$LAT.tmp && mv $LAT.tmp $LAT; sleep 0.1; done" & writer_pid=$!
	add_pid $writer_pid
}
cap() { qos_json "s['agent']['metrics']['policies']['interference']['cap_millicpus']"; }

writer 100
qos_start
qos_wait_passes 2
assert_ge "$(cat $BEQ)" 300000 "BE quota with LS within target"
assert_eq "$(cap)" 8000 "no cap while LS is within target"

log "LS p99 over target: BE halves per pass down to its minimum"
writer 5000
# the first pass that reads 5000 cuts 3.2 CPUs to 1.6
qos_within_passes 2 "[ \$(cat $BEQ) -le 160000 ]" || fail "BE quota $(cat $BEQ) not cut"
# 1600 -> 800 -> 400 -> 200 (the floor): 3 more passes
qos_within_passes 4 "[ \$(cat $BEQ) -eq $MINQ ]" || fail "BE quota $(cat $BEQ) not at its minimum"
p0=$(qos_passes)
qos_wait_passes $((p0 + 3))
assert_eq "$(cat $BEQ)" $MINQ "BE quota held at its minimum, not below"
assert_eq "$(cap)" 200 "cap at the floor"
assert_ge "$(qos_json "s['agent']['metrics']['policies']['interference']['cap_decreases']")" 4 \
	"cap decreases counted"
assert_eq "$(qos_json "s['agent']['metrics']['policies']['interference']['ls_p99_us']")" 5000.0 \
	"LS p99 in the status"
grep -q '^anole_qos_be_cpu_cap_millicpus{agent="'"$QNAME"'"} 200$' "$QSTATE/$QNAME.prom" ||
	fail "no cap in the Prometheus metrics"

log "LS within target: BE gets 400 millicpus back per pass"
writer 100
qos_within_passes 2 "[ \$(cat $BEQ) -gt $MINQ ]" || fail "BE quota not raised"
q1=$(cat $BEQ)
# additive: one or two passes give at most 2 x 400 millicpus
assert_le "$q1" 100000 "BE quota after the first pass within target (additive, not at once)"
# 200 + 400 x 8 >= 3200: the formula again within 8 passes
qos_within_passes 10 "[ \$(cat $BEQ) -ge 300000 ]" || fail "BE quota $(cat $BEQ) did not come back"
# and the cap itself up to the capacity (no cap): (8000 - 200) / 400 = 20
# passes from the floor, some of them gone already
qos_within_passes 22 "[ \$(cap) -eq 8000 ]" || fail "cap $(cap) not lifted"

log "a stale latency file is no signal"
kill "$writer_pid"; wait "$writer_pid" 2>/dev/null || true; writer_pid=
echo 5000 >"$LAT"
touch -d '-1 min' "$LAT"
p0=$(qos_passes)
qos_wait_passes $((p0 + 3))
assert_ge "$(cat $BEQ)" 300000 "BE quota with a stale file"
qos_stop
knob_snapshot "$WORK/after"
diff "$WORK/before" "$WORK/after" >&2 || fail "knobs differ after the agent stopped"

log "the probe as the latency source, target 1 µs (no wake-up is that punctual)"
qos_conf 'interval_ms = 500' "${base[@]}" '[probe]' 'enabled = true' '[interference]' \
	'enabled = true' 'target_p99_us = 1'
qos_start
# the probe's first figure comes after one interval; 4 cuts from 3.2 CPUs
qos_within_passes 10 "[ \$(cat $BEQ) -eq $MINQ ]" || fail "BE quota $(cat $BEQ) not at its minimum"
"$PY" - "$("$ANOLE" qos status -c "$QCONF" --json)" <<'PY'
import json, sys
m = json.loads(sys.argv[1])["agent"]["metrics"]
i = m["policies"]["interference"]
assert i["ls_p99_us"] > 1 and i["cap_decreases"] >= 4, i
assert m["probe"]["p99_us"] > 1, m["probe"]
PY
qos_stop
