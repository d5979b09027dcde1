#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The console's concurrency and long polls (docs/anole-console.md, "Agent
# protocol" and "Limits"):
#   - a login in progress (its scrypt hash, slow by design) does not hold a
#     concurrent GET: GETs sent (on one keep-alive connection) after the
#     login was sent complete before its answer comes. Were the hash done on
#     the request thread of that connection (or the only one), none could;
#     the test needs 3 and prints how many, and the login's own time.
#   - a diagnosis queued for a host reaches its idle agent at once, although
#     the agent heartbeats only every 30 s: its heartbeat is held by the
#     console and answered when the work comes. A polling agent would take
#     it at its next heartbeat, 30 s after the last one (last_seen); the test
#     requires the start within half of that.
#   - GET diagnoses/ID?wait=S answers when the result is in: an answer still
#     "running" came only after the S seconds.
#   - held heartbeats keep down detection: an idle (held) agent killed by
#     SIGKILL leaves its host down after the missed heartbeats; back, up.
#     Work queued for it meanwhile fails then, and a page waiting on it
#     (?wait=30) is answered at that moment, not at the end of its wait.
#     So is a page waiting on a diagnosis whose agent restarted mid-run
#     (failed at the restarted agent's first heartbeat).
# needs-features: console monitor diag
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
. "$TESTDIR/console_lib.sh"
need_diag
need_cmd curl jq

HEARTBEAT=30 console_start --scrape-interval 30
login admin "$ADMIN_PASSWORD"

log "a login in progress and concurrent GETs"
"$PY" - "$URL" admin "$ADMIN_PASSWORD" "$WORK/admin.jar" >"$WORK/concurrency.out" 2>&1 <<'PY' ||
import http.client, http.cookiejar, json, sys, threading, time, urllib.parse, urllib.request
url, user, pw, jar = sys.argv[1:5]
cj = http.cookiejar.MozillaCookieJar(jar); cj.load(ignore_discard=True, ignore_expires=True)
cookie = "; ".join(f"{c.name}={c.value}" for c in cj)
u = urllib.parse.urlsplit(url)
# the GETs on one keep-alive connection, as a browser sends them: the
# thread that polls it must not be the one hashing the password either
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
def login():
    req = urllib.request.Request(url + "/api/v1/login", json.dumps({"user": user, "password": pw}).encode(),
                                 {"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=120).read()
def get():
    conn.request("GET", "/api/v1/tools", headers={"Cookie": cookie})
    r = conn.getresponse(); r.read()
    if r.status != 200:
        sys.exit(f"GET /api/v1/tools: {r.status}")
# the scrypt cost in this run: a login alone, and a GET alone
t = time.monotonic(); login(); alone = time.monotonic() - t
t = time.monotonic(); get(); get_alone = time.monotonic() - t
best = 0
for attempt in range(3):
    sent = threading.Event(); span = {}
    def run():
        span["a0"] = time.monotonic(); sent.set(); login(); span["a1"] = time.monotonic()
    th = threading.Thread(target=run); th.start(); sent.wait()
    inside = []
    while th.is_alive():
        g0 = time.monotonic(); get(); g1 = time.monotonic()
        inside.append((g0, g1))
    th.join()
    # GETs sent after the login and answered before it
    n = sum(1 for g0, g1 in inside if g0 >= span["a0"] and g1 <= span["a1"])
    print(f"attempt {attempt}: login {1000 * (span['a1'] - span['a0']):.0f} ms (alone {1000 * alone:.0f} ms), "
          f"{n} GETs answered meanwhile (a GET alone {1000 * get_alone:.1f} ms)")
    best = max(best, n)
    if best >= 3:
        break
sys.exit(0 if best >= 3 else 1)
PY
	{ cat "$WORK/concurrency.out" >&2; fail "GETs waited for a login's password hash"; }
cat "$WORK/concurrency.out"

log "a diagnosis reaches an idle agent at once (heartbeat interval 30 s)"
agent_start h1 --no-bpf
is_up() { [ "$(host_status "$1")" = up ]; }
is_down() { [ "$(host_status "$1")" = down ]; }
wait_until 60 "h1 registered" is_up h1
expect 200 GET /api/v1/hosts/h1
LAST_SEEN=$(jv .last_seen)
expect 201 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat","duration":1}'
ID=$(jv .id)
# the page's long poll: "running" only after the whole wait
while :; do
	t0=$(date +%s.%N)
	expect 200 GET "/api/v1/diagnoses/$ID?wait=10"
	t1=$(date +%s.%N)
	[ "$(jv .status)" != running ] && break
	fcmp "$t1 - $t0" '>=' 10 || fail "GET ?wait=10 answered 'running' after $(echo "$t1 - $t0" | bc) s"
done
STARTED=$(jv .started)
CREATED=$(jv .created)
log "queued $(echo "$CREATED - $LAST_SEEN" | bc) s after the agent's last heartbeat, started $(echo "$STARTED - $CREATED" | bc) s after queued; $(jv .status)"
fcmp "$STARTED" '<' "$LAST_SEEN + 15" ||
	fail "the diagnosis started $(echo "$STARTED - $LAST_SEEN" | bc) s after the last heartbeat: the agent polled for it"
[ "$(jv .status)" = done ] || { cat "$WORK/api.out" >&2; fail "runqlat through the held heartbeat: $(jv .error)"; }

log "the agent restarts mid-diagnosis: failed at its first heartbeat, and the waiting page hears it then"
expect 201 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat","duration":20}'
ID=$(jv .id)
is_running() { api GET "/api/v1/diagnoses/$1"; [ "$(jv .status)" = running ]; }
wait_until 60 "diagnosis $ID running" is_running "$ID"
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
# the page's wait is in flight (parked) before the restarted agent's first
# heartbeat, which fails the diagnosis: the page must hear it then
t0=$(date +%s.%N)
curl -s -o "$WORK/wait.out" -b "$JAR" "$URL/api/v1/diagnoses/$ID?wait=30" &
WAITER=$!
sleep 2
agent_start h1 --no-bpf
wait "$WAITER" || fail "GET ?wait=30 failed"
t1=$(date +%s.%N)
cp "$WORK/wait.out" "$WORK/api.out"
[ "$(jv .status)" = failed ] || fail "a diagnosis of a restarted agent is '$(jv .status)' after the wait"
assert_grep "no longer runs it" "$WORK/api.out" "the reason names the restart"
log "failed after $(echo "$t1 - $t0" | bc) s (the agent restarted at 2 s): $(jv .error)"
# heartbeats every 30 s: the host cannot have gone down meanwhile; the
# restarted agent's first heartbeat fails it, well before the wait ends
fcmp "$t1 - $t0" "<" 29 || fail "the page waiting on a diagnosis of a restarted agent heard only when its wait ended"
wait_until 60 "h1 up after the restart" is_up h1

log "hold out of range: 400"
AGENT_STATUS=$(curl -s -o "$WORK/agent.out" -w '%{http_code}' -X POST -H "Authorization: Bearer $(cat "$WORK/token")" \
	--data-binary '{"name":"h2","hold":-1}' "$URL/api/v1/agent/heartbeat")
assert_eq "$AGENT_STATUS" 400 "a heartbeat with hold -1"
assert_grep "'hold'" "$WORK/agent.out" "the message names the field"

log "an idle agent killed while its heartbeat is held: down, then up when back"
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
console_stop
HEARTBEAT=1 console_start --scrape-interval 30
login admin "$ADMIN_PASSWORD"
agent_start h1 --no-bpf
wait_until 60 "h1 up with 1 s heartbeats" is_up h1
sleep 2 # its heartbeats are held ones now (nothing queued)
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
# work queued for the dead agent fails when its host goes down (5 missed
# heartbeats of 1 s, checked every second: ~7 s), and a page waiting on it
# hears so then, not when its 30 s wait ends (a wait that ends answers
# at 30 s or later, whatever the state)
expect 201 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat","duration":1}'
ID=$(jv .id)
t0=$(date +%s.%N)
expect 200 GET "/api/v1/diagnoses/$ID?wait=30"
t1=$(date +%s.%N)
[ "$(jv .status)" = failed ] || fail "a diagnosis for a dead agent is '$(jv .status)' after the wait"
assert_grep "went down" "$WORK/api.out" "the reason names the host going down"
log "failed after $(echo "$t1 - $t0" | bc) s: $(jv .error)"
fcmp "$t1 - $t0" "<" 29 || fail "the page waiting on a failed diagnosis was answered only when its wait ended"
# 30 s is the bound
wait_until 30 "h1 down after its idle agent died" is_down h1
agent_start h1 --no-bpf
wait_until 60 "h1 up again" is_up h1
console_stop
