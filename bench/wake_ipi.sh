#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# How late does a wake-up reach a CPU that a low-priority task keeps busy?
# Colocation rests on it: BE runs as SCHED_IDLE (cpu.idle = 1), and a LS
# task woken onto BE's CPU should preempt it at once. A wake-up from another
# CPU needs an inter-processor interrupt; on bare metal it takes
# microseconds whether the target CPU is idle or busy. On a virtual machine
# the host delivers it, and may deliver it late to a vCPU that is running
# guest code. If so, no guest knob can make a cross-CPU woken LS task fast
# while BE shares its CPU: only keeping BE off LS's CPUs (a cpuset) can.
# bench/qos.sh's nginx case is woken this way (by wrk, on the other CPU);
# its probe case, woken by its own CPU's timer, is not.
#
#   bench/wake_ipi.sh          (root; needs cc, taskset, chrt)
#
# A sleeper thread pinned to the last CPU blocks on a pipe; a waker thread
# pinned to CPU 0 writes to it every 1-2 ms (random) and the sleeper stamps
# when it runs: latency = run - write. Cases, interleaved over ROUNDS
# (default 5) of COUNT wake-ups (default 3000) each:
#   idle        the sleeper's CPU has nothing else to run
#   sched_idle  a SCHED_IDLE busy loop on the sleeper's CPU (cpu.idle's
#               policy for BE's tasks)
#   nice19      a nice 19 busy loop on the sleeper's CPU instead
#   local       the same SCHED_IDLE loop, the sleeper woken by its own CPU's
#               timer (clock_nanosleep) instead: no IPI
# and, by name in CASES:
#   waker_busy  the SCHED_IDLE loop on the waker's CPU, the sleeper's idle
#   cg_idle     a normal busy loop in a cpu.idle = 1 group beside the
#               sleeper's group (anole qos's BE and LS, v1 or v2)
#   cg_quota    that group under a quota of 50 ms per 100 ms: idle half the
#               time, in windows of 50 ms
#   cg_quota_2ms  a quota of 1 ms per 2 ms: the same share, windows of 1 ms
# Printed per case: p50, p99, p999 and max in µs, the spread over rounds.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
COUNT=${COUNT:-3000}
CASES=${CASES:-"idle sched_idle nice19 local"}
for c in cc taskset chrt python3; do
	command -v $c >/dev/null || { echo "bench/wake_ipi.sh: needs $c" >&2; exit 1; }
done
ncpu=$(nproc)
[ "$ncpu" -ge 2 ] || { echo "bench/wake_ipi.sh: needs 2 CPUs" >&2; exit 1; }
target=$((ncpu - 1))
work=$(mktemp -d)
SPIN=
CG=
cleanup() {
	[ -z "$SPIN" ] || kill "$SPIN" 2>/dev/null || true
	if [ -n "$CG" ]; then
		sleep 0.2
		rmdir "$CG/ls" "$CG/be" "$CG" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/wake.c" <<'C'
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fds[2], count, local_timer;
static double *lat_us;

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
		exit(3);
}

static void *sleeper(void *arg)
{
	double sent;

	pin(*(int *)arg);
	for (int i = 0; i < count; i++) {
		if (local_timer) {
			struct timespec t;
			long gap_ns = 1000000 + random() % 1000000;

			clock_gettime(CLOCK_MONOTONIC, &t);
			t.tv_nsec += gap_ns;
			if (t.tv_nsec >= 1000000000) {
				t.tv_sec++;
				t.tv_nsec -= 1000000000;
			}
			sent = t.tv_sec * 1e6 + t.tv_nsec / 1e3;
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
		} else if (read(fds[0], &sent, sizeof(sent)) != sizeof(sent)) {
			exit(4);
		}
		lat_us[i] = now_us() - sent;
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int target = atoi(argv[1]);
	pthread_t t;

	count = atoi(argv[2]);
	local_timer = argc > 3 && !strcmp(argv[3], "local");
	lat_us = calloc(count, sizeof(*lat_us));
	if (!lat_us || pipe(fds))
		return 2;
	pin(0);
	pthread_create(&t, NULL, sleeper, &target);
	if (!local_timer)
		for (int i = 0; i < count; i++) {
			struct timespec gap = { 0, 1000000 + random() % 1000000 };
			double sent;

			nanosleep(&gap, NULL);
			sent = now_us();
			if (write(fds[1], &sent, sizeof(sent)) != sizeof(sent))
				return 5;
		}
	pthread_join(t, NULL);
	qsort(lat_us, count, sizeof(*lat_us), cmp);
	printf("%.1f %.1f %.1f %.1f\n", lat_us[count / 2], lat_us[count * 99 / 100],
	       lat_us[count * 999 / 1000], lat_us[count - 1]);
	return 0;
}
C
cc -O2 -pthread -o "$work/wake" "$work/wake.c"

spin() { # spin POLICY...: a busy loop on the target CPU
	taskset -c "${spin_cpu:-$target}" "$@" sh -c 'while :; do :; done' &
	SPIN=$!
	sleep 0.2
}
# spin_in_group QUOTA [PERIOD]: the busy loop in a group with cpu.idle = 1
# and that CFS quota per PERIOD µs (default 100000; quota -1: none), beside the sleeper's group, as anole qos
# lays out BE and LS (cgroup v1 cpu controller, or v2)
spin_in_group() {
	if [ -z "$CG" ]; then
		if [ -d /sys/fs/cgroup/cpu ] && [ -e /sys/fs/cgroup/cpu/cpu.shares ]; then
			CG=/sys/fs/cgroup/cpu/anole-wake-ipi
		else
			CG=/sys/fs/cgroup/anole-wake-ipi
			echo +cpu >/sys/fs/cgroup/cgroup.subtree_control
		fi
		mkdir -p "$CG/ls" "$CG/be"
		[ -e "$CG/cpu.shares" ] || echo +cpu >"$CG/cgroup.subtree_control"
		echo 1 >"$CG/be/cpu.idle"
	fi
	local period=${2:-100000}
	if [ -e "$CG/be/cpu.max" ]; then
		if [ "$1" = -1 ]; then echo "max $period" >"$CG/be/cpu.max"; else echo "$1 $period" >"$CG/be/cpu.max"; fi
	else
		echo -1 >"$CG/be/cpu.cfs_quota_us"
		echo "$period" >"$CG/be/cpu.cfs_period_us"
		echo "$1" >"$CG/be/cpu.cfs_quota_us"
	fi
	taskset -c "$target" sh -c 'echo $$ > '"$CG"'/be/cgroup.procs; exec sh -c "while :; do :; done"' &
	SPIN=$!
	SLEEPER_GROUP=$CG/ls
	sleep 0.2
}
unspin() {
	[ -n "$SPIN" ] || return 0
	kill "$SPIN" 2>/dev/null || true
	wait "$SPIN" 2>/dev/null || true
	SPIN=
}

echo "bench/wake_ipi.sh: waker on CPU 0, sleeper on CPU $target, $COUNT wake-ups per run, $ROUNDS rounds"
printf '%-5s %-11s %10s %10s %10s %10s\n' round case "p50 (µs)" "p99" "p999" max
for r in $(seq "$ROUNDS"); do
	for c in $CASES; do
		mode=ipi
		case $c in
		idle) ;;
		sched_idle) spin chrt -i 0 ;;
		nice19) spin nice -n 19 ;;
		waker_busy) spin_cpu=0 spin chrt -i 0 ;;
		local) spin chrt -i 0; mode=local ;;
		cg_idle) spin_in_group -1 ;;
		cg_quota) spin_in_group 50000 100000 ;;
		cg_quota_2ms) spin_in_group 1000 2000 ;;
		*) echo "bench/wake_ipi.sh: unknown case $c" >&2; exit 1 ;;
		esac
		if [ -n "${SLEEPER_GROUP:-}" ]; then
			read -r p50 p99 p999 max < <(sh -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' sh \
				"$SLEEPER_GROUP" "$work/wake" "$target" "$COUNT" "$mode")
			SLEEPER_GROUP=
		else
			read -r p50 p99 p999 max < <("$work/wake" "$target" "$COUNT" "$mode")
		fi
		unspin
		printf '%-5s %-11s %10s %10s %10s %10s\n' "$r" "$c" "$p50" "$p99" "$p999" "$max"
		echo "$c $p50 $p99 $p999 $max" >>"$work/all"
	done
done
python3 - "$work/all" <<'EOF'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    c, *v = line.split()
    rows.setdefault(c, []).append([float(x) for x in v])
print("\nmedian over rounds (min-max), µs")
print("%-11s %18s %22s %22s" % ("case", "p50", "p99", "p999"))
for c, v in rows.items():
    cols = list(zip(*v))
    print("%-11s %18s %22s %22s" % (c, *("%.0f (%.0f-%.0f)" % (statistics.median(x), min(x), max(x)) for x in cols[:3])))
base = statistics.median(list(zip(*rows["idle"]))[1]) if "idle" in rows else None
if base:
    print("p99 / idle case: " + ", ".join("%s %.2fx" % (c, statistics.median(list(zip(*v))[1]) / base) for c, v in rows.items()))
EOF
