#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole qos on a cgroup v2 layout: a test mount of cgroup2 given as the
# configuration's cgroup2_root with cgroup_mode = "v2". Status says v2;
# exec places into the v2 groups; the agent reads their PSI. Where the mount
# has the cpu controller (a v2 host) BE also gets cpu.max and cpu.idle, put
# back at stop; on this project's v1 host the controllers are bound to v1,
# which status reports.
. "$TESTDIR/lib.sh"
. "$TESTDIR/qos_lib.sh"
need_anole
grep -qw cgroup2 /proc/filesystems || skip "no cgroup2"
QV2MOUNT=$WORK/cg2
mkdir -p "$QV2MOUNT"
mount -t cgroup2 none "$QV2MOUNT" || skip "cannot mount cgroup2"
add_mount "$QV2MOUNT"

qos_conf 'cgroup_mode = "v2"' "cgroup2_root = \"$QV2MOUNT\"" 'interval_ms = 300' \
	'[cpu_suppress]' 'mode = "quota"' '[memory]' 'enabled = false' '[evict]' 'enabled = false' \
	'[blkio]' 'enabled = false'
"$ANOLE" qos status -c "$QCONF" --json >"$WORK/status.json"
assert_eq "$("$PY" -c "import json; s=json.load(open('$WORK/status.json')); print(s['cgroup'], s['cgroup2_root'])")" \
	"v2 $QV2MOUNT" "status of the v2 layout"
has_cpu=$(grep -qw cpu "$QV2MOUNT/cgroup.controllers" && echo True || echo False)
assert_eq "$("$PY" -c "import json; print(json.load(open('$WORK/status.json'))['knobs']['cpu_quota'])")" \
	"$has_cpu" "cpu controller on cgroup2 as the kernel has it"

"$ANOLE" qos exec -c "$QCONF" --class be -- sh -c 'cat /proc/self/cgroup' >"$WORK/cg"
assert_grep "^0::/$QNAME-be\$" "$WORK/cg" "exec'd process in the v2 BE group"
"$ANOLE" qos exec -c "$QCONF" --class ls -- true
[ -d "$QV2MOUNT/$QNAME-be" ] || fail "no v2 BE group"
[ "$has_cpu" = False ] || cat "$QV2MOUNT/$QNAME-be/cpu.max" "$QV2MOUNT/$QNAME-be/cpu.idle" >"$WORK/before"

"$ANOLE" qos exec -c "$QCONF" --class be -- sh -c 'while :; do :; done' & add_pid $!
qos_start
qos_wait_passes 1
grep -q '"be":{"groups"' $QSTATE/$QNAME.json || fail "no metrics of the classes"
sleep 1
"$PY" - "$("$ANOLE" qos status -c "$QCONF" --json)" <<'PY'
import json, sys
m = json.loads(sys.argv[1])["agent"]["metrics"]
be = m["classes"]["be"]
assert be["psi"] is not None, be
# a spinner waiting for a CPU on a shared machine: the v2 group's PSI sees it
assert be["psi"]["cpu"]["some_avg10"] >= 0, be
assert be["cpu_usage_cores"] >= 0, be
PY
if [ "$has_cpu" = True ]; then
	wait_until 5 "[ \"\$(cat $QV2MOUNT/$QNAME-be/cpu.idle)\" = 1 ]" || fail "v2 cpu.idle"
	grep -q '^[0-9]* [0-9]*$' "$QV2MOUNT/$QNAME-be/cpu.max" || fail "v2 cpu.max not set"
	qos_stop
	cat "$QV2MOUNT/$QNAME-be/cpu.max" "$QV2MOUNT/$QNAME-be/cpu.idle" >"$WORK/after"
	diff "$WORK/before" "$WORK/after" >&2 || fail "v2 knobs not restored"
else
	log "the cpu, memory and io controllers are on v1 here: placement and PSI only"
	assert_eq "$(qos_json "s['agent']['metrics']['knobs_changed']")" 0 "knobs changed without controllers"
	qos_stop
fi
assert_missing "$QSTATE/$QNAME.state"
