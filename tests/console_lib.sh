# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Helpers for the console tests (t_console_*.sh), after lib.sh:
#   console_start [serve options]   a console on a free loopback port, data in
#                                   $WORK/console (kept across restarts), an
#                                   admin user and an agent token ($WORK/token)
#   console_stop                    SIGTERM, exit status 0, no sanitizer report
#   login USER PASSWORD             a session: cookie jar $WORK/USER.jar, $CSRF
#   api METHOD PATH [JSON]          as the logged-in user (CSRF header sent);
#                                   status in $API_STATUS, body in $WORK/api.out
#   expect STATUS METHOD PATH [JSON]
#   jv FILTER                       a jq filter on the last body (jq -r)
#   agent_start NAME [options]      `anole monitor --console`; $AGENT_PID
#   wait_until SECONDS WHAT CMD...  poll CMD every 0.2 s
CONSOLE_DATA=$WORK/console
ADMIN_PASSWORD=admin-password-1

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

console_start() {
	mkdir -p "$CONSOLE_DATA"
	if [ ! -e "$WORK/token" ]; then
		echo "$ADMIN_PASSWORD" | "$ANOLE" console user add admin --role admin --data "$CONSOLE_DATA" >/dev/null
		(umask 077; "$ANOLE" console token create --data "$CONSOLE_DATA" >"$WORK/token")
	fi
	CONSOLE_PORT=${CONSOLE_PORT:-$(free_port)}
	# a host is down after 5 missed heartbeats of 1 s: an agent stalled that
	# long on a loaded machine (ASan, a slow console answer) stays up, and a
	# dead one is down in ~6 s, well inside the tests' 30 s waits
	"$ANOLE" console serve --listen "127.0.0.1:$CONSOLE_PORT" --data "$CONSOLE_DATA" \
		--heartbeat-interval "${HEARTBEAT:-1}" --missed-heartbeats 5 "$@" >>"$WORK/console.log" 2>&1 &
	CONSOLE_PID=$!
	add_pid "$CONSOLE_PID"
	URL=http://127.0.0.1:$CONSOLE_PORT
	for _ in $(seq 300); do
		curl -s -o /dev/null "$URL/api/v1/session" && return 0
		kill -0 "$CONSOLE_PID" 2>/dev/null || { cat "$WORK/console.log" >&2; fail "anole console serve exited"; }
		sleep 0.1
	done
	fail "the console does not answer after 30 s"
}

console_stop() {
	local rc=0
	kill -TERM "$CONSOLE_PID"
	wait "$CONSOLE_PID" || rc=$?
	check_not_crashed "$rc" "anole console serve"
	[ "$rc" -eq 0 ] || { tail -n 20 "$WORK/console.log" >&2; fail "anole console serve exited $rc"; }
}

login() {
	JAR=$WORK/$1.jar
	rm -f "$JAR"
	CSRF=
	api POST /api/v1/login "{\"user\":\"$1\",\"password\":\"$2\"}"
	[ "$API_STATUS" = 200 ] || { cat "$WORK/api.out" >&2; fail "login as $1: $API_STATUS"; }
	CSRF=$(awk '$6 == "csrf_token" { print $7 }' "$JAR")
	[ -n "$CSRF" ] || fail "login as $1 set no csrf_token cookie"
}

api() {
	local args=(-s -o "$WORK/api.out" -w '%{http_code}' -X "$1")
	[ -n "${JAR:-}" ] && args+=(-b "$JAR" -c "$JAR")
	[ -n "${CSRF:-}" ] && args+=(-H "X-CSRF-Token: $CSRF")
	[ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	API_STATUS=$(curl "${args[@]}" "$URL$2") || API_STATUS=000
}

expect() {
	local want=$1; shift
	api "$@"
	[ "$API_STATUS" = "$want" ] || { cat "$WORK/api.out" >&2; fail "$*: status $API_STATUS, expected $want"; }
}

# jq, not python: python takes seconds to start on a loaded machine
jv() { jq -r "$1" "$WORK/api.out"; }

agent_start() {
	local name=$1; shift
	"$ANOLE" monitor --console "$URL" --token-file "$WORK/token" --name "$name" \
		--interval 1 "$@" >>"$WORK/agent-$name.log" 2>&1 &
	AGENT_PID=$!
	add_pid "$AGENT_PID"
}

wait_until() {
	local secs=$1 what=$2 i; shift 2
	for i in $(seq $((secs * 5))); do
		"$@" && return 0
		sleep 0.2
	done
	fail "$what: not within $secs s"
}

# host_status NAME: up, down or "none"
host_status() {
	api GET "/api/v1/hosts/$1"
	if [ "$API_STATUS" = 200 ]; then jv .status; else echo none; fi
}
