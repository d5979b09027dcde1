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
#     as Prometheus's own query_range: the same label sets and, at shared
#     timestamps, the same values (MemTotal, a constant, equal to /proc/meminfo).
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
console_agent alpha 1 "$WORK/token-shared"
console_agent beta 2 "$WORK/token-shared"
console_wait_up 30 alpha beta

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

# the console's API and Prometheus's own answer agree
for host in alpha beta; do
	console_api GET "hosts/$host/metrics?name=anole_memory_bytes&range=120" >"$WORK/api-$host.json"
	now=$(date +%s)
	promget "query_range?query=anole_memory_bytes%7Bhost%3D%22$host%22%7D&start=$((now - 120))&end=$now&step=1" >"$WORK/prom-$host.json" \
		|| fail "Prometheus query_range failed"
	"$PY" - "$WORK/api-$host.json" "$WORK/prom-$host.json" "$host" <<'PY' || fail "$host: the console's series differ from Prometheus's"
import json, sys
api = json.load(open(sys.argv[1])); prom = json.load(open(sys.argv[2]))["data"]["result"]
host = sys.argv[3]
if "series" not in api:
    sys.exit("the API answered %s" % json.dumps(api)[:500])
if api.get("source") not in (None, "prometheus"):
    sys.exit("the console read its series from %r, not Prometheus" % api.get("source"))
def key(labels):
    return labels.get("field")
a = {key(s["labels"]): s["points"] for s in api["series"]}
p = {key(s["metric"]): [[float(t), float(v)] for t, v in s["values"]] for s in prom}
if set(a) != set(p) or not a:
    sys.exit("fields differ: api %s, prometheus %s" % (sorted(a), sorted(p)))
total = {l.split()[0].rstrip(":"): int(l.split()[1]) * 1024 for l in open("/proc/meminfo")}["MemTotal"]
for field in ("MemTotal",):
    av = {round(t): v for t, v in a[field]}; pv = {round(t): v for t, v in p[field]}
    if not av:
        sys.exit("%s: the API has no points" % field)
    if any(v != total for v in av.values()):
        sys.exit("%s: API values %s, /proc/meminfo %d" % (field, sorted(set(av.values())), total))
    shared = set(av) & set(pv)
    if not shared:
        sys.exit("%s: no shared timestamps: api %s.., prometheus %s.." % (field, sorted(av)[:3], sorted(pv)[:3]))
    bad = [t for t in shared if av[t] != pv[t]]
    if bad:
        sys.exit("%s: values differ at %s" % (field, bad[:5]))
# every field at shared timestamps
for field in a:
    av = {round(t): v for t, v in a[field]}; pv = {round(t): v for t, v in p[field]}
    bad = [t for t in set(av) & set(pv) if av[t] != pv[t]]
    if bad:
        sys.exit("%s %s: values differ at %d timestamps" % (host, field, len(bad)))
print("%s: %d series, %d points from the console equal Prometheus's" %
      (host, len(a), sum(len(v) for v in a.values())))
PY
done
kill -0 "$CW_PID" || fail "the console exited"
log "ok"
