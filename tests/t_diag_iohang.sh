#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole diag iohang sees a block I/O request that stalls, while it stalls.
#
# The stall: loop device B is backed by a file on an ext4 that is frozen
# (fsfreeze), so a direct write to B is a request issued to B's driver that
# cannot complete (the loop worker waits for the thaw). This kernel has no
# device mapper (CONFIG_MD is off: no dm-delay, no `dmsetup suspend`, and
# dm-delay would hold the bio above the block layer, before any request
# exists); the freeze stalls a real request in flight, for as long as the
# test wants, with nothing but loop and ext4.
#
# Asserted: the request is reported as outstanding, with dd's pid, disk B,
# a write of 4096 bytes and an age over the threshold, before the thaw (so
# a request that never completed is seen); after the thaw it is reported
# completed; a fast write to B is not reported; -c reports only the stalled
# writer inside the cgroup; every hook this kernel has sees it; no BPF
# object is left after any run.
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
need_diag
need_cmd losetup mkfs.ext4 dd fsfreeze

truncate -s 64M "$WORK/a.img"
mkfs.ext4 -q -F "$WORK/a.img"
loop_a=$(losetup -f --show "$WORK/a.img") || fail "losetup failed"
add_loop "$loop_a"
mkdir -p "$WORK/mnt"
mount "$loop_a" "$WORK/mnt" || fail "cannot mount $loop_a"
add_mount "$WORK/mnt"
truncate -s 8M "$WORK/mnt/b.img"
loop_b=$(losetup -f --show --direct-io=on "$WORK/mnt/b.img") || fail "losetup of the backing file failed"
disk=$(basename "$loop_b")
log "stalling disk $disk (backed by a file on $(basename "$loop_a"))"

# A failed test must thaw first: the stalled writers cannot even be killed
# before their I/O ends, and B goes before the file system it lives on.
_iohang_cleanup() {
	local rc=$?
	set +e
	fsfreeze -u "$WORK/mnt" 2>/dev/null
	losetup -d "$loop_b" 2>/dev/null
	(exit "$rc")
	_diag_cleanup
}
trap _iohang_cleanup EXIT

# write_b [CGROUP]: one direct 4 KiB write to B in the background (in
# CGROUP if given); sets DD_PID
write_b() {
	if [ -n "${1:-}" ]; then
		sh -c 'echo $$ >"$1/cgroup.procs" && exec dd if=/dev/zero of="$2" bs=4096 count=1 oflag=direct status=none' \
			sh "$1" "$loop_b" &
	else
		dd if=/dev/zero of="$loop_b" bs=4096 count=1 oflag=direct status=none &
	fi
	DD_PID=$!
}

# wait_for PYEXPR FILE WHAT: poll (10 s) until PYEXPR over the JSON rows is true
wait_for() {
	for _ in $(seq 100); do
		[ "$(diag_json "$1" "$2" 2>/dev/null)" = True ] && return 0
		sleep 0.1
	done
	sed 's/^/    /' "$2" | tail -n 20 >&2
	fail "$3"
}

# 1. JSON, every disk: a fast write is not reported; the stalled one is,
# while it is stalled, then as completed
diag_start json iohang -t 800 --json 0.2
write_b
wait "$DD_PID" || fail "a write to $disk failed"
sleep 1.2
ours="[r for r in rows if r['disk'] == '$disk']"
assert_eq "$(diag_json "len($ours)" "$WORK/json.out")" 0 "rows for a write that did not stall"
fsfreeze -f "$WORK/mnt" || fail "cannot freeze $WORK/mnt"
frozen_at=$(date +%s.%N)
write_b
stalled=$DD_PID
wait_for "any(r['state'] == 'outstanding' and r['pid'] == $stalled for r in $ours)" "$WORK/json.out" \
	"iohang did not report the stalled write of dd ($stalled) on $disk"
kill -0 "$stalled" 2>/dev/null || fail "dd ended while the file system was frozen: no stall"
row="[r for r in $ours if r['state'] == 'outstanding' and r['pid'] == $stalled][0]"
assert_eq "$(diag_json "$row['comm']" "$WORK/json.out")" dd "comm of the stalled request"
assert_eq "$(diag_json "'W' in $row['op']" "$WORK/json.out")" True "op of the stalled request is a write"
assert_eq "$(diag_json "$row['bytes']" "$WORK/json.out")" 4096 "size of the stalled request"
assert_eq "$(diag_json "$row['issued']" "$WORK/json.out")" True "the request was issued to the driver"
assert_eq "$(diag_json "$row['age_ms'] >= 800" "$WORK/json.out")" True "age over the threshold"
dev=$(cat "/sys/class/block/$disk/dev")
assert_eq "$(diag_json "$row['dev']" "$WORK/json.out")" "$dev" "device number"
sleep 1 # the age grows while it hangs
grow="[r['age_ms'] for r in $ours if r['state'] == 'outstanding' and r['pid'] == $stalled]"
assert_eq "$(diag_json "max($grow) - min($grow) >= 700" "$WORK/json.out")" True \
	"the age of the outstanding request grows from scan to scan"
fsfreeze -u "$WORK/mnt"
held=$(echo "$(date +%s.%N) - $frozen_at" | bc 2>/dev/null || echo 0)
wait "$stalled" || fail "the stalled write failed after the thaw"
wait_for "any(r['state'] == 'completed' and r['pid'] == $stalled for r in $ours)" "$WORK/json.out" \
	"iohang did not report the completion of the stalled write"
done_ms=$(diag_json "[r['age_ms'] for r in $ours if r['state'] == 'completed'][0]" "$WORK/json.out")
log "stalled write: outstanding rows while frozen, completed after ${done_ms} ms (frozen ${held} s)"
assert_eq "$(diag_json "[r['age_ms'] for r in $ours if r['state'] == 'completed'][0] >= 1500" "$WORK/json.out")" \
	True "latency of the completed request"
kill -INT "$DIAG_PID"
diag_finish json

# 2. -c: of two writers stalled together, only the one in the cgroup
cg=$(diag_mkcgroup iohang)
diag_start cg iohang -t 300 -c "$cg" --json 0.2
fsfreeze -f "$WORK/mnt" || fail "cannot freeze $WORK/mnt"
write_b "$cg"
inside=$DD_PID
write_b
outside=$DD_PID
wait_for "any(r['state'] == 'outstanding' and r['pid'] == $inside for r in rows)" "$WORK/cg.out" \
	"iohang -c did not report the stalled write in the cgroup"
sleep 0.6
fsfreeze -u "$WORK/mnt"
wait "$inside" "$outside" || true
kill -INT "$DIAG_PID"
diag_finish cg
assert_eq "$(diag_json "len([r for r in rows if r['pid'] != $inside])" "$WORK/cg.out")" 0 \
	"rows of tasks outside the cgroup"

# 3. every other hook this kernel has, text output, -d
"$ANOLE" diag list --json >"$WORK/list.json" || fail "anole diag list failed"
chosen=$(diag_json "[t['hook'] for t in rows[0]['tools'] if t['name'] == 'iohang'][0]" "$WORK/list.json")
for h in $(diag_json "' '.join(h for t in rows[0]['tools'] if t['name'] == 'iohang' for h in t['hooks'])" "$WORK/list.json"); do
	[ "$h" = "$chosen" ] && continue
	diag_start "hook-$h" iohang -t 300 -d "$disk" --hook "$h" 0.2
	fsfreeze -f "$WORK/mnt" || fail "cannot freeze $WORK/mnt"
	write_b
	stalled=$DD_PID
	for _ in $(seq 100); do
		grep -q "^HUNG  $disk .* $stalled  *dd$" "$WORK/hook-$h.out" && break
		sleep 0.1
	done
	fsfreeze -u "$WORK/mnt"
	wait "$stalled" || fail "a write to $disk failed"
	sleep 0.5
	kill -INT "$DIAG_PID"
	diag_finish "hook-$h"
	assert_grep "^HUNG  $disk  *WS* .* device .* $stalled  *dd$" "$WORK/hook-$h.out" "iohang --hook $h: the stalled write"
	assert_grep "^DONE  $disk  *WS* .* $stalled  *dd$" "$WORK/hook-$h.out" "iohang --hook $h: its completion"
	log "iohang --hook $h: saw the stall"
done

# 4. bad input
rc=0
"$ANOLE" diag iohang -d anole-no-such-disk --duration 1 >/dev/null 2>"$WORK/bad.err" || rc=$?
assert_eq "$rc" 1 "iohang -d of an unknown disk: exit status"
assert_grep 'no such disk: anole-no-such-disk' "$WORK/bad.err" "message"
rc=0
"$ANOLE" diag iohang -t soon --duration 1 >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 2 "iohang -t soon: exit status"
log "pass"
