#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The console's page in a real browser (Debian's headless Chromium, driven by
# chromium-driver + python3-selenium): a console in a network namespace of
# its own, two agents each in another namespace joined to it by a veth pair
# (hosts 10.77.1.2 and 10.77.2.2). Log in, see both hosts up, open one, see
# a chart with points, run runqlat for 2 s from the diagnose panel and see
# its histogram, see the diagnosis in the audit log, add an alert rule whose
# label value is markup and see it listed as text; then check through the
# API that the audit entry and the diagnosis are real (the agent ran the
# tool: its histogram counted events). Screenshots of each step go to the
# test log directory (t_console_browser-shots/).
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
. "$TESTDIR/console_netns_lib.sh"
console_need
need_diag
need_cmd chromium chromedriver
/usr/bin/python3 -c 'import selenium' 2>/dev/null || skip "needs python3-selenium"

SHOTS=${ANOLE_TEST_LOG_DIR:-$WORK}/t_console_browser-shots
rm -rf "$SHOTS"

console_netns
# scrapes every second so that a chart has points soon; heartbeats too
console_start --scrape-interval 1 --heartbeat-interval 1
console_admin admin
# the agents' resident eBPF histograms are not what this test is about, and
# loading them takes long on a loaded machine; diagnoses load their own
CW_AGENT_ARGS=--no-bpf
console_agent alpha 1
console_agent beta 2
console_wait_up 60 alpha beta
log "two hosts up: $(tr -d '\n' <"$WORK/hosts.json" | head -c 300)"

# the browser runs in the console's namespace (as an operator's would be on
# its network); HOME for chromium's profile is the test's scratch. Each of
# the driver's 15 steps has its own bound (--timeout, 30 s; the diagnosis
# also its duration and the agent's 30 s kill grace): the outer timeout only
# stops a hung browser, so it is their sum (~480 s), not a quiet run's time.
rc=0
HOME=$WORK ip netns exec "$CW_NS" timeout 600 /usr/bin/python3 "$TESTDIR/console_browser.py" "$CW_URL" \
	--user admin --password="$CW_PASS" --host alpha --host beta --diag-host beta \
	--shots "$SHOTS" --profile "$WORK/chromium" --json >"$WORK/browser.out" 2>&1 || rc=$?
log "browser done (exit $rc)"
cat "$WORK/browser.out"
check_not_crashed "$rc" "the browser"
[ "$rc" -eq 0 ] || fail "the browser run failed (screenshots in $SHOTS)"
ls "$SHOTS" | sed 's/^/  screenshot: /'
[ "$(ls "$SHOTS"/*.png | wc -l)" -ge 6 ] || fail "expected 6 screenshots in $SHOTS"

# The page's account of it agrees with the API: the audit log holds the
# admin's diagnosis of beta, and that diagnosis is done with a histogram the
# agent measured (events counted over 2 s on a machine that runs this test).
console_api GET audit >"$WORK/audit.json"
console_api GET hosts/beta/diagnoses >"$WORK/diags.json"
"$PY" - "$WORK/audit.json" "$WORK/diags.json" <<'PY' || fail "the API does not confirm what the page showed"
import json, sys
audit = json.load(open(sys.argv[1]))
audit = audit if isinstance(audit, list) else audit.get("audit", audit.get("entries", []))
hits = [a for a in audit if "diagnos" in str(a.get("action", "")) and "beta" in json.dumps(a)
        and a.get("user") == "admin"]
if not hits:
    sys.exit("no audit entry of admin's diagnosis of beta: %s" % json.dumps(audit)[:800])
d = json.load(open(sys.argv[2]))
d = d if isinstance(d, list) else d.get("diagnoses", [])
done = [x for x in d if x.get("tool") == "runqlat" and x.get("status") == "done"]
if not done:
    sys.exit("no done runqlat diagnosis of beta: %s" % json.dumps(d)[:800])
print("audit:", json.dumps(hits[-1]))
PY
kill -0 "$CW_PID" || fail "the console exited"
log "ok"
