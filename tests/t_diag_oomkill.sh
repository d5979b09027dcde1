#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole diag oomkill sees an OOM kill: a memory hog (comm "anole-oomhog")
# in a memory cgroup limited to 64 MiB (cgroup v2 memory.max, or the v1
# memory controller's limit where the memory controller is on v1) is killed
# by the kernel, and the tool reports its pid, comm and memory - with the
# hook chosen here and each fallback (raw_tp, classic tracepoint); -c on a
# cgroup v2 holding the hog sees it, on an empty one not; -p on another
# process sees nothing. Cgroups are removed at exit; no BPF object is left.
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
need_diag

"$ANOLE" diag list --json >"$WORK/list.json" || fail "anole diag list failed"
runs=$(diag_json '[t for t in rows[0]["tools"] if t["name"] == "oomkill"][0]["runs"]' "$WORK/list.json")
[ "$runs" = True ] || skip "oomkill does not run on this kernel: $(cat "$WORK/list.json")"

# the memory cgroup: v2 if it has the memory controller, else v1
v2=$(diag_cgroup2_root)
[ -n "$v2" ] || skip "no cgroup v2 hierarchy mounted"
if grep -qw memory "$v2/cgroup.controllers" 2>/dev/null; then
	grep -qw memory "$v2/cgroup.subtree_control" || echo +memory >"$v2/cgroup.subtree_control" ||
		skip "cannot enable the memory controller in $v2"
	memcg=$(diag_mkcgroup oomkill-mem)
	echo 64M >"$memcg/memory.max" || fail "cannot set memory.max"
	[ -e "$memcg/memory.swap.max" ] && echo 0 >"$memcg/memory.swap.max"
	[ "$(cat "$memcg/memory.max")" = $((64 << 20)) ] || fail "memory.max not set"
else
	v1=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ { print $2; exit }' /proc/mounts)
	[ -n "$v1" ] || skip "no memory cgroup controller (v2 or v1)"
	memcg="$v1/anole-test-oomkill-$$"
	mkdir "$memcg" || fail "cannot create $memcg"
	echo "$memcg" >>"$_STATE/diag_cgroups"
	echo 64M >"$memcg/memory.limit_in_bytes" || fail "cannot set memory.limit_in_bytes"
	[ -e "$memcg/memory.memsw.limit_in_bytes" ] &&
		echo 64M >"$memcg/memory.memsw.limit_in_bytes" 2>/dev/null
	[ "$(cat "$memcg/memory.limit_in_bytes")" = $((64 << 20)) ] || fail "memory limit not set"
fi
log "memory cgroup: $memcg"
# and a cgroup v2 for -c (the same one when the memory cgroup is v2)
case "$memcg" in
"$v2"/*) v2cg=$memcg ;;
*) v2cg=$(diag_mkcgroup oomkill) ;;
esac
emptycg=$(diag_mkcgroup oomkill-empty)

# the hog: touches 1 MiB at a time, gives up (status 3) at 1 GiB, should the
# limit not hold
cat >"$WORK/hog.py" <<'PY'
import ctypes
ctypes.CDLL(None).prctl(15, b"anole-oomhog", 0, 0, 0)
b = []
for _ in range(1024):
    b.append(b"x" * (1 << 20))
raise SystemExit(3)
PY

# hog: run the hog in the cgroups, wait for it, then stop the tool (Ctrl-C);
# sets HOG to the hog's pid
hog() {
	local rc=0
	bash -c "echo \$\$ >'$v2cg/cgroup.procs' && echo \$\$ >'$memcg/cgroup.procs' && exec '$PY' '$WORK/hog.py'" &
	HOG=$!
	wait "$HOG" || rc=$?
	[ "$rc" -eq 137 ] || fail "the hog exited $rc, not killed by SIGKILL (137)"
	# the event is in the ring buffer: the tool prints it before detaching
	sleep 0.3
	kill -INT "$DIAG_PID"
}

# killed NAME: the JSON events of run NAME show the OOM kill of $HOG
killed() {
	diag_json "any(r['pid'] == $HOG and r['comm'] == 'anole-oomhog' and
		r['total_vm_kb'] >= r['anon_rss_kb'] >= 16384 for r in rows)" "$WORK/$1.out"
}

# 1. the hook chosen here, then each fallback
hooks=$(diag_json "' '.join(h for t in rows[0]['tools'] if t['name'] == 'oomkill' for h in t['hooks'])" "$WORK/list.json")
for h in default $hooks; do
	if [ "$h" = default ]; then
		diag_start "json-$h" oomkill --json
	else
		diag_start "json-$h" oomkill --hook "$h" --json
		assert_grep "using $h" "$WORK/json-$h.err" "oomkill --hook $h"
	fi
	hog
	diag_finish "json-$h"
	[ "$(killed "json-$h")" = True ] ||
		fail "oomkill ($h) did not report the kill of $HOG: $(cat "$WORK/json-$h.out")"
	log "$h: $(grep -m1 "\"pid\":$HOG," "$WORK/json-$h.out")"
done

# 2. text
diag_start text oomkill
hog
diag_finish text
assert_grep "^Triggered by PID [0-9]* (\"anole-oomhog\"), OOM kill of PID $HOG (\"anole-oomhog\"), total-vm [0-9]*kB, anon-rss [0-9]*kB" \
	"$WORK/text.out" "text: the kill"

# 3. -c: the hog's cgroup v2 sees it, an empty one not; -p of another process
diag_start cg oomkill -c "$v2cg" --json
hog
diag_finish cg
[ "$(killed cg)" = True ] || fail "oomkill -c $v2cg missed the kill of $HOG: $(cat "$WORK/cg.out")"
diag_start empty oomkill -c "$emptycg" --json
hog
diag_finish empty
assert_no_grep "\"pid\":$HOG," "$WORK/empty.out" "oomkill -c of an empty cgroup"
sleep 30 &
add_pid $!
diag_start other oomkill -p $! --json
hog
diag_finish other
assert_no_grep "\"pid\":$HOG," "$WORK/other.out" "oomkill -p of another process"
log "pass"
