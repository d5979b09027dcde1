#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The console at fleet scale (issue 12's figures), in one run:
#   - one `anole console serve` (embedded SQLite store) with N (default 200)
#     simulated agents scraping every 15 s: the console's CPU use (% of one
#     core, over WINDOW seconds, default 60) and memory (RSS, peak RSS).
#     Targets: <= 5 % of one core, <= 200 MiB.
#   - the host list of N hosts: time to first render in headless Chromium
#     (navigation start to the table drawn, measured in the page). Target <= 1 s.
#   - a host page chart of 24 h at 15 s resolution (24 h of samples preloaded
#     into the store): time from asking for the range to every chart drawn.
#     Target <= 1 s.
#   - a diagnosis round trip: click "Run" for a 2 s runqlat on a real agent
#     (`anole monitor --console`) to the histogram shown. Target <= 3 s.
#
#   bench/console.sh [ANOLE]    (default build/anole; root for the real
#                                agent's eBPF; N=200 WINDOW=60 to change)
#
# The simulated agents (bench/console_fake_agents.py, one asyncio process)
# serve a real agent's /metrics page captured at start, counters advancing,
# each on its own loopback port, and heartbeat as agents do (a long poll
# the console holds up to its heartbeat interval): the console
# parses and stores what it would from a real fleet. The machine's own load
# (other work) slows the browser figures; CPU seconds used by the console
# are what they are.
set -euo pipefail

ANOLE=$(realpath "${1:-build/anole}")
cd "$(dirname "$0")/.."
N=${N:-200}
WINDOW=${WINDOW:-60}
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/anole-bench-console.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
say() { printf '\n== %s\n' "$*"; }

"$ANOLE" console --help >/dev/null 2>&1 || { echo "bench: $ANOLE has no console" >&2; exit 1; }

say "capturing a real agent's /metrics page"
MP=$(free_port)
bpf=()
[ "$(id -u)" -eq 0 ] || bpf=(--no-bpf)
"$ANOLE" monitor --listen "127.0.0.1:$MP" --interval 1 "${bpf[@]}" >"$WORK/capture.log" 2>&1 &
cap=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$MP/metrics" -o "$WORK/metrics.txt" && break; sleep 0.1; done
kill "$cap"; wait "$cap" || true
[ -s "$WORK/metrics.txt" ] || { echo "bench: could not capture /metrics" >&2; exit 1; }
echo "  $(grep -vc '^#' "$WORK/metrics.txt") samples per scrape per agent"

DATA=$WORK/data
PASS=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(12))')
printf '%s\n' "$PASS" | "$ANOLE" console user add admin --role admin --data "$DATA" >/dev/null
(umask 077; "$ANOLE" console token create --data "$DATA" --note bench >"$WORK/token")
PORT=$(free_port)
URL="http://127.0.0.1:$PORT/"

console_start() {
	"$ANOLE" console serve --listen "127.0.0.1:$PORT" --data "$DATA" --scrape-interval 15 \
		--pid-file "$WORK/console.pid" >>"$WORK/console.log" 2>&1 &
	CPID=$!
	pids+=("$CPID")
	for _ in $(seq 300); do curl -sf -o /dev/null "$URL" && return 0; sleep 0.1; done
	cat "$WORK/console.log" >&2; exit 1
}
# hosts_up: how many hosts the API lists as up
hosts_up() {
	"$PY" - "$URL" admin "$PASS" <<'PY'
import http.cookiejar, json, sys, urllib.request
url, user, pw = sys.argv[1:4]
o = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
o.open(urllib.request.Request(url + "api/v1/login", json.dumps({"user": user, "password": pw}).encode(),
                              {"Content-Type": "application/json"}), timeout=10)
hosts = json.load(o.open(url + "api/v1/hosts", timeout=30))
print(sum(1 for h in hosts if h.get("status") == "up"))
PY
}
wait_up() {
	local want=$1 n=0
	for _ in $(seq 240); do
		n=$(hosts_up 2>/dev/null || echo 0)
		[ "$n" -ge "$want" ] && return 0
		sleep 0.5
	done
	echo "bench: only $n of $want hosts up" >&2; exit 1
}

say "console with $N simulated agents (scrape every 15 s)"
console_start
"$PY" bench/console_fake_agents.py "$URL" "$WORK/token" "$WORK/metrics.txt" "$N" \
	>"$WORK/fake.log" 2>&1 &
pids+=("$!")
wait_up "$N"
echo "  $N hosts up"

say "preloading 24 h of samples at 15 s for fake000 (stop, write the store, restart)"
kill "$CPID"; wait "$CPID" || true
"$PY" - "$DATA/console.db" "$WORK/metrics.txt" <<'PY'
import math, re, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=30)
host = db.execute("SELECT id FROM hosts WHERE name='fake000'").fetchone()[0]
wanted = ("anole_memory_bytes", "anole_load1", "anole_system_cpu_seconds_total", "anole_pressure_ratio")
rx = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
now = time.time(); start = now - 86400 + 15; n = 0
with db:
    for line in open(sys.argv[2]):
        m = rx.match(line.strip())
        if not m or m.group(1) not in wanted:
            continue
        name, labels, v = m.group(1), m.group(2) or "", float(m.group(3))
        db.execute("INSERT OR IGNORE INTO series(host_id,name,labels) VALUES(?,?,?)", (host, name, labels))
        sid = db.execute("SELECT id FROM series WHERE host_id=? AND name=? AND labels=?", (host, name, labels)).fetchone()[0]
        rows = []
        for i in range(5760):
            t = start + 15 * i
            if name.endswith("_total"):
                val = max(0.0, v - (5760 - i) * 15 * 0.3)
            else:
                val = v * (1 + 0.2 * math.sin(i / 200.0))
            rows.append((sid, t, val))
        db.executemany("INSERT OR REPLACE INTO samples(series_id,ts,value) VALUES(?,?,?)", rows)
        n += len(rows)
print(f"  {n} samples written")
PY
console_start
wait_up "$N"

say "console CPU and memory over ${WINDOW} s (after one scrape interval of warm-up)"
sleep 15
"$PY" - "$CPID" "$WINDOW" >"$WORK/cpu.txt" <<'PY'
import os, sys, time
pid, window = sys.argv[1], float(sys.argv[2])
tck = os.sysconf("SC_CLK_TCK")
def cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tck
def status(k):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith(k + ":"):
            return int(l.split()[1]) / 1024
c0, t0 = cpu(), time.monotonic()
time.sleep(window)
c1, t1 = cpu(), time.monotonic()
threads = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("Threads:"))
print(f"{100 * (c1 - c0) / (t1 - t0):.2f} {status('VmRSS'):.1f} {status('VmHWM'):.1f} {threads}")
PY
read -r CPU RSS HWM THREADS <"$WORK/cpu.txt"
printf '  console CPU: %s %% of one core (target <= 5)\n  console RSS: %s MiB, peak %s MiB (target <= 200)\n' "$CPU" "$RSS" "$HWM"
# the agents' heartbeats are held (long polls): suspended connections, no
# thread each
printf '  console threads: %s, with %s agents holding a heartbeat each\n' "$THREADS" "$N"

say "API latency (median of 5): what the page waits for"
"$PY" - "$URL" admin "$PASS" >"$WORK/api.txt" <<'PY'
import http.cookiejar, json, statistics, sys, time, urllib.request
url, user, pw = sys.argv[1:4]
o = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
o.open(urllib.request.Request(url + "api/v1/login", json.dumps({"user": user, "password": pw}).encode(),
                              {"Content-Type": "application/json"}), timeout=10)
def ms(path):
    ts = []
    for _ in range(5):
        t = time.monotonic(); body = o.open(url + path, timeout=60).read(); ts.append(1000 * (time.monotonic() - t))
    return statistics.median(ts), len(body)
for what, path in [("GET hosts (all)", "api/v1/hosts"),
                   ("24 h memory (MemTotal)", "api/v1/hosts/fake000/metrics?name=anole_memory_bytes&range=86400&label=field=MemTotal"),
                   ("24 h CPU (8 modes)", "api/v1/hosts/fake000/metrics?name=anole_system_cpu_seconds_total&range=86400"),
                   ("24 h PSI (avg10)", "api/v1/hosts/fake000/metrics?name=anole_pressure_ratio&range=86400&label=window=10s")]:
    m, n = ms(path)
    print(f"  {what:28s} {m:7.0f} ms  {n / 1024:7.0f} KiB")
PY
cat "$WORK/api.txt"

hosts_args=()
for i in $(seq 0 $((N - 1))); do hosts_args+=(--host "$(printf 'fake%03d' "$i")"); done
say "host list of $N hosts in headless Chromium"
HOME=$WORK "$PY" tests/console_browser.py "$URL" --user admin --password="$PASS" "${hosts_args[@]}" \
	--hosts-only --profile "$WORK/chromium1" --json >"$WORK/b1.out" 2>&1 || { cat "$WORK/b1.out" >&2; exit 1; }
LIST_MS=$(tail -n1 "$WORK/b1.out" | "$PY" -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["hosts_first_render_ms"])')
echo "  time to first render: $LIST_MS ms (target <= 1000)"

say "host page, 24 h chart at 15 s resolution"
HOME=$WORK "$PY" tests/console_browser.py "$URL" --user admin --password="$PASS" --host fake000 \
	--chart-range 86400 --no-diag --profile "$WORK/chromium2" --json >"$WORK/b2.out" 2>&1 || { cat "$WORK/b2.out" >&2; exit 1; }
read -r CHART_MS CHART_PTS < <(tail -n1 "$WORK/b2.out" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print("%.0f" % d["charts_render_ms"], sum(d["chart_points"].values()))')
echo "  24 h charts drawn in $CHART_MS ms, $CHART_PTS points (target <= 1000)"
tail -n1 "$WORK/b2.out" | "$PY" -c 'import json,sys; d=json.load(sys.stdin)
for k in d["chart_fetch_ms"]: print("    %-8s waiting for the API %6d ms, deriving and drawing %5d ms" % (k, d["chart_fetch_ms"][k], d["chart_draw_ms"][k]))'


say "diagnosis round trip: runqlat 2 s on a real agent"
DIAG=""
if [ "$(id -u)" -ne 0 ]; then
	echo "  not measured: needs root (the agent's eBPF)"
elif ! "$ANOLE" monitor --help 2>&1 | grep -q -- '--console'; then
	echo "  not measured: this anole monitor has no --console"
else
	AP=$(free_port)
	"$ANOLE" monitor --listen "127.0.0.1:$AP" --interval 5 --console "${URL%/}" \
		--token-file "$WORK/token" --name bench-real >"$WORK/agent.log" 2>&1 &
	pids+=("$!")
	wait_up $((N + 1))
	HOME=$WORK "$PY" tests/console_browser.py "$URL" --user admin --password="$PASS" --host bench-real \
		--diag-duration 2 --profile "$WORK/chromium3" --json >"$WORK/b3.out" 2>&1 || { cat "$WORK/b3.out" >&2; exit 1; }
	DIAG=$(tail -n1 "$WORK/b3.out" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print("%.2f" % d.get("diagnosis_round_trip_in_page_s", d["diagnosis_round_trip_s"]))')
	echo "  click to histogram: $DIAG s (target <= 3)"
fi

say "figures"
printf '%-44s %10s %10s\n' figure measured target
printf '%-44s %10s %10s\n' "console CPU, % of one core ($N agents)" "$CPU" "5"
printf '%-44s %10s %10s\n' "console RSS, MiB (peak)" "$RSS ($HWM)" "200"
printf '%-44s %10s %10s\n' "host list first render, ms ($N hosts)" "$LIST_MS" "1000"
printf '%-44s %10s %10s\n' "24 h chart render, ms" "$CHART_MS" "1000"
printf '%-44s %10s %10s\n' "runqlat 2 s round trip, s" "${DIAG:-n/a}" "3"
echo "machine load: $(cut -d' ' -f1-3 /proc/loadavg)"
