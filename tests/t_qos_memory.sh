#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole qos run on cgroup v1, memory: the BE squeeze (a temporary
# memory.limit_in_bytes below BE's usage reclaims BE's page cache); SIGKILL
# mid-squeeze leaves BE squeezed and `anole qos restore`, or the next start,
# puts every knob back byte for byte; eviction kills BE's biggest process
# and never LS.
. "$TESTDIR/lib.sh"
. "$TESTDIR/qos_lib.sh"
need_anole
have_v1 || skip "needs cpu, memory and blkio on cgroup v1"
case "$(findmnt -n -o FSTYPE -T "$WORK")" in
tmpfs|ramfs) skip "WORK is on $(findmnt -n -o FSTYPE -T "$WORK"): its page cache is not reclaimable" ;;
esac
DEV=$(work_disk) || skip "WORK is not on a block device"
UNLIMITED=$(cat $V1MEM/memory.limit_in_bytes)

# Node "pressure" whatever the host: squeeze while MemAvailable < 100%. Every
# policy on, so the journal holds cpu, memory and per-device blkio knobs.
qos_conf 'interval_ms = 500' '[memory]' 'squeeze_available_percent = 100' \
	'squeeze_ratio_percent = 50' '[evict]' 'enabled = false' '[blkio]' \
	'psi_percent = 0' 'read_bps = 1073741824' 'write_bps = 1073741824' "devices = [\"$DEV\"]"
for c in ls mid be; do "$ANOLE" qos exec -c "$QCONF" --class $c -- true; done
knob_snapshot "$WORK/before"
BEM=$V1MEM/$QNAME-be

log "BE page cache, then the squeeze"
"$ANOLE" qos exec -c "$QCONF" --class be -- \
	dd if=/dev/zero of="$WORK/cache" bs=1M count=192 conv=fsync status=none
u0=$(cat $BEM/memory.usage_in_bytes)
log "BE uses $((u0 >> 20)) MiB"
[ "$u0" -ge $((150 << 20)) ] || fail "dd's page cache was not charged to BE ($u0 bytes)"
qos_start
# each pass sets the limit to half of BE's usage: reclaimable page cache
# goes at once; 10 passes leave room for a write v1 refused (EBUSY)
qos_within_passes 10 "[ \$(cat $BEM/memory.usage_in_bytes) -le $((u0 * 6 / 10)) ]" ||
	fail "BE usage $(cat $BEM/memory.usage_in_bytes) not squeezed from $u0"
lim=$(cat $BEM/memory.limit_in_bytes)
log "BE now $(($(cat $BEM/memory.usage_in_bytes) >> 20)) MiB, limit $((lim >> 20)) MiB"
[ "$lim" -lt "$u0" ] || fail "BE limit $lim not below its usage $u0"
qos_within_passes 1 "[ \"\$(cat $V1BLK/$QNAME-be/blkio.throttle.read_bps_device)\" = '$DEV 1073741824' ]" ||
	fail "BE blkio throttle not set"
assert_eq "$(qos_json "s['agent']['metrics']['policies']['memory']['squeezed']")" True "status: squeezed"

log "SIGKILL mid-squeeze, then anole qos restore"
kill -KILL "$QPID"
wait_until 10 "! kill -0 $QPID 2>/dev/null" || fail "agent survived SIGKILL"
[ "$(cat $BEM/memory.limit_in_bytes)" -lt "$UNLIMITED" ] || fail "SIGKILL did not leave BE squeezed"
assert_exists "$QSTATE/$QNAME.state"
"$ANOLE" qos restore -c "$QCONF" --json >"$WORK/restore.json"
n=$("$PY" -c "import json; print(json.load(open('$WORK/restore.json'))['restored'])")
log "restored $n knobs"
assert_ge "$n" 5 "knobs restored (quota, idle, limit, 2 throttles)"
knob_snapshot "$WORK/after"
diff "$WORK/before" "$WORK/after" >&2 || fail "knobs differ after anole qos restore"
assert_missing "$QSTATE/$QNAME.state"
assert_eq "$(cat "$WORK/restore.json")" "$(cat "$WORK/restore.json")"
"$ANOLE" qos restore -c "$QCONF" | grep -q "restored 0" || fail "a second restore found knobs"

log "SIGKILL again; the next start restores"
"$ANOLE" qos exec -c "$QCONF" --class be -- \
	dd if="$WORK/cache" of=/dev/null bs=1M status=none
qos_start
qos_within_passes 1 "[ \$(cat $BEM/memory.limit_in_bytes) -lt $UNLIMITED ]" || fail "not squeezed again"
kill -KILL "$QPID"
wait_until 10 "! kill -0 $QPID 2>/dev/null" || fail "agent survived SIGKILL"
# the same agent, every policy off: it only restores
cp "$QCONF" "$WORK/full.toml"
qos_conf 'interval_ms = 500' '[cpu_suppress]' 'enabled = false' '[cpu_idle]' 'enabled = false' \
	'[cpu_burst]' 'enabled = false' '[memory]' 'enabled = false' '[evict]' 'enabled = false' \
	'[blkio]' 'enabled = false'
qos_start
grep -q "did not stop cleanly" "$WORK/agent.log" || fail "the next start did not say it restored"
knob_snapshot "$WORK/after2"
diff "$WORK/before" "$WORK/after2" >&2 || fail "knobs differ after the next start"
qos_stop

log "eviction: BE's biggest process, never LS"
qos_conf 'interval_ms = 500' '[memory]' 'enabled = false' '[evict]' 'available_percent = 100' \
	'cooldown_ms = 600000' '[blkio]' 'enabled = false'
hog='import sys, time; b = b"x" * (int(sys.argv[1]) << 20); time.sleep(600)'
"$ANOLE" qos exec -c "$QCONF" --class ls -- "$PY" -c "$hog" 200 & ls_hog=$!; add_pid $ls_hog
"$ANOLE" qos exec -c "$QCONF" --class be -- "$PY" -c "$hog" 100 & be_hog=$!; add_pid $be_hog
"$ANOLE" qos exec -c "$QCONF" --class be -- "$PY" -c "$hog" 10 & be_small=$!; add_pid $be_small
# all three allocated (RSS over their sizes) before the agent looks
rss() { awk '/^VmRSS/ {print $2}' /proc/$1/status 2>/dev/null || echo 0; }
wait_until 30 "[ \$(rss $ls_hog) -gt 200000 ] && [ \$(rss $be_hog) -gt 100000 ] && [ \$(rss $be_small) -gt 10000 ]" ||
	fail "the memory hogs did not start"
qos_start
alive() { [ -d /proc/$1 ] && ! grep -q '^State:.*Z' /proc/$1/status 2>/dev/null; }
# the first pass sends SIGKILL; the kernel's exit takes what it takes
qos_within_passes 1 "grep -q '\"evictions\":[1-9]' $QSTATE/$QNAME.json" ||
	fail "the agent evicted nothing"
wait_until 30 "! alive $be_hog" || fail "BE's biggest process was not evicted"
# three more passes: the cooldown holds, LS is never a victim
qos_wait_passes $(($(qos_passes) + 3))
alive $ls_hog || fail "LS was evicted"
alive $be_small || fail "a second BE process was evicted within the cooldown"
assert_eq "$(qos_json "s['agent']['metrics']['policies']['evict']['evictions']")" 1 "evictions"
grep -q "evicted be pid $be_hog" "$WORK/agent.log" || fail "the eviction was not logged"
qos_stop
