#!/bin/bash
# Overhead of always-on eBPF collectors on syscall-, context-switch- and
# block-I/O-heavy micro-benchmarks, and which libbpf-tools run on this kernel.
#
#   bench/diag_overhead.sh [ANOLE]   (default build/anole; root; ~5 minutes)
#
# Micro-benchmarks (small C programs compiled here, each runs SECS seconds
# and prints operations per second):
#   syscall   getppid() + 1-byte read of /dev/zero in a loop (no scheduler
#             or block event: what any tracing costs the syscall path)
#   pipe      two processes pinned to one CPU passing a byte back and forth
#             over two pipes: every message is a wakeup and a context switch,
#             the events runqlat hooks (sched_wakeup, sched_switch), as fast
#             as the CPU allows (several 100k/s)
#   pipe100k  the same with CPU work per message sized (calibrated at start)
#             for ~100k context switches/s: the rate of the overhead goal
#             (<= 2% throughput loss at 100k events/s)
#   blockio   4 KiB O_DIRECT reads at random offsets of a loop device backed
#             by a file on tmpfs: every read is a block request, the events
#             biolatency hooks (block_rq_issue, block_rq_complete)
# Collectors:
#   anole-monitor       anole monitor with both eBPF histograms (sampling 1 s,
#                       scraped by curl every second as Prometheus would)
#   anole-runqlat       anole diag runqlat (one report at the end)
#   anole-biolatency    anole diag biolatency
#   libbpf-runqlat      Debian's libbpf-tools runqlat
#   libbpf-biolatency   Debian's libbpf-tools biolatency
# In each of REPEAT rounds (collector order rotated), every collector's runs
# follow runs without any collector, its paired baseline: the loss is the
# median over rounds of the paired ratios, which cancels most of the drift
# of a shared machine. Events per second (context switches from /proc/stat,
# block requests from /proc/diskstats) are measured during each run.
# Then the per-event cost of each collector's programs from the kernel's BPF
# run-time accounting (noise-free), and a table of every libbpf-tools
# binary run for 3 s on this kernel (runs / fails and why) next to
# `anole diag list`.
#
# Environment: SECS (default 2), REPEAT (default 5), TOOLS=0 skips the
# libbpf-tools table, BENCH_WORK (scratch dir), CONFIGS and BENCHES (subsets
# of the lists below, space-separated).
set -euo pipefail

ANOLE=${1:-build/anole}
SECS=${SECS:-2}
REPEAT=${REPEAT:-5}
[ "$(id -u)" -eq 0 ] || { echo "bench/diag_overhead.sh: needs root (BPF)" >&2; exit 1; }
[ -x "$ANOLE" ] || { echo "no anole binary at $ANOLE (run make)" >&2; exit 1; }
ANOLE=$(cd "$(dirname "$ANOLE")" && pwd)/$(basename "$ANOLE")

# bench-only packages: the peer tools, a compiler, curl
need() { command -v "$1" >/dev/null || apt-get install -y -q --no-install-recommends "$2" >/dev/null; }
need cc gcc
need curl curl
need losetup util-linux
[ -x /usr/sbin/runqlat ] || apt-get install -y -q --no-install-recommends libbpf-tools >/dev/null

WORK=${BENCH_WORK:-$(mktemp -d /tmp/anole-diag-overhead.XXXXXX)}
mkdir -p "$WORK"
PIDS=()
LOOP=""
cleanup() {
	set +e
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	[ -n "$LOOP" ] && losetup -d "$LOOP"
	mountpoint -q "$WORK/tmpfs" && umount "$WORK/tmpfs"
}
trap cleanup EXIT
trap "exit 143" TERM
trap "exit 130" INT

# ---------------------------------------------------------------- the micro-benchmarks
cat >"$WORK/mb.c" <<'EOF'
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU work that the compiler cannot drop */
static void spin(unsigned long n)
{
	for (volatile unsigned long i = 0; i < n; i++)
		;
}

static void pin(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

int main(int argc, char **argv)
{
	double secs = atof(argv[2]), t0, t;
	unsigned long long n = 0;
	char b[1] = { 0 };

	if (!strcmp(argv[1], "syscall")) {
		int fd = open("/dev/zero", O_RDONLY);
		t0 = now();
		do {
			for (int i = 0; i < 1000; i++) {
				getppid();
				if (read(fd, b, 1) != 1)
					return 1;
			}
			n += 2000;
		} while ((t = now()) - t0 < secs);
	} else if (!strcmp(argv[1], "calibrate")) { /* spin iterations per microsecond */
		t0 = now();
		spin(50000000);
		printf("%.0f\n", 50000000 / ((now() - t0) * 1e6));
		return 0;
	} else if (!strncmp(argv[1], "pipe", 4)) { /* pipe SECS x [SPIN]: SPIN iterations after each message received */
		unsigned long w = argc > 4 ? strtoul(argv[4], NULL, 10) : 0;
		int a[2], c[2];
		pid_t child;
		if (pipe(a) || pipe(c))
			return 1;
		pin(0);
		child = fork();
		if (!child) { /* echo every byte back until the pipe closes */
			close(a[1]);
			close(c[0]);
			while (read(a[0], b, 1) == 1) {
				spin(w);
				if (write(c[1], b, 1) != 1)
					break;
			}
			_exit(0);
		}
		close(a[0]);
		close(c[1]);
		t0 = now();
		do {
			for (int i = 0; i < 1000; i++) {
				spin(w);
				if (write(a[1], b, 1) != 1 || read(c[0], b, 1) != 1)
					return 1;
			}
			n += 2000; /* messages: each one a wakeup and a switch */
		} while ((t = now()) - t0 < secs);
		close(a[1]);
		waitpid(child, NULL, 0);
	} else { /* blockio DEVICE */
		int fd = open(argv[3], O_RDONLY | O_DIRECT);
		off_t blocks;
		void *buf;
		unsigned x = 12345;
		if (fd < 0 || posix_memalign(&buf, 4096, 4096))
			return 1;
		blocks = lseek(fd, 0, SEEK_END) / 4096;
		t0 = now();
		do {
			for (int i = 0; i < 64; i++) {
				x = x * 1103515245 + 12345;
				if (pread(fd, buf, 4096, (off_t)(x % blocks) * 4096) != 4096)
					return 1;
			}
			n += 64;
		} while ((t = now()) - t0 < secs);
	}
	printf("%.0f\n", n / (t - t0));
	return 0;
}
EOF
cc -O2 -o "$WORK/mb" "$WORK/mb.c"

mkdir -p "$WORK/tmpfs"
mount -t tmpfs -o size=300m tmpfs "$WORK/tmpfs"
truncate -s 256M "$WORK/tmpfs/disk.img"
dd if=/dev/urandom of="$WORK/tmpfs/disk.img" bs=1M count=256 conv=notrunc status=none
LOOP=$(losetup -f --show --direct-io=off "$WORK/tmpfs/disk.img")
DISK=$(basename "$LOOP")

ctxt() { awk '/^ctxt/ { print $2 }' /proc/stat; }
# requests completed by the loop disk (reads + writes)
diskreqs() { awk -v d="$DISK" '$3 == d { print $4 + $8 }' /proc/diskstats; }

# ---------------------------------------------------------------- collectors
MPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
COLL_PID=""
SCRAPER_PID=""
# attached: the process holds a BPF link (libbpf-tools' own output is block
# buffered into a file, so their banner cannot be waited for)
wait_attached() { # PID LOG
	for _ in $(seq 100); do
		grep -qs '^link_id:' /proc/"$1"/fdinfo/* && return 0
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	echo "collector did not attach: $(cat "$2")" >&2
	return 1
}
start_collector() {
	local log="$WORK/collector.log"
	: >"$log"
	COLL_PID=""
	case $1 in
	none) return 0 ;;
	anole-monitor)
		"$ANOLE" monitor --listen "127.0.0.1:$MPORT" --interval 1 2>"$log" &
		COLL_PID=$!
		(while :; do curl -s -o /dev/null "http://127.0.0.1:$MPORT/metrics" || true; sleep 1; done) &
		SCRAPER_PID=$!
		PIDS+=("$SCRAPER_PID")
		;;
	anole-runqlat) "$ANOLE" diag runqlat >/dev/null 2>"$log" & COLL_PID=$! ;;
	anole-biolatency) "$ANOLE" diag biolatency >/dev/null 2>"$log" & COLL_PID=$! ;;
	libbpf-runqlat) /usr/sbin/runqlat >"$log" 2>&1 & COLL_PID=$! ;;
	libbpf-biolatency) /usr/sbin/biolatency >"$log" 2>&1 & COLL_PID=$! ;;
	esac
	PIDS+=("$COLL_PID")
	wait_attached "$COLL_PID" "$log"
}
stop_collector() {
	[ -n "$SCRAPER_PID" ] && { kill "$SCRAPER_PID" 2>/dev/null || true; wait "$SCRAPER_PID" 2>/dev/null || true; SCRAPER_PID=""; }
	[ -n "$COLL_PID" ] || return 0
	kill -INT "$COLL_PID" 2>/dev/null || echo "collector $COLL_PID had exited: $(cat "$WORK/collector.log")" >&2
	wait "$COLL_PID" 2>/dev/null || true
}

CONFIGS=${CONFIGS:-"anole-monitor anole-runqlat anole-biolatency libbpf-runqlat libbpf-biolatency"}
BENCHES=${BENCHES:-"syscall pipe pipe100k blockio"}
# pipe100k: work per message sized so that the pipe makes ~100k context
# switches/s without collectors (the target rate of the overhead goal)
ITERS_PER_US=$("$WORK/mb" calibrate 0 x)
pipe_rate=$("$WORK/mb" pipe 1 x)
# per message: 1e6/100k = 10 us in all, of which the bare ping-pong takes
# 1e6/pipe_rate; each message is followed by one spin (on its receiving side)
SPIN=$(python3 -c "print(max(0, int((10 - 1e6 / $pipe_rate) * $ITERS_PER_US)))")
# results: lines "round config bench ops events_per_s"; config "none" runs
# right before each collector's, so each collector has a paired baseline
: >"$WORK/results"
run_bench() { # ROUND CONFIG BENCH
	local c0 d0 ops c1 d1 ev
	c0=$(ctxt); d0=$(diskreqs)
	case $3 in
	pipe100k) ops=$("$WORK/mb" pipe "$SECS" x "$SPIN") ;;
	*) ops=$("$WORK/mb" "$3" "$SECS" "$LOOP") ;;
	esac
	c1=$(ctxt); d1=$(diskreqs)
	case $3 in
	blockio) ev=$(( (d1 - d0) * 2 / SECS )) ;;      # issue + complete
	*) ev=$(( (c1 - c0) / SECS )) ;;                  # sched_switch (+ as many wakeups)
	esac
	echo "$1 $2 $3 $ops $ev" >>"$WORK/results"
}

echo "diag overhead: $(uname -r), $(nproc) CPUs, ${SECS}s per run, $REPEAT rounds; loop disk $DISK on tmpfs"
echo "pipe100k: $SPIN spin iterations per message ($ITERS_PER_US per us)"
for b in $BENCHES; do run_bench 0 warmup "$b"; done # page cache, CPU frequency
for r in $(seq "$REPEAT"); do
	# rotate the order each round, so slow drift of the machine spreads evenly
	# shellcheck disable=SC2086 # a list of words
	set -- $CONFIGS
	for _ in $(seq $(( (r - 1) % 5 ))); do set -- "${@:2}" "$1"; done
	for c in "$@"; do
		for b in $BENCHES; do run_bench "$r" "none:$c" "$b"; done
		start_collector "$c"
		for b in $BENCHES; do run_bench "$r" "$c" "$b"; done
		stop_collector
	done
	echo "  round $r/$REPEAT done"
done

# Per-event cost, free of the machine's noise: the kernel's own accounting of
# each BPF program's run time (kernel.bpf_stats_enabled, on only for this
# pass since it adds two clock reads per run). A collector costs
# runs/s x ns/run of CPU; at 100k events/s that is the share of a CPU a
# single-threaded workload doing those events loses.
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -q -w kernel.bpf_stats_enabled=1
: >"$WORK/bpfstats"
for c in $CONFIGS; do
	start_collector "$c"
	ids=$(for f in /proc/"$COLL_PID"/fdinfo/*; do sed -n 's/^prog_id:[[:space:]]*//p' "$f" 2>/dev/null; done | sort -u)
	for b in pipe blockio; do "$WORK/mb" "$b" "$SECS" "$LOOP" >/dev/null; done
	for id in $ids; do
		bpftool prog show id "$id" --json 2>/dev/null |
			python3 -c 'import json,sys; p=json.load(sys.stdin); print(sys.argv[1], p.get("name","?"), p.get("run_time_ns",0), p.get("run_cnt",0))' "$c"
	done >>"$WORK/bpfstats"
	stop_collector
done
sysctl -q -w kernel.bpf_stats_enabled="$old_stats"

python3 - "$WORK/results" "$WORK/bpfstats" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
ops, ev, base = {}, {}, {}
configs = []
for r, c, b, o, e in rows:
    if c == "warmup":
        continue
    if c.startswith("none:"):
        base[(r, c[5:], b)] = float(o)
        ops.setdefault(("none", b), []).append(float(o))
        ev.setdefault(("none", b), []).append(float(e))
        continue
    if c not in configs:
        configs.append(c)
    ops.setdefault((c, b), []).append(float(o))
    ev.setdefault((c, b), []).append(float(e))
benches = [b for b in ["syscall", "pipe", "pipe100k", "blockio"] if ("none", b) in ops]
units = {"syscall": "syscalls/s", "pipe": "msgs/s", "pipe100k": "msgs/s", "blockio": "reads/s"}
print()
print("%-18s %-9s %18s %9s %11s   %s" % ("CONFIG", "BENCH", "THROUGHPUT", "LOSS", "EVENTS/S", "loss per round (paired)"))
for b in benches:
    print("%-18s %-9s %18s %9s %11.0f" % ("none", b, "%.0f %s" % (statistics.median(ops[("none", b)]), units[b]),
          "-", statistics.median(ev[("none", b)])))
    for c in sorted(configs):
        pairs = [(float(o), base[(r, c, b)]) for r, cc, bb, o, e in rows if cc == c and bb == b]
        losses = [(n - o) / n * 100 for o, n in pairs]
        print("%-18s %-9s %18.0f %8.2f%% %11.0f   %s" % (c, b, statistics.median(ops[(c, b)]),
              statistics.median(losses), statistics.median(ev[(c, b)]),
              " ".join("%.1f" % x for x in losses)))
    print()
print("THROUGHPUT, EVENTS/S: medians. EVENTS/S: context switches/s (syscall, pipe*;")
print("sched_wakeup fires about as often), block requests issued + completed/s (blockio).")
print("LOSS: median over rounds of 1 - ops(collector) / ops(none run just before it);")
print("the spread shows the noise of this shared machine. Negative: faster (noise).")

stats = {}
for line in open(sys.argv[2]):
    c, name, ns, cnt = line.split()
    d = stats.setdefault(c, {})
    d[name] = (int(ns), int(cnt))
print()
print("Per-event cost (kernel BPF run-time accounting over a pipe and a blockio run):")
print("%-18s %-22s %12s %9s" % ("CONFIG", "PROGRAM", "RUNS", "NS/RUN"))
for c, progs in stats.items():
    tns = tcnt = 0
    for name, (ns, cnt) in sorted(progs.items()):
        if cnt:
            print("%-18s %-22s %12d %9.0f" % (c, name, cnt, ns / cnt))
        tns += ns; tcnt += cnt
    if tcnt:
        per = tns / tcnt
        print("%-18s %-22s %12d %9.0f   -> at 100k events/s: %.2f%% of a CPU" % (c, "(all)", tcnt, per, per * 1e5 / 1e9 * 100))
EOF

# ---------------------------------------------------------------- which tools run here
[ "${TOOLS:-1}" = 0 ] && exit 0
echo
echo "libbpf-tools $(dpkg-query -W -f='${Version}' libbpf-tools 2>/dev/null) on $(uname -r): each run 3 s (no arguments but where one is required)"
printf '%-14s %-5s %s\n' TOOL RUNS "WHY NOT"
ok=0
total=0
for t in $(dpkg -L libbpf-tools | grep '/sbin/' | sort); do
	n=$(basename "$t")
	total=$((total + 1))
	rc=0
	# the few that need an argument get a plain one
	case $n in
	funclatency) args=(vfs_read) ;;
	ksnoop) args=(trace vfs_read) ;;
	javagc) args=(-p "$$") ;;
	*) args=() ;;
	esac
	timeout -s INT 3 "$t" "${args[@]}" >"$WORK/tool.out" 2>&1 </dev/null || rc=$?
	# running until the timeout (SIGINT: 124 from timeout, or the tool's own 0/130)
	if { [ "$rc" -eq 124 ] || [ "$rc" -eq 0 ] || [ "$rc" -eq 130 ]; } &&
		! grep -qiE 'failed to (load|attach|open)|error:' "$WORK/tool.out"; then
		printf '%-14s %-5s\n' "$n" yes
		ok=$((ok + 1))
	else
		why=$(grep -iE 'fail|error|not |unknown|usage|invalid' "$WORK/tool.out" | head -n1 | cut -c1-90 || true)
		printf '%-14s %-5s %s\n' "$n" no "${why:-exit $rc}"
	fi
done
echo "libbpf-tools: $ok of $total run on this kernel"
echo
"$ANOLE" diag list
