#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole qos run on cgroup v1, I/O: when LS's I/O pressure reaches the
# threshold (0 here: always) BE gets blkio.throttle limits, which slow BE's
# direct writes to the configured rate; stopping the agent lifts them.
. "$TESTDIR/lib.sh"
. "$TESTDIR/qos_lib.sh"
need_anole
have_v1 || skip "needs cpu, memory and blkio on cgroup v1"
DEV=$(work_disk) || skip "WORK is not on a block device"
[ -d /proc/pressure ] || skip "no PSI"

RATE=$((1 << 20))
qos_conf 'interval_ms = 500' '[cpu_suppress]' 'enabled = false' '[cpu_idle]' 'enabled = false' \
	'[cpu_burst]' 'enabled = false' '[memory]' 'enabled = false' '[evict]' 'enabled = false' \
	'[blkio]' 'psi_percent = 0' "read_bps = $RATE" "write_bps = $RATE" "devices = [\"$DEV\"]"
for c in ls mid be; do "$ANOLE" qos exec -c "$QCONF" --class $c -- true; done
knob_snapshot "$WORK/before"
qos_start
W=$V1BLK/$QNAME-be/blkio.throttle.write_bps_device
# psi_percent 0: the first pass throttles
qos_within_passes 1 "[ \"\$(cat $W)\" = '$DEV $RATE' ]" || fail "BE write throttle: '$(cat $W)'"
assert_eq "$(cat $V1BLK/$QNAME-be/blkio.throttle.read_bps_device)" "$DEV $RATE" "BE read throttle"
assert_eq "$(cat $V1BLK/$QNAME/ls/blkio.throttle.write_bps_device)" "" "LS is never throttled"
assert_eq "$(qos_json "s['agent']['metrics']['policies']['blkio']['throttled']")" True "status"

log "BE writes 3 MiB directly at $RATE B/s"
t0=$(date +%s%N)
"$ANOLE" qos exec -c "$QCONF" --class be -- \
	dd if=/dev/zero of="$WORK/io" bs=64k count=48 oflag=direct status=none
ms=$((($(date +%s%N) - t0) / 1000000))
log "took $ms ms"
# blk-throttle lets a group dispatch its rate per time slice: 3 MiB at 1 MiB/s
# takes 3 s less at most one slice's allowance; load can only make it slower
assert_ge "$ms" 1800 "ms for 3 MiB at 1 MiB/s"
done_bytes=$(awk -v d="$DEV" '$1 == d && $2 == "Write" {print $3}' \
	$V1BLK/$QNAME-be/blkio.throttle.io_service_bytes)
assert_ge "${done_bytes:-0}" $((3 << 20)) "BE's throttled write bytes"

qos_stop
knob_snapshot "$WORK/after"
diff "$WORK/before" "$WORK/after" >&2 || fail "throttles left after the agent stopped"
