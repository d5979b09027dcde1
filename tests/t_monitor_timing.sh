#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole monitor's always-on histograms time from stamps the kernel keeps
# anyway (timing="kernel": a task's run-queue stamp from the scheduler's own
# accounting, a block request's start time), which makes them far cheaper
# than programs that keep start times of their own. They must measure what
# `anole diag runqlat` and `anole diag biolatency` (own start times) measure,
# over the same window:
# - run queue: 3 busy loops pinned to CPU 0 wait there for milliseconds;
#   both count about as many waits of >= 1 ms (within 10%), in the same
#   most common log2 slot;
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

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
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
# slow FILE: run-queue waits >= 1024 us
slow() { echo $(( $(metric anole_runqueue_latency_seconds_count "$1") - $(metric 'anole_runqueue_latency_seconds_bucket{le="0.001024"}' "$1") )); }
# buckets FILE [LABELS]: the cumulative bucket counts of a histogram, by le
buckets() { sed -n "s/^$2_bucket{${3:-}le=\"\\([^\"]*\\)\"} \\([0-9]*\\)$/\\1 \\2/p" "$1"; }

# ---------------------------------------------------------------- run queue
diag_start rq runqlat --json
sleep 1.5 # the monitor samples once more: what came before is in "before"
scrape before
loops=()
for _ in 1 2 3; do
	taskset -c 0 bash -c 'while :; do :; done' &
	add_pid $!
	loops+=($!)
done
sleep 3
kill "${loops[@]}"
wait "${loops[@]}" 2>/dev/null || true
sleep 1.5
scrape after
kill -INT "$DIAG_PID"
diag_finish rq

mon=$(( $(slow "$WORK/after.txt") - $(slow "$WORK/before.txt") ))
tool=$(diag_json 'above(rows[-1]["hist"], 1024)' "$WORK/rq.out")
log "run-queue waits >= 1 ms: monitor ($rq_timing) $mon, runqlat $tool"
[ "$tool" -ge 100 ] || fail "runqlat saw $tool waits >= 1 ms under 3 loops on one CPU for 3 s"
fcmp "$mon" '>=' "$tool * 0.9" && fcmp "$mon" '<=' "$tool * 1.1 + 5" ||
	fail "monitor counted $mon run-queue waits >= 1 ms, runqlat $tool (window containing the monitor's)"
# the most common slot of each (per-slot differences of the cumulative buckets)
buckets "$WORK/before.txt" anole_runqueue_latency_seconds >"$WORK/rq.before"
buckets "$WORK/after.txt" anole_runqueue_latency_seconds >"$WORK/rq.after"
mode_mon=$("$PY" - "$WORK/rq.before" "$WORK/rq.after" <<'EOF'
import sys
b, a = ([(l.split()[0], int(l.split()[1])) for l in open(f)] for f in sys.argv[1:3])
d = [x[1] - y[1] for x, y in zip(a, b)]
per = [d[0]] + [d[i] - d[i - 1] for i in range(1, len(d))]
slow = per[10:]  # slots from 1024 us: the loops' waits, not the machine's
print(10 + slow.index(max(slow)))
EOF
)
mode_tool=$(diag_json 'max(range(10, len(rows[-1]["hist"])), key=lambda i: rows[-1]["hist"][i]["count"])' "$WORK/rq.out")
log "most common slot >= 1 ms: monitor $mode_mon, runqlat $mode_tool"
assert_eq "$mode_mon" "$mode_tool" "most common log2 slot of waits >= 1 ms, monitor vs runqlat"

# ---------------------------------------------------------------- block I/O
N=400
diag_start bio biolatency -d "$disk" --json
sleep 1.5
scrape bbefore
dd if="$loop" of=/dev/null bs=4k count="$N" iflag=direct status=none || fail "dd from $loop failed"
sleep 1.5
scrape bafter
kill -INT "$DIAG_PID"
diag_finish bio

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
