#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Colocation: what BE work costs LS latency, without and with `anole qos run`.
#
#   bench/qos.sh [ANOLE]     (default build/anole; run as root, cgroup v1 or v2)
#
# Three cases, interleaved in each of ROUNDS rounds (default 5) so that the
# host's drift hits all three alike:
#   alone    LS only
#   noagent  LS + BE, BE in its class's cgroup with no knobs set
#   agent    LS + BE with `anole qos run` (default configuration)
# LS (each run DURATION seconds, default 5), always in the LS class:
#   probe    anole qos probe at 1 kHz (wake-up lateness)
#   cyclic   cyclictest -i 1000 --policy=other (wake-up latency, CFS like LS)
#   nginx    nginx (1 worker) under wrk -t1 -c8 with 1 ms think time per
#            connection (a Lua delay()). wrk is closed-loop: a slow answer
#            delays the next request, so queueing delay is under-reported;
#            the think time keeps the server mostly idle, so its latency is
#            the wake-up path that BE interferes with.
# BE (stress-ng, in the BE class, for the whole LS run):
#   cpu      --cpu 2 --cache 1     (CPU and cache)
#   vm       --vm 2 --vm-bytes 64M  (memory bandwidth)
# Reported per LS x BE x case: median over rounds of p50/p90/p99/p99.9 (µs),
# the spread of p99 (min..max), node CPU utilisation during the run and BE's
# bogo ops/s; then the ratios the issue targets: p99 agent/alone and
# agent/noagent, and BE throughput agent/noagent. Raw runs: $WORK/runs.jsonl.
set -euo pipefail

ANOLE=$(realpath "${1:-build/anole}")
cd "$(dirname "$0")/.."
WORK=$(realpath -m "${BENCH_WORK:-bench/work}/qos")
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
LS_SET=${LS_SET:-"probe cyclic nginx"}
BE_SET=${BE_SET:-"cpu vm"}
rm -rf "$WORK"
mkdir -p "$WORK"
# a copy: rebuilding the tree during a run must not change or break it
cp "$ANOLE" "$WORK/anole"
ANOLE=$WORK/anole
for c in stress-ng cyclictest nginx wrk python3; do
	command -v $c >/dev/null || { echo "bench/qos.sh: needs $c" >&2; exit 1; }
done

NAME=qos-bench-$$
CONF=$WORK/qos.toml
printf 'name = "%s"\nstate_dir = "%s/state"\n' "$NAME" "$WORK" >"$CONF"
AGENT=
NGINX=
cleanup() {
	set +e
	[ -n "$AGENT" ] && kill "$AGENT" 2>/dev/null && sleep 1
	[ -n "$NGINX" ] && kill "$NGINX" 2>/dev/null
	"$ANOLE" qos restore -c "$CONF" >/dev/null 2>&1
	for h in /sys/fs/cgroup/*/"$NAME" /sys/fs/cgroup/"$NAME"; do
		[ -d "$h" ] || continue
		find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null
		sleep 0.3
		find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
}
trap cleanup EXIT
for c in ls mid be; do "$ANOLE" qos exec -c "$CONF" --class $c -- true; done
# cyclictest sets its scheduling policy even for SCHED_OTHER, which a v1 cpu
# group without real-time runtime refuses: give LS (and its parent) some
if [ -f "/sys/fs/cgroup/cpu/$NAME/cpu.rt_runtime_us" ]; then
	echo 100000 >"/sys/fs/cgroup/cpu/$NAME/cpu.rt_runtime_us"
	echo 100000 >"/sys/fs/cgroup/cpu/$NAME/ls/cpu.rt_runtime_us"
fi

# nginx, once, in LS
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$WORK/nginx/logs"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path $WORK/nginx;
	proxy_temp_path $WORK/nginx;
	fastcgi_temp_path $WORK/nginx;
	uwsgi_temp_path $WORK/nginx;
	scgi_temp_path $WORK/nginx;
	server { listen 127.0.0.1:$PORT; location / { return 200 "ok\n"; } }
}
EOF
cat >"$WORK/wrk.lua" <<'EOF'
function delay() return 1 end
done = function(summary, latency, requests)
	io.write(string.format("QOS %d %.1f %.1f %.1f %.1f\n", summary.requests,
		latency:percentile(50), latency:percentile(90), latency:percentile(99),
		latency:percentile(99.9)))
end
EOF
"$ANOLE" qos exec -c "$CONF" --class ls -- nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
NGINX=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break; sleep 0.2; done

node_busy() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat; }

# run_ls LS OUTFILE: one LS run in the LS class; prints "p50 p90 p99 p999" (µs)
run_ls() {
	local ls=$1 out=$2
	case $ls in
	probe)
		"$ANOLE" qos exec -c "$CONF" --class ls -- "$ANOLE" qos probe --rate 1000 \
			--duration "$DURATION" --json >"$out"
		python3 -c "import json,sys; l=json.load(open(sys.argv[1]))['lateness_us']; print(l['p50'], l['p90'], l['p99'], l['p999'])" "$out" ;;
	cyclic)
		"$ANOLE" qos exec -c "$CONF" --class ls -- cyclictest -q -m -t1 -i 1000 \
			--policy=other -D "${DURATION}s" -h 20000 >"$out" 2>&1 || true
		python3 - "$out" <<'PY'
import sys
counts = {}
over = 0
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) == 2 and p[0].isdigit():
        counts[int(p[0])] = int(p[1])
    elif line.startswith("# Histogram Overflows:"):
        over = int(p[3])
n = sum(counts.values()) + over
def pct(q):
    k, acc = q / 100 * n, 0
    for b in sorted(counts):
        acc += counts[b]
        if acc >= k:
            return b
    return 20000
print(pct(50), pct(90), pct(99), pct(99.9))
PY
		;;
	nginx)
		"$ANOLE" qos exec -c "$CONF" --class ls -- wrk -t1 -c8 -d"${DURATION}s" \
			-s "$WORK/wrk.lua" "http://127.0.0.1:$PORT/" >"$out" 2>&1
		awk '/^QOS/ { print $3, $4, $5, $6 }' "$out" ;;
	esac
}

# be_cmd BE: the stress-ng arguments
be_cmd() {
	case $1 in
	cpu) echo "--cpu 2 --cache 1" ;;
	vm) echo "--vm 2 --vm-bytes 64M" ;;
	esac
}

# one LS BE CASE ROUND: append a JSON line to runs.jsonl
one() {
	local ls=$1 be=$2 case=$3 round=$4 tag=$1.$2.$3.$4 beps="null" b0 b1 lat
	if [ "$case" = agent ]; then
		AGENT=$("$ANOLE" qos run -c "$CONF" -d --log-file "$WORK/agent.log")
		sleep 1
	fi
	local bepid=
	if [ "$case" != alone ]; then
		# shellcheck disable=SC2046
		"$ANOLE" qos exec -c "$CONF" --class be -- stress-ng $(be_cmd "$be") \
			-t $((DURATION + 2)) --metrics-brief >"$WORK/be.$tag" 2>&1 &
		bepid=$!
		sleep 1
	fi
	read -r b0 t0 < <(node_busy)
	lat=$(run_ls "$ls" "$WORK/ls.$tag") || lat=
	read -r b1 t1 < <(node_busy)
	if [ -n "$bepid" ]; then
		wait "$bepid" || true
		# bogo ops/s (real time) summed over the stressors
		beps=$(awk '/metrc|info/ && $5 ~ /^[0-9]+$/ && $6 ~ /^[0-9.]+$/ && $4 != "stressor" { s += $9 } END { print s + 0 }' "$WORK/be.$tag")
	fi
	if [ "$case" = agent ]; then
		kill "$AGENT"
		while kill -0 "$AGENT" 2>/dev/null; do sleep 0.1; done
		AGENT=
	fi
	set -- $lat
	[ $# -eq 4 ] || { echo "bench/qos.sh: $tag: no latency figures" >&2; return 0; }
	printf '{"ls":"%s","be":"%s","case":"%s","round":%s,"p50":%s,"p90":%s,"p99":%s,"p999":%s,"util":%s,"be_ops":%s}\n' \
		"$ls" "$be" "$case" "$round" "$1" "$2" "$3" "$4" \
		"$(awk -v a="$b0" -v b="$b1" -v c="$t0" -v d="$t1" 'BEGIN { printf "%.3f", (b - a) / (d - c) }')" \
		"$beps" >>"$WORK/runs.jsonl"
	printf '  %-6s %-4s %-8s p99 %8s µs\n' "$ls" "$be" "$case" "$3" >&2
}

echo "bench/qos.sh: $ROUNDS rounds x {$LS_SET} x {$BE_SET}, ${DURATION}s each; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for r in $(seq "$ROUNDS"); do
	echo "round $r (load $(cut -d' ' -f1 /proc/loadavg))" >&2
	for ls in $LS_SET; do
		one "$ls" - alone "$r"
		for be in $BE_SET; do
			# alternate the order of the two BE cases between rounds
			if [ $((r % 2)) -eq 1 ]; then
				one "$ls" "$be" noagent "$r"; one "$ls" "$be" agent "$r"
			else
				one "$ls" "$be" agent "$r"; one "$ls" "$be" noagent "$r"
			fi
		done
	done
done

python3 - "$WORK/runs.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
med = statistics.median
def sel(ls, be, case):
    return [r for r in runs if r["ls"] == ls and r["case"] == case and (be is None or r["be"] == be)]
print("%-6s %-4s %-8s %9s %9s %9s %9s %17s %6s %12s" % ("LS", "BE", "case", "p50", "p90", "p99",
      "p99.9", "p99 min..max", "util", "BE ops/s"))
for ls in dict.fromkeys(r["ls"] for r in runs):
    alone = sel(ls, None, "alone")
    a99 = med([r["p99"] for r in alone]) if alone else None
    def row(be, case, rs):
        if not rs:
            return
        ops = [r["be_ops"] for r in rs if r["be_ops"] is not None]
        print("%-6s %-4s %-8s %9.1f %9.1f %9.1f %9.1f %8.1f..%-8.1f %5.0f%% %12s" % (
            ls, be, case, med([r["p50"] for r in rs]), med([r["p90"] for r in rs]),
            med([r["p99"] for r in rs]), med([r["p999"] for r in rs]),
            min(r["p99"] for r in rs), max(r["p99"] for r in rs),
            100 * med([r["util"] for r in rs]),
            "%.0f" % med(ops) if ops else "-"))
    row("-", "alone", alone)
    for be in dict.fromkeys(r["be"] for r in runs if r["be"] != "-"):
        na, ag = sel(ls, be, "noagent"), sel(ls, be, "agent")
        row(be, "noagent", na)
        row(be, "agent", ag)
        if na and ag and a99:
            n99, g99 = med([r["p99"] for r in na]), med([r["p99"] for r in ag])
            nops = med([r["be_ops"] or 0 for r in na]); gops = med([r["be_ops"] or 0 for r in ag])
            print("%-6s %-4s ratios: p99 agent/alone %.2f (target <= 1.25), agent/noagent %.2f; "
                  "BE ops agent/noagent %.2f" % (ls, be, g99 / a99 if a99 else float("nan"),
                  g99 / n99 if n99 else float("nan"), gops / nops if nops else float("nan")))
PY
