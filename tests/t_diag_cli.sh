#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `anole diag` command line: help, `list` (text and JSON agree, every tool
# accounted for), INTERVAL COUNT, and bad input - unknown PID or cgroup,
# a cgroup v1 directory, missing kernel BTF (hidden in a private mount
# namespace), a hook the tool lacks, a hook that cannot load here - each a
# clear message and the documented status, never a hang.
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
need_diag

tools="runqlat execsnoop opensnoop biolatency offcputime oomkill tcpretrans tcpstates runqslower
	profile nosched loadtask iohang memleak"

# expect RC PATTERN ARGS...: `anole ARGS` exits RC within 30 s, stderr matches PATTERN
expect() {
	local want=$1 pat=$2 rc=0
	shift 2
	timeout 30 "$ANOLE" "$@" >"$WORK/x.out" 2>"$WORK/x.err" || rc=$?
	check_not_crashed "$rc" "anole $*"
	[ "$rc" -eq "$want" ] || { sed 's/^/    /' "$WORK/x.err" >&2; fail "anole $*: exit $rc, expected $want"; }
	[ -z "$pat" ] || assert_grep "$pat" "$WORK/x.err" "anole $*"
}

# help
"$ANOLE" --help | grep -q '^  diag ' || fail "anole --help does not list diag"
"$ANOLE" diag --help >"$WORK/help" || fail "anole diag --help failed"
for t in $tools; do
	assert_grep "^  $t " "$WORK/help" "anole diag --help"
	"$ANOLE" diag "$t" --help >"$WORK/help-$t" || fail "anole diag $t --help failed"
	assert_grep "^usage: anole diag $t" "$WORK/help-$t" "$t --help"
	assert_grep "--duration SECONDS" "$WORK/help-$t" "$t --help"
done
# --hook lists each tool's own hooks, perf_event and uprobe included; a
# tool that scans by default says its default INTERVAL
assert_grep "^                         perf_event$" "$WORK/help-profile" "profile --help: hooks"
assert_grep "^                         uprobe$" "$WORK/help-memleak" "memleak --help: hooks"
assert_no_grep "--hook" "$WORK/help-loadtask" "loadtask --help (no BPF)"
assert_grep "default 1)" "$WORK/help-iohang" "iohang --help: default INTERVAL"
expect 2 "is not a tool" diag no-such-tool
expect 2 "" diag

# list: every tool, text and JSON agree on the hook
"$ANOLE" diag list >"$WORK/list.txt" || fail "anole diag list failed"
"$ANOLE" diag list --json >"$WORK/list.json" || fail "anole diag list --json failed"
sed 's/^/    /' "$WORK/list.txt"
assert_eq "$(diag_json 'rows[0]["btf"]' "$WORK/list.json")" True "list: btf"
for t in $tools; do
	hook=$(diag_json "[x['hook'] for x in rows[0]['tools'] if x['name'] == '$t'][0]" "$WORK/list.json")
	[ "$hook" != None ] || { hook=-; log "$t does not run here"; }
	assert_grep "^$t  *$hook " "$WORK/list.txt" "list: $t"
done
"$ANOLE" diag list -v >"$WORK/list-v.txt" || fail "anole diag list -v failed"

# INTERVAL COUNT: COUNT reports, then exit by itself
diag_start ival runqlat --json 0.5 3
diag_finish ival
assert_eq "$(diag_json 'len(rows)' "$WORK/ival.out")" 3 "runqlat 0.5 3: reports"

# usage errors: status 2
expect 2 "INTERVAL" diag opensnoop 1
expect 2 "does not apply" diag biolatency -p $$
expect 2 "does not apply" diag biolatency -c /sys/fs/cgroup
expect 2 "duration" diag runqlat --duration -1
expect 2 "duration" diag runqlat --duration abc
expect 2 "INTERVAL" diag runqlat 0
expect 2 "COUNT" diag runqlat 1 0
expect 2 "process id" diag runqlat -p abc
expect 2 "hooks among" diag runqlat --hook nonsense
expect 2 "this tool offers" diag runqlat --hook kprobe
expect 2 "bad option" diag runqlat --no-such-option

# bad input: status 1 and a clear message, before loading anything
sleep 0.1 &
gone=$!
wait "$gone"
expect 1 "no such process: $gone" diag runqlat -p "$gone" --duration 1
expect 1 "cgroup $WORK/none: No such file or directory" diag opensnoop -c "$WORK/none" --duration 1
mkdir -p "$WORK/plain"
expect 1 "not a cgroup v2 directory" diag opensnoop -c "$WORK/plain" --duration 1

# a hook that cannot load here: the reasons, status 1 (not a hang)
for t in $tools; do
	# the hooks skipped as a whole (not an optional program of the one used)
	for h in $(diag_json "' '.join(sorted({n['hook'] for x in rows[0]['tools'] if x['name'] == '$t' for n in x['skipped'] if n['hook'] != x['hook']}))" "$WORK/list.json"); do
		expect 1 "$t: no hook loads on this kernel:" diag "$t" --hook "$h" --duration 1
		log "$t --hook $h: $(sed -n 2p "$WORK/x.err")"
	done
done

# no kernel BTF: hidden under an empty tmpfs in a private mount namespace
# ("$0" of the inner shell is the anole binary)
need_cmd unshare
rc=0
# shellcheck disable=SC2016
unshare -m --propagation private bash -c \
	'mount -t tmpfs none /sys/kernel/btf && exec "$0" diag runqlat --duration 1' "$ANOLE" \
	>"$WORK/nobtf.out" 2>"$WORK/nobtf.err" || rc=$?
check_not_crashed "$rc" "runqlat without BTF"
assert_eq "$rc" 1 "runqlat without BTF: exit status"
assert_grep "this kernel has no BTF" "$WORK/nobtf.err" "runqlat without BTF"
# shellcheck disable=SC2016
unshare -m --propagation private bash -c \
	'mount -t tmpfs none /sys/kernel/btf && exec "$0" diag list --json' "$ANOLE" \
	>"$WORK/nobtf.json" 2>"$WORK/nobtf.err" || fail "anole diag list without BTF failed"
assert_eq "$(diag_json 'rows[0]["btf"]' "$WORK/nobtf.json")" False "list without BTF: btf"
# (loadtask reads /proc: no BPF, no BTF needed)
assert_eq "$(diag_json 'any(t["runs"] for t in rows[0]["tools"] if t["hook"] != "procfs")' "$WORK/nobtf.json")" False \
	"list without BTF: a BPF tool runs"
assert_eq "$(diag_json '[t["name"] for t in rows[0]["tools"] if t["runs"]]' "$WORK/nobtf.json")" "['loadtask']" \
	"list without BTF: the tools that run"
log "pass"
