#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole qos: status says what the kernel has; bad configurations are refused
# with the line named and nothing changed; a second agent is refused; exec
# and attach place processes; an agent upgraded in place moves the old
# layout's BE group (/<name>/be) to /<name>-be; the probe reports its
# percentiles.
. "$TESTDIR/lib.sh"
. "$TESTDIR/qos_lib.sh"
need_anole
have_v1 || [ -n "$V2" ] || skip "no cgroup hierarchy"

log "status"
"$ANOLE" qos status --help | grep -q "usage: anole qos status" || fail "status --help"
"$ANOLE" qos status >"$WORK/status.txt"
assert_grep '^cgroup: ' "$WORK/status.txt"
"$ANOLE" qos status --json >"$WORK/status.json"
want=$(if have_v1; then echo v1; else echo v2; fi)
got=$("$PY" -c "import json; print(json.load(open('$WORK/status.json'))['cgroup'])")
assert_eq "$got" "$want" "detected cgroup version"
if [ -f /proc/pressure/cpu ]; then
	assert_eq "$("$PY" -c "import json; print(json.load(open('$WORK/status.json'))['psi'])")" True psi
fi
if have_v1; then
	idle=$([ -f $V1CPU/cpu.idle ] && echo True || echo False)
	assert_eq "$("$PY" -c "import json; print(json.load(open('$WORK/status.json'))['knobs']['cpu_idle'])")" \
		"$idle" "cpu.idle detected as the kernel has it"
fi

log "configuration errors name the line and change nothing"
mkdir -p "$WORK/real"
# conf_error LINE PATTERN TOML...: the agent refuses with FILE:LINE: ...PATTERN
conf_error() {
	local line=$1 pat=$2; shift 2
	qos_conf "$@"
	local rc=0
	"$ANOLE" qos run -c "$QCONF" 2>"$WORK/err" || rc=$?
	check_not_crashed "$rc" "qos run with a bad configuration"
	[ "$rc" -ne 0 ] || fail "a bad configuration was accepted: $*"
	assert_grep "$QCONF:$line: .*$pat" "$WORK/err" "error naming line $line"
	for h in $V1CPU $V1MEM $V1BLK $V2; do
		assert_missing "$h/$QNAME" "cgroup made despite a bad configuration"
		assert_missing "$h/$QNAME-be" "BE cgroup made despite a bad configuration"
	done
	assert_missing "$QSTATE/$QNAME.state" "state file despite a bad configuration"
}
conf_error 5 "does not exist" '' '[be]' "cgroups = [\"/$QNAME-missing\"]"
conf_error 4 "out of range" '[cpu_suppress]' 'threshold_percent = 150'
conf_error 4 "out of range" '[cpu_suppress]' 'period_us = 500'
conf_error 4 "over half of interval_ms" '[cpu_suppress]' 'period_us = 600000'
conf_error 4 "unknown setting" '[memory]' 'squeze_ratio_percent = 50'
conf_error 5 "takes an integer" '' '[blkio]' 'read_bps = "fast"'
conf_error 3 "want auto, v1 or v2" 'cgroup_mode = "v3"'
conf_error 5 "overlaps anole's own BE group /$QNAME-be" '' '[ls]' "cgroups = [\"/$QNAME-be/x\"]"
# both classes on one cgroup: a group that exists everywhere it is looked for
for h in $V1CPU $V1ACCT $V1MEM $V1BLK $V2; do [ -d "$h" ] && mkdir -p "$h/$QNAME-shared"; done
conf_error 7 "two classes" '[ls]' "cgroups = [\"/$QNAME-shared\"]" '' '[be]' \
	"cgroups = [\"/$QNAME-shared\"]"
for h in $V1CPU $V1ACCT $V1MEM $V1BLK $V2; do [ -d "$h/$QNAME-shared" ] && rmdir "$h/$QNAME-shared"; done
assert_rc 1 "$ANOLE" qos run -c "$WORK/no-such.toml"

log "exec and attach"
qos_conf
"$ANOLE" qos exec -c "$QCONF" --class be -- sh -c 'cat /proc/self/cgroup' >"$WORK/cg"
if have_v1; then
	assert_grep ":cpu:/$QNAME-be\$" "$WORK/cg" "exec'd process in the BE cpu group"
	assert_grep ":memory:/$QNAME-be\$" "$WORK/cg" "exec'd process in the BE memory group"
fi
[ -z "$V2" ] || assert_grep "^0::/$QNAME-be\$" "$WORK/cg" "exec'd process in the BE cgroup2 group"
sleep 1000 & sp=$!
add_pid $sp
"$ANOLE" qos attach -c "$QCONF" --class ls $sp
grep -q "/$QNAME/ls\$" /proc/$sp/cgroup || fail "attach did not move $sp into LS"
assert_rc 2 "$ANOLE" qos attach -c "$QCONF" --class xx $sp
assert_rc 2 "$ANOLE" qos exec -c "$QCONF" -- true
assert_rc 1 "$ANOLE" qos attach -c "$QCONF" --class be 999999999

log "one agent per name; BE's group of before 0582769 (/<name>/be) moved at start"
# a process left in the old BE group in every hierarchy, as an agent
# upgraded in place finds it
sleep 1000 & oldbe=$!
add_pid $oldbe
olddirs=()
for h in $V1CPU $V1ACCT $V1MEM $V1BLK $V1CS $V2; do
	[ -d "$h" ] && [ ! -d "$h/$QNAME/be" ] || continue
	mkdir -p "$h/$QNAME/be"
	[ "$h" != "$V1CS" ] || { cat $h/cpuset.cpus >"$h/$QNAME/cpuset.cpus"; cat $h/cpuset.mems >"$h/$QNAME/cpuset.mems"
		cat $h/cpuset.cpus >"$h/$QNAME/be/cpuset.cpus"; cat $h/cpuset.mems >"$h/$QNAME/be/cpuset.mems"; }
	echo $oldbe >"$h/$QNAME/be/cgroup.procs"
	olddirs+=("$h/$QNAME/be")
done
[ ${#olddirs[@]} -gt 0 ] || fail "no hierarchy to make the old BE group in"
grep -q "/$QNAME/be\$" /proc/$oldbe/cgroup || fail "$oldbe not in the old BE group: $(cat /proc/$oldbe/cgroup)"
qos_conf 'interval_ms = 200'
# without -v: the agent logs its state changes at its default level
QOS_RUN_V= qos_start
first=$QPID
for d in "${olddirs[@]}"; do assert_missing "$d" "the old BE group after the agent's start"; done
grep -q "/$QNAME/be\$" /proc/$oldbe/cgroup && fail "$oldbe still in an old BE group: $(cat /proc/$oldbe/cgroup)"
have_v1 && { assert_grep ":cpu,cpuacct:/$QNAME-be\$\|:cpu:/$QNAME-be\$" /proc/$oldbe/cgroup "old BE process in the BE cpu group"
	assert_grep ":memory:/$QNAME-be\$" /proc/$oldbe/cgroup "old BE process in the BE memory group"; }
assert_grep "old BE group /$QNAME/be moved to /$QNAME-be (1 process(es))" "$WORK/agent.log" "the agent's log"
assert_rc 1 "$ANOLE" qos run -c "$QCONF" 2>"$WORK/second.err"
assert_grep "another agent (pid $first)" "$WORK/second.err"
assert_rc 1 "$ANOLE" qos restore -c "$QCONF"
qos_wait_passes 1
assert_eq "$(qos_json "s['agent']['running'], s['agent']['pid']")" "True $first" "status sees the agent"
qos_stop
assert_missing "$QSTATE/$QNAME.state" "state file after a clean stop"
assert_grep "agent '$QNAME' running (pid $first" "$WORK/agent.log" "the agent's start in its log"
assert_grep "Terminated, restoring" "$WORK/agent.log" "the agent's stop in its log"

log "probe"
"$ANOLE" qos probe --rate 500 --duration 1 --json >"$WORK/probe.json"
"$PY" - "$WORK/probe.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
assert p["samples"] == 500, p
l = p["lateness_us"]
assert 0 <= l["p50"] <= l["p90"] <= l["p99"] <= l["p999"] <= l["max"], p
assert 0 <= l["p99_off_run_queue"] <= l["p99"], p
PY
# its run-queue waits are taken out of the second p99: at nice 10 on one
# CPU beside two nice-0 spinners (weight 110 against 2 x 1024), nearly each
# wake-up waits behind a spinner's slice (milliseconds), which the whole
# p99 counts and the second does not
cpu=$(taskset -pc $$ | sed 's/.*: *//; s/[-,].*//')
spin=()
for _ in 1 2; do taskset -c "$cpu" sh -c 'while :; do :; done' & spin+=($!); add_pid $!; done
nice -n 10 taskset -c "$cpu" "$ANOLE" qos probe --rate 200 --duration 2 --json >"$WORK/probe-rq.json"
kill "${spin[@]}"
"$PY" - "$WORK/probe-rq.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
l = p["lateness_us"]
assert l["p99"] >= 1000 and l["p99_off_run_queue"] * 2 < l["p99"], p
PY
log "probe beside spinners: $(cat "$WORK/probe-rq.json")"
assert_rc 2 "$ANOLE" qos probe --rate abc
assert_rc 1 "$ANOLE" qos probe --rate 0
log "ok"
