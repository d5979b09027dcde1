#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole monitor's always-on histograms time from stamps the kernel keeps
# anyway (timing="kernel": a task's run-queue stamp from the scheduler's own
# accounting, a block request's start time), which makes them far cheaper
# than programs that keep start times of their own. They must measure what
# `anole diag runqlat` and `anole diag biolatency` (own start times) measure,
# over the same window:
# - run queue: 3 busy loops pinned to CPU 0 wait there for milliseconds;
#   from 1 ms up, slot by slot, the monitor counts at least the loops'
#   waits (as runqlat -P counts them) and at most runqlat's for all tasks;
# - block I/O: N direct 4 KiB reads of a loop device; the monitor counts at
#   least N requests of that disk and no more than biolatency (whose window
#   contains the monitor's), and its median latency, from the request's
#   start, is not below biolatency's (from its issue) nor far above it.
# Where the kernel lacks the stamps the monitor falls back to the tools'
# own programs (timing="bpf"): then only that fallback is checked.
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
need_diag
need_cmd curl losetup taskset dd

MPORT=$(free_port)

truncate -s 64M "$WORK/disk.img"
loop=$(losetup -f --show "$WORK/disk.img") || fail "losetup failed"
add_loop "$loop"
disk=$(basename "$loop")
command -v udevadm >/dev/null && udevadm settle 2>/dev/null # probes of the new disk are over

"$ANOLE" monitor --listen "127.0.0.1:$MPORT" --interval 1 -v >/dev/null 2>"$WORK/mon.err" &
MON_PID=$!
add_pid "$MON_PID"
for _ in $(seq 300); do
	grep -q 'monitor: serving' "$WORK/mon.err" && break
	kill -0 "$MON_PID" 2>/dev/null || { cat "$WORK/mon.err" >&2; fail "anole monitor exited"; }
	sleep 0.1
done
grep -q 'monitor: serving' "$WORK/mon.err" || fail "anole monitor not serving after 30 s"
diag_bpf_ids "$MON_PID" >"$WORK/mon.ids"
scrape() { curl -sf "http://127.0.0.1:$MPORT/metrics" -o "$WORK/$1.txt" || fail "GET /metrics ($1) failed"; }
scrape first
rq_timing=$(sed -n 's/^anole_monitor_bpf_attached{histogram="runqueue",hook="[a-z_]*",timing="\([a-z]*\)"} 1$/\1/p' "$WORK/first.txt")
bio_timing=$(sed -n 's/^anole_monitor_bpf_attached{histogram="block_io",hook="[a-z_]*",timing="\([a-z]*\)"} 1$/\1/p' "$WORK/first.txt")
log "monitor timing: run queue '$rq_timing', block I/O '$bio_timing'"
[ -n "$rq_timing" ] && [ -n "$bio_timing" ] || fail "monitor: both histograms must be attached: $(grep bpf_attached "$WORK/first.txt")"
# the kernel stamps exist on this kernel when its BTF has them (dumped to a
# file first: grep -q would end the pipe early, and pipefail fail it)
bpftool btf dump file /sys/kernel/btf/vmlinux format raw >"$WORK/btf.txt" || fail "bpftool btf dump failed"
if grep -q "'last_queued'" "$WORK/btf.txt" && [ "$(awk '{ print $3 }' /proc/self/schedstat)" -gt 0 ]; then
	log "this kernel stamps queued tasks: the run-queue histogram must time from them"
	assert_eq "$rq_timing" kernel "run-queue timing where the scheduler stamps queued tasks"
fi
assert_eq "$bio_timing" kernel "block I/O timing (requests carry start_time_ns since Linux 4.x)"

# metric NAME FILE: the value of a series line (0 if absent)
metric() { awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }' "$2"; }
# buckets FILE [LABELS]: the cumulative bucket counts of a histogram, by le
buckets() { sed -n "s/^$2_bucket{${3:-}le=\"\\([^\"]*\\)\"} \\([0-9]*\\)$/\\1 \\2/p" "$1"; }

# mon_sampled: return once the agent has taken a sample after this call
# (its sample counter moved on): sampling runs late on a loaded machine.
mon_sampled() {
	local now
	now=$(curl -sf "http://127.0.0.1:$MPORT/metrics" | awk '$1 == "anole_monitor_samples_total" { print $2 }')
	[ -n "$now" ] || fail "no anole_monitor_samples_total from the agent"
	for _ in $(seq 600); do
		[ "$(curl -sf "http://127.0.0.1:$MPORT/metrics" | awk '$1 == "anole_monitor_samples_total" { print $2 }')" -gt "$now" ] && return 0
		sleep 0.2
	done
	fail "the agent took no sample after number $now in 120 s"
}

# ---------------------------------------------------------------- run queue
# The monitor counts every task's waits, as runqlat does (one run for all
# tasks, one with -P per process: a map of at most 10240 processes);
# runqlat's windows contain the monitor's (a sample after they attached,
# another before they stop). Other tasks of a loaded machine wait too, and
# where one migrates while it waits the monitor counts only the part on
# the CPU that runs it (docs/anole-monitor.md): so the monitor counts no
# more than runqlat, and at least the busy loops' waits - pinned, they
# never migrate, and fall in both windows - slot by slot from 1 ms up.
# Except: a wait already going on when runqlat attached has no start time
# there, while the always-on monitor counts it; there are at most as many
# as tasks were queued then (procs_running, read around the attach).
running() { awk '$1 == "procs_running" { print $2 }' /proc/stat; }
q0=$(running)
diag_start rq runqlat --json
rq_pid=$DIAG_PID
q1=$(running)
queued=$(( q0 > q1 ? q0 : q1 ))
diag_start rqp runqlat -P --json
rqp_pid=$DIAG_PID
mon_sampled
scrape before
loops=()
for _ in 1 2 3; do
	taskset -c 0 bash -c 'while :; do :; done' &
	add_pid $!
	loops+=($!)
done
for l in "${loops[@]}"; do diag_wait_cpu "$l" 0.5; done
kill "${loops[@]}"
wait "${loops[@]}" 2>/dev/null || true
mon_sampled
scrape after
DIAG_PID=$rqp_pid diag_stop rqp
DIAG_PID=$rq_pid diag_stop rq

pylist=$(IFS=,; echo "[${loops[*]}]")
# waits >= 2^s us for s = 10..26: monitor (after - before), runqlat (all
# tasks), runqlat (the loops)
buckets "$WORK/before.txt" anole_runqueue_latency_seconds >"$WORK/rq.before"
buckets "$WORK/after.txt" anole_runqueue_latency_seconds >"$WORK/rq.after"
"$PY" - "$WORK/rq.before" "$WORK/rq.after" >"$WORK/rq.mon" <<'EOF2'
import sys
b, a = ([int(l.split()[1]) for l in open(f)] for f in sys.argv[1:3])
d = [x - y for x, y in zip(a, b)]
# cumulative buckets: le 2^(s+1) us holds waits below 2^(s+1) us; +Inf last
print([d[-1] - d[s - 1] for s in range(10, 27)])
EOF2
mon=$(cat "$WORK/rq.mon")
all=$(diag_json "[above(rows[-1]['hist'], 1 << s) for s in range(10, 27)]" "$WORK/rq.out")
own=$(diag_json "[sum(above(h['hist'], 1 << s) for h in rows[-1]['hists'] if h['pid'] in $pylist) for s in range(10, 27)]" "$WORK/rqp.out")
log "run-queue waits >= 1, 2, 4 ... ms: monitor ($rq_timing) $mon"
log "                                   runqlat, all tasks $all"
log "                                   runqlat, the loops $own"
[ "$(diag_json "$own[0]" "$WORK/rq.out")" -ge 100 ] ||
	fail "runqlat saw $own waits >= 1 ms of 3 loops on one CPU with 0.5 s of CPU each"
# slot boundaries: the monitor times from the scheduler's stamp, runqlat
# from its own (a few us apart), so a wait near a power of two can fall on
# either side of it: 10% and 5 waits of room
diag_json "all(m >= o * 0.9 - 5 for m, o in zip($mon, $own)) and all(m <= a * 1.1 + $queued + 5 for m, a in zip($mon, $all))" "$WORK/rq.out" |
	grep -q True || fail "monitor's waits $mon not between the loops' $own and all tasks' $all (+ $queued queued at attach)"

# ---------------------------------------------------------------- block I/O
N=400
diag_start bio biolatency -d "$disk" --json
mon_sampled
scrape bbefore
dd if="$loop" of=/dev/null bs=4k count="$N" iflag=direct status=none || fail "dd from $loop failed"
mon_sampled
scrape bafter
diag_stop bio

dev_count() { metric "anole_block_io_latency_seconds_count{device=\"$disk\"}" "$1"; }
mon=$(( $(dev_count "$WORK/bafter.txt") - $(dev_count "$WORK/bbefore.txt") ))
tool=$(diag_json 'sum(h["total"] for h in rows[-1]["hists"])' "$WORK/bio.out")
log "requests of $disk: monitor ($bio_timing) $mon, biolatency $tool, issued $N"
[ "$mon" -ge "$N" ] || fail "monitor counted $mon requests of $disk for $N direct reads"
[ "$mon" -le "$tool" ] || fail "monitor counted $mon requests of $disk, biolatency (a wider window) $tool"
[ "$tool" -le $((mon + 20)) ] || fail "biolatency counted $tool requests of $disk, the monitor $mon"
buckets "$WORK/bbefore.txt" anole_block_io_latency_seconds "device=\"$disk\"," >"$WORK/b.before"
buckets "$WORK/bafter.txt" anole_block_io_latency_seconds "device=\"$disk\"," >"$WORK/b.after"
med_mon=$("$PY" - "$WORK/b.before" "$WORK/b.after" <<'EOF'
import sys
b, a = ([int(l.split()[1]) for l in open(f)] for f in sys.argv[1:3])
d = [x - y for x, y in zip(a, b)] if b else a
print(next(i for i, c in enumerate(d) if c >= d[-1] / 2))
EOF
)
med_tool=$(diag_json 'next(i for i, c in enumerate(__import__("itertools").accumulate(b["count"] for b in rows[-1]["hists"][0]["hist"])) if c >= rows[-1]["hists"][0]["total"] / 2)' "$WORK/bio.out")
log "median latency slot of $disk: monitor $med_mon (from the request's start), biolatency $med_tool (from issue)"
[ "$med_mon" -ge "$med_tool" ] && [ "$med_mon" -le $((med_tool + 2)) ] ||
	fail "median latency slot: monitor $med_mon, biolatency $med_tool (expected the same or up to 2 slots above)"

kill -TERM "$MON_PID"
wait "$MON_PID" || fail "anole monitor exited $? on SIGTERM"
diag_assert_released mon
