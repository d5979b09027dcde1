#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Does the machine itself stall when its CPUs are saturated? On a virtual
# machine whose host caps it (a CFS quota on the vCPU threads, CPU credits),
# a guest that keeps every vCPU busy is descheduled by the host: every task
# in it, LS included, stops for up to the host's period, and no guest knob
# can prevent it but leaving CPU idle. bench/qos.sh's "no agent" tails are
# this on the project's machine, which is why the figures below matter for
# choosing anole qos's suppression threshold.
#
#   bench/host_stall.sh        (root; needs cyclictest and stress-ng)
#
# For each load, a SCHED_FIFO priority-99 cyclictest (1 kHz, one thread per
# CPU) runs DURATION seconds (default 10) next to `stress-ng --cpu NCPU
# --cpu-load L`. A FIFO 99 thread is delayed by the guest only for
# interrupts-off sections (microseconds), so a wake-up later than STALL_MS
# (default 10) is the host not running the vCPU. Printed per load: the
# worst wake-up latency, the wake-ups later than STALL_MS, and node CPU
# utilisation, repeated ROUNDS times (default 3) interleaved.
set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
STALL_MS=${STALL_MS:-10}
LOADS=${LOADS:-"0 90 98 100"}
for c in cyclictest stress-ng; do
	command -v $c >/dev/null || { echo "bench/host_stall.sh: needs $c" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench/host_stall.sh: needs root (SCHED_FIFO)" >&2; exit 1; }
ncpu=$(nproc)
work=$(mktemp -d)
BE=
cleanup() { [ -n "$BE" ] && kill "$BE" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

node_busy() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat; }

echo "bench/host_stall.sh: $ncpu CPUs, ${DURATION}s per run, $ROUNDS rounds; stall = FIFO 99 wake-up later than ${STALL_MS} ms"
printf '%-5s %-9s %12s %10s %6s\n' round load "max (µs)" stalls util
for r in $(seq "$ROUNDS"); do
	for load in $LOADS; do
		BE=
		if [ "$load" != 0 ]; then
			stress-ng --cpu "$ncpu" --cpu-load "$load" -t $((DURATION + 2)) >/dev/null 2>&1 &
			BE=$!
			sleep 1
		fi
		read -r b0 t0 < <(node_busy)
		cyclictest -q -p 99 -m -S -i 1000 -D "${DURATION}s" -h $((STALL_MS * 1000)) \
			>"$work/ct" 2>&1 || true
		read -r b1 t1 < <(node_busy)
		if [ -n "$BE" ]; then wait "$BE" 2>/dev/null || true; fi
		BE=
		# the histogram's overflow count is the wake-ups past STALL_MS
		awk -v r="$r" -v l="$load" -v u="$(awk -v a="$b0" -v b="$b1" -v c="$t0" -v d="$t1" \
				'BEGIN { printf "%.0f%%", 100 * (b - a) / (d - c) }')" '
			/^# Max Latencies:/ { for (i = 4; i <= NF; i++) if ($i + 0 > m) m = $i + 0 }
			/^# Histogram Overflows:/ { for (i = 4; i <= NF; i++) o += $i }
			END { printf "%-5s %-9s %12d %10d %6s\n", r, (l == 0 ? "idle" : l "%"), m, o, u }' "$work/ct"
	done
done
