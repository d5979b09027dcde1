#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole console's API refuses what it must, with the right status and
# nothing done: every endpoint without a session is 401; a viewer posting a
# diagnosis, a POST without (or with a wrong) X-CSRF-Token, a role below the
# endpoint's are 403; a bad agent token is 401 and registers nothing; an
# agent token cannot take over another token's host; unknown host 404;
# unknown tool, an option outside the allow-list or out of range, a
# duration over the limit, unknown JSON fields, bad JSON are 400 and queue
# nothing; a body over the limit is 413; a second diagnosis on a busy host
# is 409; static files do not escape the web directory; repeated wrong
# passwords end in 429. State changes, refused ones too, are in the audit log.
# needs-features: console
. "$TESTDIR/lib.sh"
. "$TESTDIR/console_lib.sh"
need_cmd curl jq
# the host registered by hand heartbeats only when the test says
HEARTBEAT=600

mkdir -p "$WORK/web/sub"
echo '<html>console-index-marker</html>' >"$WORK/web/index.html"
echo 'app' >"$WORK/web/sub/app.js"
echo 'hidden' >"$WORK/web/.hidden"
echo 'top-secret-marker' >"$WORK/secret"
ln -s "$WORK/secret" "$WORK/web/link"
console_start --web-dir "$WORK/web"

log "every endpoint without a session: 401"
JAR= CSRF=
for ep in "GET /api/v1/session" "GET /api/v1/tools" "GET /api/v1/hosts" "GET /api/v1/hosts/h1" \
	"GET /api/v1/hosts/h1/metrics" "GET /api/v1/hosts/h1/diagnoses" "GET /api/v1/diagnoses/1" \
	"GET /api/v1/alerts/rules" "GET /api/v1/alerts/events" "GET /api/v1/audit" \
	"GET /api/v1/users" "GET /api/v1/tokens" "POST /api/v1/logout" \
	"POST /api/v1/hosts/h1/diagnoses" "POST /api/v1/alerts/rules" "POST /api/v1/users" \
	"POST /api/v1/tokens" "DELETE /api/v1/hosts/h1" "DELETE /api/v1/alerts/rules/1" \
	"DELETE /api/v1/users/admin" "DELETE /api/v1/tokens/1" \
	"POST /api/v1/agent/heartbeat" "POST /api/v1/agent/diagnoses/1"; do
	# shellcheck disable=SC2086
	expect 401 $ep '{}'
	[ -n "$(jv .error)" ] || fail "$ep: no error message"
done
expect 404 GET /api/v1/nothing-here

log "wrong password, unknown user: 401"
expect 401 POST /api/v1/login '{"user":"admin","password":"wrong-password"}'
expect 401 POST /api/v1/login '{"user":"nobody","password":"wrong-password"}'
expect 400 POST /api/v1/login '{"user":"admin","password":"x","extra":1}'
login admin "$ADMIN_PASSWORD"

log "users by an admin; roles"
expect 201 POST /api/v1/users '{"name":"vera","role":"viewer","password":"viewer-pass-1"}'
expect 201 POST /api/v1/users '{"name":"otto","role":"operator","password":"operator-pass-1"}'
expect 409 POST /api/v1/users '{"name":"otto","role":"operator","password":"operator-pass-1"}'
expect 400 POST /api/v1/users '{"name":"bad name","role":"viewer","password":"12345678"}'
expect 400 POST /api/v1/users '{"name":"x","role":"root","password":"12345678"}'
expect 201 POST /api/v1/tokens '{"note":"second"}'
TOKEN2=$(jv .token)

log "bad agent token: 401, nothing registered"
api_agent() { # TOKEN PATH JSON
	AGENT_STATUS=$(curl -s -o "$WORK/agent.out" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $1" --data-binary "$3" "$URL$2")
}
api_agent "$(printf 'f%.0s' $(seq 64))" /api/v1/agent/heartbeat '{"name":"evil","metrics_port":1}'
assert_eq "$AGENT_STATUS" 401 "heartbeat with a bad token"
api_agent "short" /api/v1/agent/heartbeat '{"name":"evil","metrics_port":1}'
assert_eq "$AGENT_STATUS" 401 "heartbeat with a short token"
expect 404 GET /api/v1/hosts/evil
TOKEN=$(cat "$WORK/token")
api_agent "$TOKEN" /api/v1/agent/heartbeat '{"name":"h1","metrics_port":1,"running":null}'
assert_eq "$AGENT_STATUS" 200 "heartbeat with the token"
assert_eq "$(host_status h1)" up "h1 after its heartbeat"
api_agent "$TOKEN" /api/v1/agent/heartbeat '{"name":"h\"x","metrics_port":1}'
assert_eq "$AGENT_STATUS" 400 "a host name with a quote"
api_agent "$TOKEN" /api/v1/agent/heartbeat '{"name":"h2","metrics_port":1,"root":true}'
assert_eq "$AGENT_STATUS" 400 "a heartbeat with an unknown field"
api_agent "$TOKEN2" /api/v1/agent/heartbeat '{"name":"h1","metrics_port":1}'
assert_eq "$AGENT_STATUS" 409 "another token taking over h1"

log "viewer: reads, cannot diagnose (403)"
login vera viewer-pass-1
expect 200 GET /api/v1/hosts
assert_eq "$(jv '.[0].name')" h1 "host list"
expect 403 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat","duration":2}'
expect 403 GET /api/v1/users
expect 403 POST /api/v1/alerts/rules '{"name":"r","metric":"m","comparison":">","threshold":1}'

log "operator: CSRF double submit"
login otto operator-pass-1
SAVED=$CSRF
CSRF= expect 403 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat","duration":2}'
CSRF=$(printf '0%.0s' $(seq 64)) expect 403 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat","duration":2}'
CSRF=$SAVED
expect 403 POST /api/v1/users '{"name":"x","role":"admin","password":"12345678"}'

log "bad diagnoses: the right 4xx, nothing queued"
expect 404 POST /api/v1/hosts/nohost/diagnoses '{"tool":"runqlat","duration":2}'
expect 400 POST /api/v1/hosts/h1/diagnoses '{"tool":"rm","duration":2}'
expect 400 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat;reboot","duration":2}'
expect 400 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat","duration":2,"options":{"cgroup":"/"}}'
assert_grep 'not allowed' "$WORK/api.out" "option outside the allow-list"
expect 400 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat","duration":2,"options":{"pid":"1; reboot"}}'
expect 400 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat","duration":2,"options":{"pid":-1}}'
expect 400 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat","duration":61}'
assert_grep 'duration' "$WORK/api.out" "duration over the limit"
expect 400 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat","duration":0.5}'
expect 400 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat","duration":2,"command":"id"}'
expect 400 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat",'
expect 400 POST /api/v1/hosts/h1/diagnoses '["runqlat"]'
head -c $((3 << 20)) /dev/zero | tr '\0' ' ' >"$WORK/big.json"
API_STATUS=$(curl -s -o "$WORK/api.out" -w '%{http_code}' -b "$JAR" -H "X-CSRF-Token: $CSRF" \
	-X POST --data-binary @"$WORK/big.json" "$URL/api/v1/hosts/h1/diagnoses")
assert_eq "$API_STATUS" 413 "a 3 MiB body"
expect 200 GET /api/v1/hosts/h1/diagnoses
assert_eq "$(jv length)" 0 "diagnoses queued by bad requests"
api_agent "$TOKEN" /api/v1/agent/heartbeat '{"name":"h1","metrics_port":1,"running":null}'
assert_eq "$(jq '.work | length' "$WORK/agent.out")" 0 "work handed to the agent after bad requests"

log "a good diagnosis is queued once, handed to its agent only"
expect 201 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat","duration":2,"options":{"milliseconds":true}}'
ID=$(jv .id)
expect 409 POST /api/v1/hosts/h1/diagnoses '{"tool":"runqlat","duration":2}'
api_agent "$TOKEN" /api/v1/agent/heartbeat '{"name":"h1","metrics_port":1,"running":null}'
jq -e --argjson id "$ID" '.work | length == 1 and .[0].id == $id and .[0].tool == "runqlat"
	and .[0].options == {"milliseconds": true}' "$WORK/agent.out" >/dev/null ||
	{ cat "$WORK/agent.out" >&2; fail "the heartbeat's work"; }
api_agent "$TOKEN2" "/api/v1/agent/diagnoses/$ID" '{"status":"done","result":[]}'
assert_eq "$AGENT_STATUS" 404 "another token's agent reporting h1's diagnosis"
api_agent "$TOKEN" "/api/v1/agent/diagnoses/$ID" '{"status":"done","result":[{"tool":"runqlat"}]}'
assert_eq "$AGENT_STATUS" 200 "h1's agent reporting"
api_agent "$TOKEN" "/api/v1/agent/diagnoses/$ID" '{"status":"done","result":[]}'
assert_eq "$AGENT_STATUS" 404 "a second report of a finished diagnosis"
expect 200 GET "/api/v1/diagnoses/$ID"
assert_eq "$(jv '.status + " " + .result[0].tool')" "done runqlat" "the diagnosis"
expect 404 GET /api/v1/diagnoses/999
expect 404 GET /api/v1/diagnoses/-1

log "alert rules"
expect 400 POST /api/v1/alerts/rules '{"name":"r1","metric":"anole_load1","comparison":"!=","threshold":1}'
expect 400 POST /api/v1/alerts/rules '{"name":"r1","metric":"x{y}","comparison":">","threshold":1}'
expect 400 POST /api/v1/alerts/rules '{"name":"r1","metric":"anole_load1","comparison":">","threshold":1,"webhook":"file:///etc/passwd"}'
expect 201 POST /api/v1/alerts/rules '{"name":"r1","metric":"anole_pressure_ratio","labels":{"resource":"cpu","kind":"some","window":"10s"},"comparison":">","threshold":0.5,"for":60,"severity":"critical"}'
expect 409 POST /api/v1/alerts/rules '{"name":"r1","metric":"anole_load1","comparison":">","threshold":1}'
api GET '/api/v1/alerts/rules?format=prometheus'
assert_grep 'alert: r1' "$WORK/api.out" "Prometheus rules"
assert_grep 'anole_pressure_ratio{.*resource="cpu".*} > 0.5' "$WORK/api.out" "Prometheus rule expression"

log "static files stay below the web directory"
static() { curl -s --path-as-is -o "$WORK/static.out" -w '%{http_code}' "$URL$1"; }
assert_eq "$(static /)" 200 "/"
assert_grep console-index-marker "$WORK/static.out" "index.html"
assert_eq "$(static /sub/app.js)" 200 "/sub/app.js"
for p in /../secret /sub/../../secret /%2e%2e/secret /..%2fsecret /.hidden /link //etc/passwd \
	/sub/ /nothing.html; do
	code=$(static "$p")
	[ "$code" = 404 ] || [ "$code" = 400 ] || fail "GET $p: $code"
	assert_no_grep top-secret-marker "$WORK/static.out" "GET $p"
done
# libmicrohttpd decodes %00 into the path: it ends there, so this is index.html
static '/index.html%00/../../secret' >/dev/null
assert_no_grep top-secret-marker "$WORK/static.out" "GET /index.html%00/../../secret"

log "the audit log has the changes, refused ones too"
login admin "$ADMIN_PASSWORD"
expect 200 GET '/api/v1/audit?limit=1000'
audit_has() { # jq condition on an entry
	jq -e "any(.[]; $1)" "$WORK/api.out" >/dev/null || fail "audit log: no entry with $1"
}
audit_has '.user == "otto" and .action == "diagnosis.create" and .result == 201 and .peer == "127.0.0.1"'
audit_has '.user == "otto" and .result == 403'
audit_has '.user == "vera" and .action == "diagnosis.create" and .result == 403'
audit_has '.action == "login" and .target == "admin" and .result == 401'
audit_has '.user == "agent" and .result == 401'
audit_has '.user == "agent" and .action == "agent.register" and .target == "h1"'
audit_has '.user == "admin" and .action == "user.create" and .target == "vera" and .result == 201'
jq -e 'all(.[]; .ts > 0 and .action != null)' "$WORK/api.out" >/dev/null || fail "audit entries without time or action"

log "logout ends the session"
expect 200 POST /api/v1/logout
expect 401 GET /api/v1/hosts

log "repeated wrong passwords: 429"
JAR= CSRF=
# (earlier failures may still count: at most 5 more attempts before 429)
for i in 1 2 3 4 5 6; do
	api POST /api/v1/login '{"user":"admin","password":"wrong-password"}'
	[ "$API_STATUS" = 429 ] && break
	assert_eq "$API_STATUS" 401 "wrong password, attempt $i"
done
assert_eq "$API_STATUS" 429 "the sixth wrong password in a minute"
# the right password too, from that address, for a while
expect 429 POST /api/v1/login "{\"user\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}"
console_stop
