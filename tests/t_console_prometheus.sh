#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The console at scale: --prometheus makes Debian's Prometheus the metric
# store. A console and a Prometheus in one network namespace, two agents each
# in another joined by veth pairs; the console writes the file_sd targets file
# (DATA/prometheus/targets.json) and Prometheus, started here on its own port
# with its own storage, scrapes the agents through it. Then:
#   - the targets file names both agents at their own addresses,
#   - Prometheus reports both targets up,
#   - the console's metrics API (what the charts draw) gives the same series
#     as Prometheus's own query_range at the console's timestamps: the same
#     label sets and values (MemTotal equal to /proc/meminfo).
. "$TESTDIR/lib.sh"
. "$TESTDIR/console_netns_lib.sh"
console_need
need_cmd prometheus

PPORT=19090   # in the console's namespace: no other process there
console_netns
mkdir -p "$WORK/prom-data" "$WORK/console/prometheus"
# Prometheus scrapes what the console's file_sd file lists, every second,
# with the agents' token (an agent answers only its own; one job has one
# credentials file, so both agents share a token here).
cat >"$WORK/prometheus.yml" <<EOF2
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: anole
    authorization:
      credentials_file: $WORK/token-shared
    file_sd_configs:
      - files: ['$WORK/console/prometheus/targets.json']
EOF2
console_start --prometheus "http://127.0.0.1:$PPORT" --scrape-interval 1 --heartbeat-interval 1
console_admin admin
CW_AGENT_ARGS=--no-bpf   # the histograms are not what this test is about
console_agent alpha 1 "$WORK/token-shared"
console_agent beta 2 "$WORK/token-shared"
console_wait_up 60 alpha beta

cw_bg "$WORK/prometheus.log" ip netns exec "$CW_NS" prometheus \
	--config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom-data" \
	--web.listen-address="127.0.0.1:$PPORT" --log.level=warn
PROM_PID=$CW_BG
promget() { ip netns exec "$CW_NS" curl -sf "http://127.0.0.1:$PPORT/api/v1/$1"; }
for _ in $(seq 300); do promget status/buildinfo >/dev/null && break
	kill -0 "$PROM_PID" 2>/dev/null || { cat "$WORK/prometheus.log" >&2; fail "prometheus exited"; }
	sleep 0.1
done

# the file_sd file lists both agents at their namespace addresses
for _ in $(seq 100); do [ -s "$WORK/console/prometheus/targets.json" ] && break; sleep 0.1; done
"$PY" - "$WORK/console/prometheus/targets.json" <<'PY' || fail "targets.json is not what the console registered"
import json, sys
t = json.load(open(sys.argv[1]))
got = {g["labels"]["host"]: g["targets"] for g in t}
want = {"alpha": ["10.77.1.2:9100"], "beta": ["10.77.2.2:9100"]}
if got != want:
    sys.exit("targets %r, want %r" % (got, want))
PY

# both targets up in Prometheus (it reads the file with inotify)
ok=0
for _ in $(seq 150); do
	n=$(promget 'query?query=sum(up%7Bjob%3D%22anole%22%7D)' | "$PY" -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)' || echo 0)
	[ "$n" = 2 ] && { ok=1; break; }
	sleep 0.2
done
[ "$ok" = 1 ] || { promget targets | head -c 2000 >&2; fail "Prometheus does not have both agents up"; }
log "Prometheus scrapes both agents"
sleep 4   # a few samples of each series

# the console's API and Prometheus's own answer agree: the same label sets,
# and Prometheus asked for the console's own timestamps (its step grid, the
# newest two left out: a scrape in flight may still land before them) gives
# the same value for every series at every one of them
for host in alpha beta; do
	console_api GET "hosts/$host/metrics?name=anole_memory_bytes&range=120" >"$WORK/api-$host.json"
	ip netns exec "$CW_NS" "$PY" - "$WORK/api-$host.json" "$host" "$PPORT" <<'PY' || fail "$host: the console's series differ from Prometheus's"
import json, sys, urllib.parse, urllib.request
api = json.load(open(sys.argv[1])); host, pport = sys.argv[2], sys.argv[3]
if "series" not in api:
    sys.exit("the API answered %s" % json.dumps(api)[:500])
if api.get("source") != "prometheus":
    sys.exit("the console read its series from %r, not Prometheus" % api.get("source"))
a = {s["labels"].get("field"): s["points"] for s in api["series"]}
ts = sorted({t for pts in a.values() for t, _ in pts})
if len(ts) < 4:
    sys.exit("only %d timestamps from the console" % len(ts))
step = ts[1] - ts[0]
q = urllib.parse.urlencode({"query": 'anole_memory_bytes{host="%s"}' % host,
                            "start": "%.3f" % ts[0], "end": "%.3f" % ts[-1], "step": "%g" % step})
prom = json.load(urllib.request.urlopen("http://127.0.0.1:%s/api/v1/query_range?%s" % (pport, q), timeout=10))
p = {s["metric"].get("field"): {round(float(t), 3): float(v) for t, v in s["values"]} for s in prom["data"]["result"]}
if set(a) != set(p) or len(a) < 10:
    sys.exit("fields differ: api %s, prometheus %s" % (sorted(a), sorted(p)))
total = {l.split()[0].rstrip(":"): int(l.split()[1]) * 1024 for l in open("/proc/meminfo")}["MemTotal"]
if any(v != total for _, v in a["MemTotal"]):
    sys.exit("MemTotal from the console is not /proc/meminfo's %d" % total)
compared = 0
for field, pts in a.items():
    for t, v in pts:
        if t >= ts[-2]:
            continue
        pv = p[field].get(round(t, 3))
        if pv is None:
            sys.exit("%s at %.3f: Prometheus has no value (has %s..)" % (field, t, sorted(p[field])[:3]))
        if pv != v:
            sys.exit("%s at %.3f: console %r, Prometheus %r" % (field, t, v, pv))
        compared += 1
print("%s: %d series, %d values from the console equal Prometheus's (step %g s)" % (host, len(a), compared, step))
PY
done
kill -0 "$CW_PID" || fail "the console exited"
log "ok"
