#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole monitor under a real Prometheus: the agent serves /metrics on a
# loopback port (valid for `promtool check metrics`, 404 elsewhere, many
# scrapes at once), Prometheus scrapes it every second, and while CPU
# contention (spinners, one of them in a test cgroup) and direct block I/O
# on a loop device run, Prometheus's query API must show: up == 1, per-CPU
# time rising, memory in bytes matching /proc/meminfo, run-queue latency
# observations above 1 ms that were not there before, block I/O latency
# observations of that loop device, the test cgroup's CPU time, and PSI
# stall time when /proc/pressure exists. SIGTERM stops the agent with every
# BPF object released, and it restarts on the same port at once.
# --max-cgroups bounds the cgroups exported; --cgroup-root picks a subtree;
# -d daemonizes with a pid file.
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
need_diag
need_cmd prometheus promtool curl losetup mkfs.ext4 dd

# scrape_when_up PID FILE: /metrics into FILE once the agent answers (503
# until its first sample), however long its start takes, unless it dies
scrape_when_up() {
	while kill -0 "$1" 2>/dev/null; do
		curl -sf "http://127.0.0.1:$MPORT/metrics" -o "$2" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "the agent (pid $1) exited before answering on port $MPORT"
}
MPORT=$(free_port)
PPORT=$(free_port)
[ "$MPORT" != "$PPORT" ] || PPORT=$(free_port)

# monitor_start NAME: the agent in the foreground (background job), -v;
# returns once it serves; sets MON_PID and records its BPF object ids.
monitor_start() {
	local name=$1
	"$ANOLE" monitor --listen "127.0.0.1:$MPORT" --interval 1 -v >"$WORK/$name.out" 2>"$WORK/$name.err" &
	MON_PID=$!
	add_pid "$MON_PID"
	for _ in $(seq 300); do
		if grep -q 'monitor: serving' "$WORK/$name.err"; then
			diag_bpf_ids "$MON_PID" >"$WORK/$name.ids"
			grep -q '^prog ' "$WORK/$name.ids" || fail "$name: the agent holds no BPF program"
			return 0
		fi
		kill -0 "$MON_PID" 2>/dev/null || { cat "$WORK/$name.err" >&2; fail "$name: anole monitor exited"; }
		sleep 0.1
	done
	fail "$name: anole monitor not serving after 30 s"
}

# monitor_stop NAME: SIGTERM; exit status 0 and every BPF object released.
monitor_stop() {
	local name=$1 rc=0
	kill -TERM "$MON_PID"
	wait "$MON_PID" || rc=$?
	check_not_crashed "$rc" "anole monitor ($name)"
	[ "$rc" -eq 0 ] || { tail -n 20 "$WORK/$name.err" >&2; fail "$name: anole monitor exited $rc"; }
	assert_grep 'monitor: Terminated, stopping' "$WORK/$name.err" "$name: log"
	diag_assert_released "$name"
}

# promq EXPR: the sum of the instant vector EXPR (0 if it is empty), from
# Prometheus's HTTP API.
promq() {
	"$PY" - "$PPORT" "$1" <<'EOF'
import json, sys, urllib.parse, urllib.request
q = urllib.parse.urlencode({"query": sys.argv[2]})
r = json.load(urllib.request.urlopen("http://127.0.0.1:%s/api/v1/query?%s" % (sys.argv[1], q), timeout=5))
if r.get("status") != "success":
    sys.exit("query %r: %r" % (sys.argv[2], r))
print(sum(float(x["value"][1]) for x in r["data"]["result"]))
EOF
}

# ---------------------------------------------------------------- the agent alone
monitor_start agent
curl -sf "http://127.0.0.1:$MPORT/metrics" >"$WORK/metrics.txt" || fail "GET /metrics failed"
promtool check metrics <"$WORK/metrics.txt" >"$WORK/promtool.out" 2>&1 ||
	{ cat "$WORK/promtool.out" >&2; fail "promtool check metrics rejects the exposition"; }
for m in anole_cpu_seconds_total anole_memory_bytes anole_disk_read_bytes_total \
	anole_network_receive_bytes_total anole_load1 anole_runqueue_latency_seconds; do
	assert_grep "^# TYPE $m " "$WORK/metrics.txt" "exposition"
done
assert_grep '^anole_runqueue_latency_seconds_bucket{le="+Inf"} ' "$WORK/metrics.txt" "+Inf bucket"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/nothing")
assert_eq "$code" 404 "GET /nothing"
# concurrent scrapes: all answered in full
curls=()
for i in $(seq 16); do
	curl -sf "http://127.0.0.1:$MPORT/metrics" -o "$WORK/par.$i" &
	curls+=("$!")
done
wait "${curls[@]}" || fail "a concurrent scrape failed"
wait_ok=0
for i in $(seq 16); do
	tail -n1 "$WORK/par.$i" | grep -q '^anole_monitor_http_requests_total{code="4xx"} ' &&
		wait_ok=$((wait_ok + 1))
done
assert_eq "$wait_ok" 16 "complete answers to 16 concurrent scrapes"

# ---------------------------------------------------------------- Prometheus
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: anole
    static_configs:
      - targets: ['127.0.0.1:$MPORT']
EOF
promtool check config "$WORK/prometheus.yml" >/dev/null || fail "promtool rejects the config"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
	--web.listen-address="127.0.0.1:$PPORT" --log.level=warn >"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
add_pid "$PROM_PID"
up=0
for _ in $(seq 150); do
	up=$(promq 'up{job="anole"}' 2>/dev/null) || up=0
	fcmp "$up" == 1 && break
	kill -0 "$PROM_PID" 2>/dev/null || { cat "$WORK/prometheus.log" >&2; fail "prometheus exited"; }
	sleep 0.2
done
fcmp "$up" == 1 || { cat "$WORK/prometheus.log" >&2; fail "up{job=\"anole\"} is $up, not 1"; }
log "prometheus scrapes the agent (up == 1)"

# ---------------------------------------------------------------- load
truncate -s 64M "$WORK/disk.img"
mkfs.ext4 -q -F "$WORK/disk.img"
loop=$(losetup -f --show "$WORK/disk.img") || fail "losetup failed"
add_loop "$loop"
mkdir -p "$WORK/mnt"
mount "$loop" "$WORK/mnt" || fail "cannot mount $loop"
add_mount "$WORK/mnt"
disk=$(basename "$loop")
cg=$(diag_mkcgroup monitor)
cgname=/$(basename "$cg")

ncpu=$(nproc)
# prom_sample_after: wait until Prometheus holds a sample the agent took
# after this call (its sample counter, read from the agent now, moved on):
# on a loaded machine sampling and scraping run late, so no fixed sleep.
prom_sample_after() {
	local now
	now=$(curl -sf "http://127.0.0.1:$MPORT/metrics" | awk '$1 == "anole_monitor_samples_total" { print $2 }')
	[ -n "$now" ] || fail "no anole_monitor_samples_total from the agent"
	for _ in $(seq 600); do
		fcmp "$(promq anole_monitor_samples_total)" '>' "$now" && return 0
		sleep 0.2
	done
	fail "Prometheus has no agent sample after number $now in 120 s"
}
prom_sample_after
slow_before=$(promq 'anole_runqueue_latency_seconds_count - on() anole_runqueue_latency_seconds_bucket{le="0.001024"}')
cpu_before=$(promq 'sum(anole_cpu_seconds_total{mode=~"user|system|nice"})')
psi_before=$(promq 'anole_pressure_stalled_seconds_total{resource="cpu",kind="some"}')
io_before=$(promq "anole_block_io_latency_seconds_count{device=\"$disk\"}")
log "before: runq >1ms $slow_before, cpu busy ${cpu_before}s, cpu psi ${psi_before}s, $disk I/Os $io_before"

# ncpu + 2 spinners (one in the test cgroup) and 300 direct writes; the
# spinners run until the one in the cgroup has had 1 s of CPU, and the
# expectations follow from the CPU time each had (the scheduler's account
# in /proc/PID/schedstat), not from how long they ran: a loaded machine
# shares the CPUs with others.
spinners=()
for i in $(seq $((ncpu + 2))); do
	bash -c 'while :; do :; done' &
	spinners+=("$!")
	add_pid "$!"
done
echo "${spinners[0]}" >"$cg/cgroup.procs" || fail "cannot move a spinner into $cg"
dd if=/dev/zero of="$WORK/mnt/f" bs=64k count=300 oflag=direct status=none || fail "dd failed"
diag_wait_cpu "${spinners[0]}" 1
kill -STOP "${spinners[@]}"
spun=0
for p in "${spinners[@]}"; do spun=$((spun + $(diag_cpu_ns "$p"))); done
kill -KILL "${spinners[@]}"
wait "${spinners[@]}" 2>/dev/null || true
log "spinners: $("$PY" -c "print($spun / 1e9)") s of CPU in all"
prom_sample_after

slow_after=$(promq 'anole_runqueue_latency_seconds_count - on() anole_runqueue_latency_seconds_bucket{le="0.001024"}')
cpu_after=$(promq 'sum(anole_cpu_seconds_total{mode=~"user|system|nice"})')
psi_after=$(promq 'anole_pressure_stalled_seconds_total{resource="cpu",kind="some"}')
io_after=$(promq "anole_block_io_latency_seconds_count{device=\"$disk\"}")
io_sum=$(promq "anole_block_io_latency_seconds_sum{device=\"$disk\"}")
cg_cpu=$(promq "anole_cgroup_cpu_usage_seconds_total{cgroup=\"$cgname\",hierarchy=\"v2\"}")
cg_psi=$(promq "count(anole_cgroup_pressure_stalled_seconds_total{cgroup=\"$cgname\"})")
ncpu_series=$(promq 'count(anole_cpu_seconds_total)')
memtotal=$(promq 'anole_memory_bytes{field="MemTotal"}')
log "after: runq >1ms $slow_after, cpu busy ${cpu_after}s, cpu psi ${psi_after}s, $disk I/Os $io_after (sum ${io_sum}s)"
log "cgroup $cgname: ${cg_cpu}s CPU, $cg_psi PSI series; $ncpu_series CPU series; MemTotal $memtotal"

fcmp "$ncpu_series" == $((ncpu * 8)) || fail "anole_cpu_seconds_total: $ncpu_series series, expected $ncpu CPUs x 8 modes"
# /proc/stat counts in ticks: 0.9 leaves room for its rounding
fcmp "$cpu_after - $cpu_before" '>=' "0.9 * $spun / 1e9" ||
	fail "busy CPU time rose by $cpu_after - $cpu_before s, the spinners alone ran $spun ns"
want=$(awk '/^MemTotal:/ { printf "%.0f", $2 * 1024 }' /proc/meminfo)
fcmp "$memtotal" == "$want" || fail "anole_memory_bytes{field=\"MemTotal\"} is $memtotal, /proc/meminfo says $want"
fcmp "$slow_after - $slow_before" '>=' 5 ||
	fail "run-queue waits above 1 ms rose by $slow_after - $slow_before under CPU contention"
fcmp "$io_after - $io_before" '>=' 200 || fail "block I/O latency count of $disk rose by $io_after - $io_before for 300 direct writes"
fcmp "$io_sum" '>' 0 || fail "block I/O latency sum of $disk is $io_sum"
# The spinner's share of the CPUs depends on the machine's load; what the
# agent must get right is the kernel's count. The cgroup is idle since the
# spinner ended, so its cpu.stat no longer moves: the first sample taken
# after that (one interval, 1 s, later; 30 s allowed for a loaded machine)
# exports exactly that value (to the microsecond it is counted in).
kernel_cg_cpu=$(awk '$1 == "usage_usec" { printf "%.6f", $2 / 1e6 }' "$cg/cpu.stat")
log "cgroup $cgname: Prometheus has ${cg_cpu}s, kernel cpu.stat ${kernel_cg_cpu}s"
fcmp "$kernel_cg_cpu" '>' 0 || fail "the spinner in $cg never ran"
agent_cg_cpu=
for _ in $(seq 30); do
	agent_cg_cpu=$(curl -sf "http://127.0.0.1:$MPORT/metrics" |
		awk -v c="cgroup=\"$cgname\"" 'index($0, "anole_cgroup_cpu_usage_seconds_total{") == 1 &&
			index($0, c) && index($0, "hierarchy=\"v2\"") { print $2 }')
	[ -n "$agent_cg_cpu" ] && fcmp "abs($agent_cg_cpu - $kernel_cg_cpu)" '<=' 0.0000015 && break
	sleep 1
done
fcmp "abs(${agent_cg_cpu:-0} - $kernel_cg_cpu)" '<=' 0.0000015 ||
	fail "cgroup $cgname: anole exports ${agent_cg_cpu:-nothing}s CPU, the kernel's cpu.stat says ${kernel_cg_cpu}s"
if [ -r /proc/pressure/cpu ]; then
	fcmp "$psi_after - $psi_before" '>' 0 || fail "CPU pressure (some) did not rise under contention"
	fcmp "$cg_psi" '>=' 2 || fail "no PSI series of cgroup $cgname"
	log "PSI present and rising"
fi

# ---------------------------------------------------------------- stop, restart
kill -TERM "$PROM_PID"
wait "$PROM_PID" 2>/dev/null || true
monitor_stop agent
# the port is free at once for the next agent (SO_REUSEADDR past TIME_WAIT)
monitor_start again
curl -sf "http://127.0.0.1:$MPORT/metrics" -o "$WORK/again.txt" || fail "GET /metrics after a restart failed"
assert_grep '^anole_monitor_samples_total ' "$WORK/again.txt" "after a restart"
monitor_stop again

# -d: returns once serving, pid file written, log kept; SIGTERM removes the pid file
"$ANOLE" monitor --listen "127.0.0.1:$MPORT" --interval 1 --no-bpf -d \
	--pid-file "$WORK/mon.pid" --log-file "$WORK/mon.log" || fail "anole monitor -d failed"
dpid=$(cat "$WORK/mon.pid") || fail "no pid file after anole monitor -d"
add_pid "$dpid"
curl -sf "http://127.0.0.1:$MPORT/metrics" -o "$WORK/daemon.txt" || fail "the daemon does not serve"
assert_grep '^anole_load1 ' "$WORK/daemon.txt" "daemon's /metrics"
kill -TERM "$dpid"
for _ in $(seq 50); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$dpid" 2>/dev/null || fail "the daemon (pid $dpid) did not stop on SIGTERM"
assert_missing "$WORK/mon.pid" "pid file after the daemon stopped"
assert_grep 'monitor: serving' "$WORK/mon.log" "daemon log"
# --token-file: /metrics wants the bearer token (401 otherwise, the agent
# keeps serving); IPv6 with port 0, the port the kernel picked is logged
(umask 077; printf 'tok-%s\n' "$RANDOM$RANDOM" >"$WORK/token")
host='[::1]'
"$PY" -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null || host=127.0.0.1
"$ANOLE" monitor --listen "$host:0" --interval 1 --no-bpf -d --token-file "$WORK/token" \
	--pid-file "$WORK/tok.pid" --log-file "$WORK/tok.log" || fail "anole monitor --token-file failed"
add_pid "$(cat "$WORK/tok.pid")"
tport=$(sed -n 's/.*(port \([0-9]*\),.*/\1/p' "$WORK/tok.log" | head -1)
[ -n "$tport" ] && [ "$tport" -gt 0 ] || fail "no bound port in the log: $(cat "$WORK/tok.log")"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$host:$tport/metrics")
assert_eq "$code" 401 "GET /metrics without the token"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' "http://$host:$tport/metrics")
assert_eq "$code" 401 "GET /metrics with a wrong token"
curl -sf -H "Authorization: Bearer $(cat "$WORK/token")" "http://$host:$tport/metrics" \
	-o "$WORK/tok.txt" || fail "GET /metrics with the token failed"
assert_grep '^anole_load1 ' "$WORK/tok.txt" "/metrics with the token ($host)"
kill -TERM "$(cat "$WORK/tok.pid")"
chmod 644 "$WORK/token"
rc=0
"$ANOLE" monitor --listen 127.0.0.1:0 --no-bpf --token-file "$WORK/token" 2>"$WORK/tok.err" || rc=$?
assert_eq "$rc" 1 "a world-readable --token-file: exit status"
assert_grep 'readable only by its owner' "$WORK/tok.err" "a world-readable --token-file: message"

# -d with a log file that cannot be created: the command fails, nothing starts
rc=0
"$ANOLE" monitor --listen "127.0.0.1:$MPORT" --interval 1 --no-bpf -d --pid-file "$WORK/bad.pid" \
	--log-file "$WORK/no-such-dir/mon.log" 2>"$WORK/badlog.err" || rc=$?
assert_eq "$rc" 1 "anole monitor -d --log-file in a missing directory: exit status"
assert_grep 'cannot open the log file .*no-such-dir/mon.log' "$WORK/badlog.err" "bad --log-file message"
assert_missing "$WORK/bad.pid" "pid file of a daemon that did not start"

# bounded cgroup export: with two test cgroups below the v2 root and
# --max-cgroups 2, the root and one of them are exported and the cut is
# flagged; --cgroup-root exports that subtree alone, labelled from its top
cg2=$(diag_mkcgroup monitor2)
"$ANOLE" monitor --listen "127.0.0.1:$MPORT" --interval 1 --no-bpf --max-cgroups 2 \
	>/dev/null 2>"$WORK/cap.err" &
cap_pid=$!
add_pid "$cap_pid"
scrape_when_up "$cap_pid" "$WORK/cap.txt"
kill -TERM "$cap_pid"
wait "$cap_pid" || fail "anole monitor --no-bpf --max-cgroups 2 exited $?"
assert_grep '^anole_monitor_cgroups{hierarchy="v2"} 2$' "$WORK/cap.txt" "--max-cgroups 2"
assert_grep '^anole_monitor_cgroups_truncated{hierarchy="v2"} 1$' "$WORK/cap.txt" "--max-cgroups 2: truncated"
assert_no_grep 'runqueue_latency' "$WORK/cap.txt" "--no-bpf"
"$ANOLE" monitor --listen "127.0.0.1:$MPORT" --interval 1 --no-bpf --cgroup-root "$cg2" \
	>/dev/null 2>"$WORK/sub.err" &
sub_pid=$!
add_pid "$sub_pid"
scrape_when_up "$sub_pid" "$WORK/sub.txt"
kill -TERM "$sub_pid"
wait "$sub_pid" || fail "anole monitor --cgroup-root exited $?"
assert_grep '^anole_monitor_cgroups{hierarchy="v2"} 1$' "$WORK/sub.txt" "--cgroup-root: one cgroup"
assert_grep '^anole_cgroup_cpu_usage_seconds_total{cgroup="/",hierarchy="v2"} ' "$WORK/sub.txt" "--cgroup-root: its CPU time"
assert_no_grep "cgroup=\"$cgname\"" "$WORK/sub.txt" "--cgroup-root: a cgroup outside it"

# bad input: clear message, status 1 or 2, no hang
rc=0
timeout 10 "$ANOLE" monitor --listen nonsense >/dev/null 2>"$WORK/bad.err" || rc=$?
assert_eq "$rc" 1 "--listen nonsense: exit status"
assert_grep 'takes HOST:PORT' "$WORK/bad.err" "--listen nonsense: message"
rc=0
timeout 10 "$ANOLE" monitor >/dev/null 2>"$WORK/bad2.err" || rc=$?
assert_eq "$rc" 2 "no --listen: exit status"
log "pass"
