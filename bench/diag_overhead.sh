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
#             the events runqlat hooks (sched_wakeup, sched_switch)
#   blockio   4 KiB O_DIRECT reads at random offsets of a loop device backed
#             by a file on tmpfs: every read is a block request, the events
#             biolatency hooks (block_rq_issue, block_rq_complete)
# Configurations, run in turn in each of REPEAT rounds (median reported):
#   none                no collector
#   anole-monitor       anole monitor with both eBPF histograms (sampling 1 s,
#                       scraped by curl every second as Prometheus would)
#   anole-runqlat       anole diag runqlat (one report at the end)
#   anole-biolatency    anole diag biolatency
#   libbpf-runqlat      Debian's libbpf-tools runqlat
#   libbpf-biolatency   Debian's libbpf-tools biolatency
# For each: throughput, loss against "none", and the tracepoint events per
# second the collector saw (context switches from /proc/stat, block requests
# from /proc/diskstats during the run). Then a table of every libbpf-tools
# binary run for 3 s on this kernel (runs / fails and why) next to
# `anole diag list`.
#
# Environment: SECS (default 3), REPEAT (default 5), BENCH_WORK (scratch dir).
set -euo pipefail

ANOLE=${1:-build/anole}
SECS=${SECS:-3}
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
	} else if (!strcmp(argv[1], "pipe")) {
		int a[2], c[2];
		pid_t child;
		if (pipe(a) || pipe(c))
			return 1;
		pin(0);
		child = fork();
		if (!child) { /* echo every byte back until the pipe closes */
			close(a[1]);
			close(c[0]);
			while (read(a[0], b, 1) == 1 && write(c[1], b, 1) == 1)
				;
			_exit(0);
		}
		close(a[0]);
		close(c[1]);
		t0 = now();
		do {
			for (int i = 0; i < 1000; i++)
				if (write(a[1], b, 1) != 1 || read(c[0], b, 1) != 1)
					return 1;
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

CONFIGS="none anole-monitor anole-runqlat anole-biolatency libbpf-runqlat libbpf-biolatency"
BENCHES="syscall pipe blockio"
# results: lines "config bench ops events_per_s"
: >"$WORK/results"
run_bench() { # CONFIG BENCH
	local c0 d0 ops c1 d1 ev
	c0=$(ctxt); d0=$(diskreqs)
	ops=$("$WORK/mb" "$2" "$SECS" "$LOOP")
	c1=$(ctxt); d1=$(diskreqs)
	case $2 in
	blockio) ev=$(( (d1 - d0) * 2 / SECS )) ;;      # issue + complete
	*) ev=$(( (c1 - c0) / SECS )) ;;                  # sched_switch (+ as many wakeups)
	esac
	echo "$1 $2 $ops $ev" >>"$WORK/results"
}

echo "diag overhead: $(uname -r), $(nproc) CPUs, ${SECS}s per run, $REPEAT rounds; loop disk $DISK on tmpfs"
for b in $BENCHES; do "$WORK/mb" "$b" 1 "$LOOP" >/dev/null; done # warm-up (page cache, CPU frequency)
for r in $(seq "$REPEAT"); do
	# rotate the order each round, so slow drift of the machine spreads evenly
	set -- $CONFIGS
	for _ in $(seq $(( (r - 1) % 6 ))); do set -- "${@:2}" "$1"; done
	for c in "$@"; do
		start_collector "$c"
		for b in $BENCHES; do run_bench "$c" "$b"; done
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
	[ "$c" = none ] && continue
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
res = {}
for c, b, ops, ev in rows:
    res.setdefault((c, b), []).append((float(ops), float(ev)))
configs = []
for c, *_ in rows:
    if c not in configs:
        configs.append(c)
configs.sort(key=lambda c: c != "none")
benches = ["syscall", "pipe", "blockio"]
units = {"syscall": "syscalls/s", "pipe": "msgs/s", "blockio": "reads/s"}
print()
print("%-18s %-8s %14s %8s %14s   %s" % ("CONFIG", "BENCH", "THROUGHPUT", "LOSS", "EVENTS/S", "(runs)"))
for b in benches:
    base = statistics.median(o for o, _ in res[("none", b)])
    for c in configs:
        v = res.get((c, b))
        if not v:
            continue
        ops = statistics.median(o for o, _ in v)
        ev = statistics.median(e for _, e in v)
        loss = (base - ops) / base * 100
        spread = "%s" % " ".join("%.0f" % o for o, _ in v)
        print("%-18s %-8s %14s %7.2f%% %14s   %s" % (c, b, "%.0f %s" % (ops, units[b]) if c == "none" else "%.0f" % ops,
              0 if c == "none" else loss, "%.0f" % ev, spread))
    print()
print("EVENTS/S: context switches/s (pipe, syscall; sched_wakeup fires about as often),")
print("block requests issued+completed/s (blockio), measured during the run.")
print("LOSS: median throughput against 'none'; negative = faster (noise).")

stats = {}
for line in open(sys.argv[2]):
    c, name, ns, cnt = line.split()
    d = stats.setdefault(c, {})
    d[name] = (int(ns), int(cnt))
print()
print("Per-event cost (kernel BPF run-time accounting, pipe + blockio runs):")
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
