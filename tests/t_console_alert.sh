#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Alerting on the console's embedded metric store, with a real agent and a
# local webhook receiver: a rule true from the start fires and, once the
# metric crosses back (the agent's sample counter passes the threshold),
# resolves; each event is POSTed as JSON to the rule's webhook. A rule with
# a for-duration fires no sooner than that after it first held. A rule that
# never holds sends nothing.
# needs-features: console monitor
. "$TESTDIR/lib.sh"
. "$TESTDIR/console_lib.sh"
need_cmd curl jq python3

"$PY" "$TESTDIR/webhook_sink.py" "$WORK/hook.port" "$WORK/hook.events" &
add_pid $!
wait_until 60 "the webhook receiver" test -s "$WORK/hook.port"
HOOK=http://127.0.0.1:$(cat "$WORK/hook.port")/hook
: >"$WORK/hook.events"

console_start --scrape-interval 1
login admin "$ADMIN_PASSWORD"
# the rules exist before the agent starts: few-samples must see the counter
# under 40 once, and the first scrape comes a scrape interval (1 s) after
# the agent registers, whatever the time this script takes on a loaded machine
expect 201 POST /api/v1/alerts/rules "{\"name\":\"few-samples\",\"metric\":\"anole_monitor_samples_total\",\"comparison\":\"<\",\"threshold\":40,\"severity\":\"info\",\"webhook\":\"$HOOK\"}"
expect 201 POST /api/v1/alerts/rules "{\"name\":\"load-held\",\"metric\":\"anole_load1\",\"comparison\":\">=\",\"threshold\":0,\"for\":3,\"severity\":\"warning\",\"webhook\":\"$HOOK\"}"
expect 201 POST /api/v1/alerts/rules "{\"name\":\"never\",\"metric\":\"anole_load1\",\"comparison\":\"<\",\"threshold\":-1,\"webhook\":\"$HOOK\"}"
expect 201 POST /api/v1/alerts/rules "{\"name\":\"cpu-some\",\"metric\":\"anole_pressure_ratio\",\"labels\":{\"resource\":\"cpu\",\"kind\":\"some\",\"window\":\"10s\"},\"comparison\":\">=\",\"threshold\":0,\"webhook\":\"$HOOK\"}"
# the counter: 2 samples a second (fewer on a loaded machine: missed
# samples are skipped, so it may take longer to pass 40, never less)
agent_start h1 --no-bpf --interval 0.5
is_up() { [ "$(host_status "$1")" = up ]; }
wait_until 60 "h1 registered" is_up h1

hook_has() { # RULE STATE
	jq -s -e --arg r "$1" --arg s "$2" 'any(.[]; .rule == $r and .state == $s)' "$WORK/hook.events" >/dev/null 2>&1
}
wait_until 60 "few-samples firing at the webhook" hook_has few-samples firing
wait_until 60 "load-held firing at the webhook" hook_has load-held firing
# the sample counter passes 40 within 20 s at 2 samples/s; 90 s bound for a loaded machine
wait_until 90 "few-samples resolved at the webhook" hook_has few-samples resolved
if [ -e /proc/pressure/cpu ]; then
	wait_until 30 "cpu-some (labels matched) firing" hook_has cpu-some firing
fi

log "the events, by the API and at the webhook"
expect 200 GET /api/v1/alerts/events
jq -e 'any(.[]; .rule == "few-samples" and .state == "firing" and .host == "h1" and .value < 40) and
	any(.[]; .rule == "few-samples" and .state == "resolved" and .value >= 40) and
	any(.[]; .rule == "load-held" and .state == "firing" and .severity == "warning") and
	all(.[]; .rule != "never") and all(.[]; .webhook_status == "200" or .webhook_status == "pending")' \
	"$WORK/api.out" >/dev/null || { cat "$WORK/api.out" >&2; fail "alert events"; }
FIRED=$(jq -r 'select(.rule == "load-held" and .state == "firing") | .ts' "$WORK/hook.events" | head -1)
expect 200 GET /api/v1/alerts/rules
CREATED=$(jv '.[] | select(.name == "load-held") | .created')
# for 3 s: it first held at an evaluation after the rule existed, so it
# fired at least 3 s after the rule's creation
fcmp "$FIRED - $CREATED" '>=' 3 || fail "load-held fired at $FIRED, under 3 s after its creation ($CREATED)"
jq -s -e 'any(.[]; .rule == "few-samples" and .state == "firing" and .host == "h1" and .metric ==
	"anole_monitor_samples_total" and .threshold == 40 and .comparison == "<")' "$WORK/hook.events" >/dev/null ||
	fail "the webhook's JSON"
assert_no_grep '"never"' "$WORK/hook.events" "a rule that never held"
# one event per transition: a single firing and resolved of few-samples
assert_eq "$(jq -r 'select(.rule == "few-samples") | .state' "$WORK/hook.events" | tr '\n' ' ')" \
	"firing resolved " "few-samples transitions"
expect 200 GET /api/v1/audit
jq -e 'any(.[]; .action == "alert_rule.create" and .target == "load-held" and .user == "admin")' \
	"$WORK/api.out" >/dev/null || fail "rule creation not audited"
console_stop
