#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole tune search against real servers, default vs best found:
#
#   bench/tune.sh [ANOLE] [nginx] [redis] [synthetic]   (default: all; root)
#
#   nginx      nginx (nginx-light) under wrk on loopback: requests/s (and
#              p99 at a lower weight) over sysctls and nginx.conf knobs,
#              the latter through `command` knobs that rewrite a test
#              nginx.conf and reload nginx
#   redis      redis-server under redis-benchmark (SET+GET requests/s) over
#              sysctls and redis settings (CONFIG SET through command knobs)
#   synthetic  the objective of tests/t_tune_search.sh over SEEDS seeds
#              (default 10): how many seeds reach within 5% of the optimum
#              in 40 trials, BO vs random
#
# Each server search runs TRIALS trials (default 60) with Bayesian
# optimisation and again with random search, same budget; printed: the
# baseline, the best, the gain with its 95% interval (Welch) and whether it
# is significant, and the trials each needed to reach 95% of the best gain
# either found. Everything runs in a private network namespace, so the
# sysctls tuned are the namespace's own (the machine's are never changed).
# DUR (default 2) is each benchmark run's length in seconds.
set -euo pipefail

ANOLE=$(realpath "${1:-build/anole}")
shift || true
cd "$(dirname "$0")/.."
TOP=$PWD
WHAT=${*:-nginx redis synthetic}
TRIALS=${TRIALS:-60}
DUR=${DUR:-2}
SEEDS=${SEEDS:-10}
W=$(mktemp -d "${TMPDIR:-/tmp}/anole-bench-tune.XXXXXX")
NS=tunebench$$
export ANOLE_TUNE_STATE=$W/state ANOLE_TUNE_PROFILE_PATH=$W/profiles
mkdir -p "$ANOLE_TUNE_PROFILE_PATH"

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || { echo "bench/tune.sh: needs root (network namespace)" >&2; exit 1; }
ip netns add "$NS"
ip -n "$NS" link set lo up
ns() { ip netns exec "$NS" "$@"; }

# the sysctls tuned: all per network namespace
sysctl_params() {
	cat <<EOF
sysctl net.core.somaxconn int 128..65535 step 128
sysctl net.ipv4.tcp_max_syn_backlog int 128..65535 step 128
sysctl net.ipv4.tcp_fin_timeout int 5..60
sysctl net.ipv4.tcp_tw_reuse enum 0,1,2
sysctl net.ipv4.tcp_autocorking enum 0,1
sysctl net.ipv4.tcp_slow_start_after_idle enum 0,1
sysctl net.ipv4.tcp_notsent_lowat int 16384..4294967295 step 16384
EOF
}

# report NAME: the two searches' results side by side
report() {
	local name=$1
	python3 - "$W/$name-bo.json" "$W/$name-random.json" "$W/$name-bo.hist" \
		"$W/$name-random.hist" "$name" <<'PY'
import json, sys
bo, rnd, hbo, hrnd, name = sys.argv[1:6]
def curve(path):
    best, out = float("inf"), []
    for l in open(path):
        d = json.loads(l)
        if d["type"] == "trial":
            if d["ok"] and d["loss"] is not None:
                best = min(best, d["loss"])
            out.append(best)
    return out
cb, cr = curve(hbo), curve(hrnd)
top = min(min(cb), min(cr))
def reach(c):
    if top >= 0:
        return None
    for i, v in enumerate(c):
        if v <= 0.95 * top:
            return i + 1
    return None
for label, path, c in (("bo", bo, cb), ("random", rnd, cr)):
    r = json.load(open(path))
    print("%s %s: best trial %s, values %s" % (name, label, r["best_trial"], r["values"]))
    for m, v in r["metrics"].items():
        b = abs(v["baseline"]) or 1
        print("  %s: baseline %.6g, best %.6g: %+.2f%% (95%% interval %+.2f%% .. %+.2f%%, p=%.3g)"
              % (m, v["baseline"], v["best"], 100 * v["diff"] / b, 100 * v["ci95"][0] / b,
                 100 * v["ci95"][1] / b, v["p"]))
    lt = r["loss_test"]
    print("  loss: %.4g lower (95%% interval %.4g .. %.4g, Welch p=%.3g): %s"
          % (lt["diff"], lt["ci95"][0], lt["ci95"][1], lt["p"],
             "significant" if r["significant"] else "NOT significant: within noise"))
    print("  trials to reach 95%% of the best gain either search found: %s of %d"
          % (reach(c) or "never", len(c)))
PY
}

search() { # NAME PARAMS BENCH METRIC-ARGS...
	local name=$1 params=$2 bench=$3
	shift 3
	for algo in bo random; do
		echo "== $name: $algo, $TRIALS trials"
		ns "$ANOLE" tune search -q -p "$params" -b "$bench" "$@" -n "$TRIALS" --algo "$algo" \
			--seed 1 --bench-timeout $((DUR * 10 + 20)) --history "$W/$name-$algo.hist" \
			--json ${SAVE:+--save "$name-best"} >"$W/$name-$algo.json"
	done
	report "$name"
}

# ------------------------------------------------------------------ nginx
bench_nginx() {
	command -v nginx >/dev/null && command -v wrk >/dev/null || {
		echo "nginx: skipped (needs nginx-light and wrk)"; return; }
	local N=$W/nginx port
	mkdir -p "$N/html" "$N/knob" "$N/tmp"
	head -c 4096 /dev/urandom | base64 >"$N/html/index.html"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	# defaults: Debian's nginx.conf values
	echo auto >"$N/knob/worker_processes"
	echo 768 >"$N/knob/worker_connections"
	echo 65 >"$N/knob/keepalive_timeout"
	echo 1000 >"$N/knob/keepalive_requests"
	echo on >"$N/knob/sendfile"
	echo off >"$N/knob/tcp_nopush"
	echo on >"$N/knob/tcp_nodelay"
	echo on >"$N/knob/access_log"
	cat >"$N/render.sh" <<EOF
#!/bin/sh
# write nginx.conf from the knob files
k() { cat "$N/knob/\$1"; }
log=\$( [ "\$(k access_log)" = on ] && echo "$N/access.log" || echo off)
cat >"$N/nginx.conf" <<CONF
worker_processes \$(k worker_processes);
pid $N/nginx.pid;
error_log $N/error.log;
events { worker_connections \$(k worker_connections); }
http {
  access_log \$log;
  sendfile \$(k sendfile); tcp_nopush \$(k tcp_nopush); tcp_nodelay \$(k tcp_nodelay);
  keepalive_timeout \$(k keepalive_timeout); keepalive_requests \$(k keepalive_requests);
  client_body_temp_path $N/tmp; proxy_temp_path $N/tmp; fastcgi_temp_path $N/tmp;
  uwsgi_temp_path $N/tmp; scgi_temp_path $N/tmp;
  server { listen 127.0.0.1:$port backlog=65535; root $N/html; }
}
CONF
EOF
	# the command knob: KNOB get | KNOB set VALUE (rewrite, reload, wait for
	# the new workers: the old ones finish their connections first)
	cat >"$N/knob.sh" <<EOF
#!/bin/sh
name=\$1; op=\$2
case \$op in
get) cat "$N/knob/\$name" ;;
set) [ "\$(cat "$N/knob/\$name")" = "\$3" ] && exit 0
     echo "\$3" >"$N/knob/\$name"; sh "$N/render.sh"
     nginx -q -t -c "$N/nginx.conf" -p "$N" 2>/dev/null || exit 1
     kill -HUP "\$(cat "$N/nginx.pid")"; sleep 0.3 ;;
esac
EOF
	sh "$N/render.sh"
	ns nginx -c "$N/nginx.conf" -p "$N"
	sleep 0.5
	pids+=("$(cat "$N/nginx.pid")")
	{ sysctl_params; cat <<EOF
command worker_processes enum auto,1,2,4 run sh $N/knob.sh worker_processes
command worker_connections int 256..16384 step 256 run sh $N/knob.sh worker_connections
command keepalive_timeout int 0..120 run sh $N/knob.sh keepalive_timeout
command keepalive_requests int 10..100000 step 10 run sh $N/knob.sh keepalive_requests
command sendfile enum on,off run sh $N/knob.sh sendfile
command tcp_nopush enum on,off run sh $N/knob.sh tcp_nopush
command tcp_nodelay enum on,off run sh $N/knob.sh tcp_nodelay
command access_log enum on,off run sh $N/knob.sh access_log
EOF
	} >"$N/params"
	# rps and p99 (ms) from wrk --latency
	cat >"$N/bench.sh" <<EOF
#!/bin/sh
wrk -t2 -c64 -d${DUR}s --latency http://127.0.0.1:$port/ | awk '
/Requests\\/sec/ { print "rps: " \$2 }
/^ *99%/ { v = \$2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+\$/, "", v)
           f = u == "us" ? 0.001 : u == "s" ? 1000 : 1; print "p99_ms: " v * f }'
EOF
	search nginx "$N/params" "sh $N/bench.sh" -m rps=max,1 -m p99_ms=min,0.2
	kill "$(cat "$N/nginx.pid")" 2>/dev/null || true
}

# ------------------------------------------------------------------ redis
bench_redis() {
	command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
		echo "redis: skipped (needs redis-server and redis-tools)"; return; }
	local R=$W/redis port
	mkdir -p "$R"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	ns redis-server --port "$port" --bind 127.0.0.1 --dir "$R" --save '' --appendonly no \
		--daemonize yes --pidfile "$R/redis.pid" --logfile "$R/log"
	for _ in $(seq 50); do [ -s "$R/redis.pid" ] && break; sleep 0.1; done
	pids+=("$(cat "$R/redis.pid")")
	cat >"$R/knob.sh" <<EOF
#!/bin/sh
name=\$1; op=\$2
case \$op in
get) redis-cli -p $port config get "\$name" | sed -n 2p ;;
set) redis-cli -p $port config set "\$name" "\$3" | grep -q OK ;;
esac
EOF
	{ sysctl_params; cat <<EOF
command hz int 1..500 run sh $R/knob.sh hz
command activerehashing enum yes,no run sh $R/knob.sh activerehashing
command appendonly enum no,yes run sh $R/knob.sh appendonly
command appendfsync enum everysec,no,always run sh $R/knob.sh appendfsync
command lazyfree-lazy-user-del enum no,yes run sh $R/knob.sh lazyfree-lazy-user-del
command list-max-listpack-size int -5..512 run sh $R/knob.sh list-max-listpack-size
EOF
	} >"$R/params"
	cat >"$R/bench.sh" <<EOF
#!/bin/sh
redis-benchmark -p $port -q -t set,get -n \$((25000 * $DUR)) -c 50 --csv | awk -F'"' '
NR > 1 { rps += \$4; if (\$14 > p99) p99 = \$14; n++ }
END { if (n) { print "rps: " rps / n; print "p99_ms: " p99 } }'
EOF
	search redis "$R/params" "sh $R/bench.sh" -m rps=max,1 -m p99_ms=min,0.2
	redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
}

# -------------------------------------------------------------- synthetic
bench_synthetic() {
	local ok_bo=0 ok_rnd=0 r95_bo=() r95_rnd=()
	for s in $(seq 1 "$SEEDS"); do
		for algo in bo random; do
			local d=$W/syn-$algo-$s
			mkdir -p "$d"
			echo 50 >"$d/x"; echo 50 >"$d/y"; echo 0 >"$d/z"
			printf 'file %s/x int 0..100\nfile %s/y int 0..100\nfile %s/z int -50..50\n' \
				"$d" "$d" "$d" >"$d/params"
			ANOLE_TUNE_STATE=$d/state "$ANOLE" tune search -q -p "$d/params" \
				-b "D=$d; . $TOP/tests/tune_objective.sh" -m score -n 40 --algo "$algo" \
				--seed "$s" --json >"$d/out"
			read -r f r95 < <(python3 - "$d" <<'PY'
import json, sys
d = sys.argv[1]
r = json.load(open(d + "/out"))
x, y, z = (int(r["values"]["file %s/%s" % (d, k)]) for k in "xyz")
q = (x-73)**2*1000//625 + (y-21)**2*1000//400 + (z-8)**2*1000//900
print(100000000 // (1000 + q) / 1000, r["reached95_trial"])
PY
)
			echo "synthetic $algo seed $s: true score of the best $f (optimum 100)"
			if python3 -c "import sys; sys.exit(0 if $f >= 95 else 1)"; then
				[ "$algo" = bo ] && ok_bo=$((ok_bo + 1)) || ok_rnd=$((ok_rnd + 1))
			fi
		done
	done
	echo "synthetic: within 5% of the optimum in 40 trials: bo $ok_bo/$SEEDS seeds, random $ok_rnd/$SEEDS"
}

for w in $WHAT; do "bench_$w"; done
