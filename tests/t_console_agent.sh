#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole console with a real agent (anole monitor --console): it registers
# and is scraped (the chart has points); a 2 s runqlat diagnosis goes
# through it and comes back as runqlat's JSON histogram with counts; an
# agent killed (SIGKILL, by pid) in the middle of a diagnosis leaves the
# host down after the missed heartbeats and the diagnosis failed with the
# reason; the agent started again brings the host up; a console restart
# loses nothing (users, hosts, diagnoses, audit), the agent registers
# again by itself and a diagnosis running across the restart ends done.
# needs-features: console monitor diag
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
. "$TESTDIR/console_lib.sh"
need_diag
need_cmd curl jq

console_start --scrape-interval 1
agent_start h1 --no-bpf
FIRST_AGENT=$AGENT_PID
login admin "$ADMIN_PASSWORD"
is_up() { [ "$(host_status "$1")" = up ]; }
is_down() { [ "$(host_status "$1")" = down ]; }
# under load an ASan agent takes seconds to start: 60 s is far beyond it
wait_until 60 "h1 registered" is_up h1
has_points() {
	api GET '/api/v1/hosts/h1/metrics?name=anole_load1&range=600'
	[ "$(jv '.series[0].points | length')" -ge 2 ] 2>/dev/null
}
wait_until 60 "two scrapes of h1 in the metric store" has_points
jq -e '.series[0].points | all(.[1] >= 0 and .[0] > 1e9)' "$WORK/api.out" >/dev/null ||
	fail "anole_load1 points are not [time, load]"
expect 200 GET /api/v1/hosts
jq -e '.[0].health.memory_total_bytes > 0 and .[0].address == "127.0.0.1"' "$WORK/api.out" >/dev/null ||
	{ cat "$WORK/api.out" >&2; fail "the host list's health figures"; }

log "runqlat for 2 s through the agent"
diag_done() { # ID: finished (done or failed)
	api GET "/api/v1/diagnoses/$1"
	[ "$(jv .status)" != running ]
}
t0=$(date +%s.%N)
expect 201 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat","duration":2}'
ID=$(jv .id)
# 2 s of tracing, a heartbeat (1 s) to take it, the BPF load of an ASan
# build on a loaded machine (seconds): 60 s is the bound, not the measure
wait_until 60 "diagnosis $ID finished" diag_done "$ID"
t1=$(date +%s.%N)
[ "$(jv .status)" = done ] || { cat "$WORK/api.out" >&2; fail "runqlat diagnosis: $(jv .error)"; }
jq -e '.result[-1].tool == "runqlat" and (.result[-1].hist | length) > 0 and
	([.result[-1].hist[].count] | add) > 0' "$WORK/api.out" >/dev/null ||
	{ head -c 2000 "$WORK/api.out" >&2; fail "the runqlat result has no counts"; }
# it ran for its duration: started and finished are at least 2 s apart
jq -e '.finished - .started >= 2' "$WORK/api.out" >/dev/null || fail "the diagnosis took under 2 s"
log "round trip $(echo "$t1 - $t0" | bc) s"

log "the agent killed mid-diagnosis: host down, diagnosis failed with the reason"
expect 201 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat","duration":30}'
ID2=$(jv .id)
is_running() { api GET "/api/v1/diagnoses/$1"; [ "$(jv .state)" = running ]; }
wait_until 30 "diagnosis $ID2 handed to the agent" is_running "$ID2"
wait_until 30 "the agent running diagnosis $ID2" grep -q "diagnosis $ID2: anole diag runqlat" "$WORK/agent-h1.log"
TOOL_PID=$(sed -n "s/.*diagnosis $ID2: anole diag runqlat.*(pid \([0-9]*\)).*/\1/p" "$WORK/agent-h1.log")
[ -n "$TOOL_PID" ] && add_pid "$TOOL_PID"
kill -KILL "$FIRST_AGENT"
wait "$FIRST_AGENT" 2>/dev/null || true
# 5 missed heartbeats of 1 s, checked every second: down within ~7 s; 30 s bound
wait_until 30 "h1 down after its agent died" is_down h1
expect 200 GET "/api/v1/diagnoses/$ID2"
assert_eq "$(jv .status)" failed "the diagnosis of the dead agent"
assert_grep 'went down' "$WORK/api.out" "its reason"
[ -n "$TOOL_PID" ] && kill "$TOOL_PID" 2>/dev/null || true

log "the agent back: host up"
agent_start h1 --no-bpf
wait_until 60 "h1 up again" is_up h1

log "console restart keeps everything, the agent registers again, a diagnosis across it ends done"
expect 201 POST /api/v1/users '{"name":"kept","role":"viewer","password":"kept-pass-1"}'
expect 201 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat","duration":6}'
ID3=$(jv .id)
wait_until 30 "diagnosis $ID3 handed to the agent" is_running "$ID3"
console_stop
console_start --scrape-interval 1
# the agent's heartbeats fail while the console is away; a stale status is
# fixed by the next heartbeat
wait_until 60 "h1 up after the console restart" is_up h1
login kept kept-pass-1
# its result was sent while the console was up, or kept and sent again
wait_until 60 "diagnosis $ID3 finished" diag_done "$ID3"
[ "$(jv .status)" = done ] || { cat "$WORK/api.out" >&2; fail "diagnosis $ID3 across the restart"; }
expect 200 GET "/api/v1/diagnoses/$ID"
[ "$(jv '.status + " " + .result[-1].tool')" = "done runqlat" ] || fail "diagnosis $ID after the restart"
expect 200 GET "/api/v1/diagnoses/$ID2"
assert_eq "$(jv .status)" failed "diagnosis $ID2 after the restart"
expect 200 GET '/api/v1/audit?limit=1000'
jq -e 'any(.[]; .action == "host.down" and .target == "h1") and
	any(.[]; .action == "host.up" and .target == "h1") and
	any(.[]; .action == "console.stop")' "$WORK/api.out" >/dev/null || fail "audit log after the restart"
expect 200 GET '/api/v1/hosts/h1/metrics?name=anole_load1&range=600'
[ "$(jv '.series[0].points | length')" -ge 2 ] || fail "samples lost in the restart"

log "SIGTERM stops the agent cleanly"
rc=0
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || rc=$?
check_not_crashed "$rc" "anole monitor --console"
assert_eq "$rc" 0 "the agent's exit status"
console_stop
