#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole diag biolatency sees block I/O on a loop device: direct writes to a
# file on a loop-mounted ext4 appear in the histogram of that disk (-d), in
# the per-disk histograms (-D) under the loop device's name, and with each
# fallback hook this kernel has, and with -Q (from the request's start).
# No BPF object is left after any run.
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
need_diag
need_cmd losetup mkfs.ext4 dd

truncate -s 64M "$WORK/disk.img"
mkfs.ext4 -q -F "$WORK/disk.img"
loop=$(losetup -f --show "$WORK/disk.img") || fail "losetup failed"
add_loop "$loop"
mkdir -p "$WORK/mnt"
mount "$loop" "$WORK/mnt" || fail "cannot mount $loop"
add_mount "$WORK/mnt"
disk=$(basename "$loop")
log "disk $disk"

# writes N: N direct 64 KiB writes, one request each (no page cache to merge them)
writes() {
	dd if=/dev/zero of="$WORK/mnt/f" bs=64k count="$1" oflag=direct conv=notrunc status=none ||
		fail "dd to $WORK/mnt/f failed"
}

# 1. -d DISK, the hook chosen here
diag_start one biolatency -d "$disk" --duration 3 --json
writes 200
diag_finish one
total=$(diag_json 'sum(h["total"] for h in rows[0]["hists"])' "$WORK/one.out")
log "biolatency -d $disk: $total requests"
[ "$total" -ge 150 ] || fail "biolatency -d $disk saw $total requests for 200 direct writes: $(cat "$WORK/one.out")"
assert_eq "$(diag_json 'rows[0]["hists"][0]["disk"]' "$WORK/one.out")" "$disk" "disk name"

# 2. -D: a histogram per disk, the loop device's among them (text output)
diag_start per biolatency -D --duration 2
writes 50
diag_finish per
assert_grep "^disk = $disk$" "$WORK/per.out" "per-disk histogram of $disk"
assert_grep '^     usecs               : count    distribution$' "$WORK/per.out" "histogram header"

# 2b. -Q: timed from the request's start (its kernel stamp), one program at
# completion: the requests are counted
diag_start queued biolatency -d "$disk" -Q --duration 3 --json
writes 200
diag_finish queued
total=$(diag_json 'sum(h["total"] for h in rows[0]["hists"])' "$WORK/queued.out")
log "biolatency -Q -d $disk: $total requests"
[ "$total" -ge 150 ] || fail "biolatency -Q -d $disk saw $total requests for 200 direct writes: $(cat "$WORK/queued.out")"
assert_grep 'using [a-z_]* (block_rq_complete)$' "$WORK/queued.err" "biolatency -Q: the completion alone"

# 3. every other hook this kernel has
"$ANOLE" diag list --json >"$WORK/list.json" || fail "anole diag list failed"
chosen=$(diag_json "[t['hook'] for t in rows[0]['tools'] if t['name'] == 'biolatency'][0]" "$WORK/list.json")
for h in $(diag_json "' '.join(h for t in rows[0]['tools'] if t['name'] == 'biolatency' for h in t['hooks'])" "$WORK/list.json"); do
	[ "$h" = "$chosen" ] && continue
	diag_start "hook-$h" biolatency -d "$disk" --hook "$h" --duration 2 --json
	writes 100
	diag_finish "hook-$h"
	total=$(diag_json 'sum(h["total"] for h in rows[0]["hists"])' "$WORK/hook-$h.out")
	log "biolatency --hook $h: $total requests"
	[ "$total" -ge 75 ] || fail "biolatency --hook $h saw $total requests for 100 writes"
done

# 4. bad input: an unknown disk is a clear error, status 1
rc=0
"$ANOLE" diag biolatency -d anole-no-such-disk --duration 1 >/dev/null 2>"$WORK/bad.err" || rc=$?
assert_eq "$rc" 1 "biolatency -d of an unknown disk: exit status"
assert_grep 'no such disk: anole-no-such-disk' "$WORK/bad.err" "message"
log "pass"
