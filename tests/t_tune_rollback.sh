#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole tune puts every knob back byte-exactly: after a profile is applied
# and rolled back, after a search, after a search killed with SIGKILL (the
# journal outlives it; the next tune refuses to start until `rollback`), and
# after SIGINT (stop, roll back, keep the history). Knobs: files with awkward
# bytes (no final newline, CR, a file that did not exist), and real kernel
# knobs in a private network namespace (net.core.somaxconn, a sysfs file).
# needs-features: tune
. "$TESTDIR/lib.sh"
. "$TESTDIR/tune_lib.sh"
need_anole
tune_netns

A=$ANOLE
K=$WORK/knobs
mkdir -p "$K"
printf 'forty\r\ntwo' >"$K/a"                 # no final newline, a CR
printf '7\n' >"$K/b"
rm -f "$K/c"                                  # absent: created, then removed
SYSFS=/sys/class/net/lo/tx_queue_len
files=("$K/a" "$K/b" "$K/c")

# the kernel values, read inside the namespace
kernel_snapshot() {
	in_ns sh -c "cat /proc/sys/net/core/somaxconn /proc/sys/net/ipv4/tcp_fin_timeout $SYSFS" |
		sha256sum
}
before=$(snapshot "${files[@]}")
kbefore=$(kernel_snapshot)
orig_somaxconn=$(in_ns cat /proc/sys/net/core/somaxconn)

log "profile apply, verify, rollback"
cat >"$ANOLE_TUNE_PROFILE_PATH/t-base.conf" <<PEOF
[main]
summary=test base
[sysctl]
net.ipv4.tcp_fin_timeout=17
PEOF
cat >"$ANOLE_TUNE_PROFILE_PATH/t-apply.conf" <<PEOF
[main]
summary=test profile
include=t-base
[file]
$K/a=1
$K/b=2
$K/c=3
[sysctl]
net.core.somaxconn=777
kernel.sched_min_granularity_ns=3000000
[sysfs]
class/net/lo/tx_queue_len=1234
PEOF
in_ns "$A" tune profile apply t-apply >"$WORK/out" 2>"$WORK/err"
assert_grep "applied 6 knob values; 1 not on this kernel" "$WORK/out"
# the moved scheduler knob is named once, not an error
[ "$(grep -c 'sched_min_granularity_ns' "$WORK/err")" = 1 ] || fail "missing knob not warned once"
assert_eq "$(in_ns cat /proc/sys/net/core/somaxconn)" 777 "somaxconn applied"
assert_eq "$(in_ns cat $SYSFS)" 1234 "sysfs applied"
assert_eq "$(cat "$K/c")" 3 "absent file created"
assert_rc 0 in_ns "$A" tune profile verify >"$WORK/out"
assert_grep "7 knob values checked, 0 drifted\|6 knob values checked, 0 drifted" "$WORK/out"
# drift is reported
in_ns sh -c 'echo 555 >/proc/sys/net/core/somaxconn'
assert_rc 1 in_ns "$A" tune profile verify --json >"$WORK/out"
"$PY" - "$WORK/out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert [x["path"] for x in d["drift"]] == ["/proc/sys/net/core/somaxconn"], d
assert d["drift"][0]["expected"] == "777" and d["drift"][0]["actual"] == "555", d
PY
# a second profile apply is refused? no: switching profiles rolls the first back
assert_rc 0 in_ns "$A" tune profile rollback >/dev/null
assert_eq "$(snapshot "${files[@]}")" "$before" "files after profile rollback"
assert_eq "$(kernel_snapshot)" "$kbefore" "kernel knobs after profile rollback"
assert_rc 0 "$A" tune status >"$WORK/out"
assert_grep "no journal" "$WORK/out"

log "search leaves every knob as found"
cat >"$WORK/params" <<PEOF
# a file knob, a real sysctl and a sysfs knob of the namespace
file $K/b int 1..9
sysctl net.core.somaxconn int 128..4096 step 128
sysfs class/net/lo/tx_queue_len int 100..2000
PEOF
bench="read v <$K/b; echo \"score: \$v\""
assert_rc 0 in_ns "$A" tune search -q -p "$WORK/params" -b "$bench" -m score -n 6 \
	--seed 2 --history "$WORK/h1" >"$WORK/out"
assert_eq "$(snapshot "${files[@]}")" "$before" "files after search"
assert_eq "$(kernel_snapshot)" "$kbefore" "kernel knobs after search"
[ "$(grep -c '"type":"trial"' "$WORK/h1")" = 6 ] || fail "history has not 6 trials"

log "SIGKILL during a search: the journal survives, tune refuses, rollback restores"
cat >"$WORK/params2" <<PEOF
file $K/a int 1..9
file $K/c int 1..9
sysctl net.core.somaxconn int 128..4096
PEOF
# the benchmark signals that a trial is under way (knobs changed), then waits
bench2="if [ \"\$ANOLE_TUNE_TRIAL\" -ge 1 ]; then echo \$\$ >$WORK/bench.pid; touch $WORK/in-trial; exec sleep 60; fi; echo score: 1"
# anole_pid: the searching process (the journal names it; $! is ip netns exec's shell)
anole_pid() {
	"$A" tune status --json | "$PY" -c "import json,sys; print(json.load(sys.stdin)['pid'])"
}
in_ns "$A" tune search -q -p "$WORK/params2" -b "$bench2" -m score -n 5 >/dev/null 2>&1 &
pid=$!
add_pid "$pid"
for _ in $(seq 600); do [ -e "$WORK/in-trial" ] && break; sleep 0.1; done
[ -e "$WORK/in-trial" ] || fail "the search never reached a trial"
assert_ne "$(snapshot "${files[@]}")" "$before" "files changed by the trial"
apid=$(anole_pid)
kill -KILL "$apid"
wait "$pid" 2>/dev/null || true
# the benchmark is in a process group of its own, which SIGKILL left behind
kill -KILL -- "-$(cat "$WORK/bench.pid")" 2>/dev/null || true
assert_rc 0 "$A" tune status --json >"$WORK/out"
"$PY" -c "import json,sys; d=json.load(open('$WORK/out')); assert d['journal'] and d['purpose']=='search' and d['saved']==3, d"
# the next tune refuses, naming what to do; nothing is changed by it
assert_rc 1 in_ns "$A" tune search -q -p "$WORK/params" -b "$bench" -m score -n 2 2>"$WORK/err"
assert_grep "anole tune rollback" "$WORK/err"
assert_rc 1 in_ns "$A" tune profile apply t-apply 2>"$WORK/err"
assert_grep "anole tune rollback" "$WORK/err"
assert_rc 0 in_ns "$A" tune rollback >"$WORK/out"
assert_grep "restored 3 values" "$WORK/out"
assert_eq "$(snapshot "${files[@]}")" "$before" "files after rollback of a killed search"
assert_eq "$(kernel_snapshot)" "$kbefore" "kernel knobs after rollback of a killed search"

log "SIGINT during a search: stop, roll back, keep the history"
rm -f "$WORK/in-trial"
in_ns "$A" tune search -q -p "$WORK/params2" -b "$bench2" -m score -n 5 \
	--history "$WORK/h2" >/dev/null 2>"$WORK/err" &
pid=$!
add_pid "$pid"
for _ in $(seq 600); do [ -e "$WORK/in-trial" ] && break; sleep 0.1; done
[ -e "$WORK/in-trial" ] || fail "the search never reached a trial"
kill -INT "$(anole_pid)"
rc=0
wait "$pid" || rc=$?
assert_eq "$rc" 130 "exit status after SIGINT"
assert_grep "interrupted" "$WORK/err"
assert_grep '"type":"interrupted"' "$WORK/h2"
assert_grep '"type":"baseline"' "$WORK/h2"
assert_eq "$(snapshot "${files[@]}")" "$before" "files after SIGINT"
assert_eq "$(kernel_snapshot)" "$kbefore" "kernel knobs after SIGINT"
"$A" tune status >"$WORK/out"
assert_grep "no journal" "$WORK/out"

log "accept keeps the values and drops the journal"
in_ns "$A" tune profile apply t-base >/dev/null 2>&1
assert_rc 0 "$A" tune accept
assert_eq "$(in_ns cat /proc/sys/net/ipv4/tcp_fin_timeout)" 17 "accepted value"
"$A" tune status >"$WORK/out"
assert_grep "no journal" "$WORK/out"
in_ns sh -c "echo $orig_somaxconn >/proc/sys/net/core/somaxconn"
log "ok"
