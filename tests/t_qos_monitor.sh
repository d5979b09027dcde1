#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The qos agent's interference metrics on the monitor's Prometheus endpoint:
# `anole monitor --qos-dir` serves the families the agent writes each
# interval (per-class CPU, throttling, PSI, suppression level, evictions);
# the page stays valid for promtool, and they go when the agent stops.
. "$TESTDIR/lib.sh"
. "$TESTDIR/qos_lib.sh"
need_anole
need_feature monitor
need_cmd curl
have_v1 || [ -n "$V2" ] || skip "no cgroup hierarchy"

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
MPORT=$(free_port)
qos_conf 'interval_ms = 300' '[memory]' 'enabled = false' '[evict]' 'enabled = false' \
	'[blkio]' 'enabled = false' '[probe]' 'enabled = true' 'rate_hz = 200'
mkdir -p "$QSTATE"
"$ANOLE" monitor --listen "127.0.0.1:$MPORT" --interval 0.5 --no-bpf --qos-dir "$QSTATE" \
	>"$WORK/monitor.out" 2>&1 &
add_pid $!
wait_until 30 "curl -sf http://127.0.0.1:$MPORT/metrics -o $WORK/m0" || fail "monitor did not answer"
grep -q '^anole_qos_' "$WORK/m0" && fail "qos metrics without an agent"
"$ANOLE" qos exec -c "$QCONF" --class be -- sh -c 'while :; do :; done' & add_pid $!
# a second agent in the same state directory: the page merges both files
# (one # HELP and # TYPE per family, which one agent alone cannot show)
printf 'name = "%s-b"\nstate_dir = "%s"\n%s\n' "$QNAME" "$QSTATE" \
	'[memory]
enabled = false
[evict]
enabled = false
[blkio]
enabled = false' >"$WORK/b.toml"
qos_start "$WORK/b.toml"
bpid=$QPID
qos_start
wait_until 15 "curl -sf http://127.0.0.1:$MPORT/metrics -o $WORK/m1 && grep -q 'anole_qos_cpu_usage_cores{agent=\"$QNAME\",class=\"be\"}' $WORK/m1" ||
	fail "the agent's metrics are not on the monitor's endpoint"
for f in anole_qos_cpu_throttled_periods_total anole_qos_pressure_avg10_percent \
	anole_qos_be_cpu_budget_millicpus anole_qos_evictions_total anole_qos_memory_usage_bytes; do
	assert_grep "^$f{agent=\"$QNAME\"" "$WORK/m1" "$f"
done
# the LS probe, a process in LS, reports each interval
wait_until 10 "curl -sf http://127.0.0.1:$MPORT/metrics -o $WORK/m1 && grep -q '^anole_qos_ls_probe_lateness_seconds{agent=\"$QNAME\",percentile=\"99\"}' $WORK/m1" ||
	fail "no LS probe metrics"
probe_pid=$(pgrep -P "$QPID" | head -1)
[ -n "$probe_pid" ] && grep -q "/$QNAME/ls\$" /proc/$probe_pid/cgroup || fail "the probe is not in LS"
wait_until 15 "curl -sf http://127.0.0.1:$MPORT/metrics -o $WORK/m1 && grep -q 'anole_qos_cpu_usage_cores{agent=\"$QNAME-b\",class=\"be\"}' $WORK/m1" ||
	fail "the second agent's metrics are not on the monitor's endpoint"
# one HELP/TYPE per family
dups=$(grep '^# \(TYPE\|HELP\) ' "$WORK/m1" | cut -d' ' -f2,3 | sort | uniq -d)
[ -z "$dups" ] || fail "families declared twice: $dups"
if command -v promtool >/dev/null; then
	promtool check metrics <"$WORK/m1" >"$WORK/promtool.out" 2>&1 ||
		{ cat "$WORK/promtool.out" >&2; fail "promtool rejects the page"; }
fi
qos_stop
QPID=$bpid qos_stop
[ -z "$probe_pid" ] || ! kill -0 "$probe_pid" 2>/dev/null || fail "the probe outlived the agent"
wait_until 5 "curl -sf http://127.0.0.1:$MPORT/metrics -o $WORK/m2 && ! grep -q '^anole_qos_' $WORK/m2" ||
	fail "qos metrics still served after the agent stopped"
