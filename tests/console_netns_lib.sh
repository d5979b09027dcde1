# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Shared by the console tests that need network namespaces (t_console_browser,
# t_console_prometheus), after lib.sh (and
# diag_lib.sh, if used: this file's EXIT trap chains to its): a console in a
# network namespace of its own and agents each in another, joined to the
# console's by a veth pair, so every host has its own address, as on a
# fleet. Names are prefixed cw and carry the test's pid (unique on a shared
# machine); the namespaces and everything started here go at exit.
#
#   console_need              skip unless anole has the console and root/netns work
#   console_netns             the console's namespace ($CW_NS) with lo up
#   console_start [ARGS...]   anole console serve in it; sets CW_URL, CW_PID
#   console_admin NAME        an admin user; password in $CW_PASS
#   console_agent NAME I [TOKEN_FILE]  an agent in namespace $CW_NS-aI at
#                             10.77.I.2:9100, registered with TOKEN_FILE's token
#                             (default: a new one); sets CW_AGENT_PID
#   console_wait_up NAME...   until the API lists every NAME as up
#   console_api METHOD PATH [JSON]   curl as the admin (session + CSRF) in CW_NS

need_root
need_cmd ip curl

CW_ID=$$
CW_NS="cw$CW_ID"
CW_PORT=18080
CW_NSES=()
_cw_pids=()

console_need() {
	"$ANOLE" console --help >/dev/null 2>&1 || skip "anole was built without the console ('anole console' is missing)"
	need_feature monitor
}

_cw_cleanup() {
	local rc=$? p n next=_cleanup
	set +e
	declare -F _diag_cleanup >/dev/null && next=_diag_cleanup
	for p in "${_cw_pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${_cw_pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for n in "${CW_NSES[@]}"; do ip netns del "$n" 2>/dev/null; done
	# the next trap reads the test's exit status from $?
	(exit "$rc")
	"$next"
}
trap _cw_cleanup EXIT

# cw_bg LOG CMD...: start CMD in the background, killed at exit; sets CW_BG
cw_bg() {
	local log=$1; shift
	"$@" >"$log" 2>&1 &
	CW_BG=$!
	_cw_pids+=("$CW_BG")
}

console_netns() {
	ip netns add "$CW_NS" || skip "cannot create network namespaces"
	CW_NSES+=("$CW_NS")
	ip -n "$CW_NS" link set lo up
}

console_start() {
	mkdir -p "$WORK/console"
	# 5 missed heartbeats, as console_lib.sh: an agent stalled a few seconds
	# on a loaded machine does not go down (and fail the diagnosis it runs)
	cw_bg "$WORK/console.log" ip netns exec "$CW_NS" "$ANOLE" console serve \
		--listen "0.0.0.0:$CW_PORT" --data "$WORK/console" \
		--port-file "$WORK/console.port" --missed-heartbeats 5 "$@"
	CW_PID=$CW_BG
	for _ in $(seq 300); do
		[ -s "$WORK/console.port" ] && \
			ip netns exec "$CW_NS" curl -s -o /dev/null "http://127.0.0.1:$CW_PORT/" && break
		kill -0 "$CW_PID" 2>/dev/null || { cat "$WORK/console.log" >&2; fail "anole console serve exited"; }
		sleep 0.1
	done
	CW_URL="http://127.0.0.1:$CW_PORT/"
}

console_admin() {
	CW_USER=$1
	CW_PASS=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(12))')
	printf '%s\n' "$CW_PASS" | "$ANOLE" console user add "$CW_USER" --role admin --data "$WORK/console" \
		|| fail "console user add $CW_USER failed"
}

console_agent() {
	local name=$1 i=$2 ns="$CW_NS-a$2" tok=${3:-$WORK/token-$1}
	ip netns add "$ns" || fail "cannot create $ns"
	CW_NSES+=("$ns")
	ip link add "cw${CW_ID}c$i" netns "$CW_NS" type veth peer name eth0 netns "$ns" \
		|| fail "cannot create the veth pair for $name"
	ip -n "$CW_NS" addr add "10.77.$i.1/24" dev "cw${CW_ID}c$i"
	ip -n "$ns" addr add "10.77.$i.2/24" dev eth0
	ip -n "$CW_NS" link set "cw${CW_ID}c$i" up
	ip -n "$ns" link set eth0 up
	ip -n "$ns" link set lo up
	if [ ! -s "$tok" ]; then
		(umask 077; "$ANOLE" console token create --data "$WORK/console" --note "$name" >"$tok") \
			|| fail "console token create failed"
		[ "$(wc -l <"$tok")" -eq 1 ] || fail "token create printed more than the token: $(cat "$tok")"
	fi
	cw_bg "$WORK/agent-$name.log" ip netns exec "$ns" "$ANOLE" monitor \
		--listen "10.77.$i.2:9100" --interval 1 ${CW_AGENT_ARGS:-} \
		--console "http://10.77.$i.1:$CW_PORT" --token-file "$tok" --name "$name"
	CW_AGENT_PID=$CW_BG
}

# console_api METHOD PATH [JSON]: as $CW_USER; logs in on first use.
console_api() {
	local method=$1 path=$2 body=${3:-}
	local jar="$WORK/cookies"
	if [ ! -s "$jar" ]; then
		ip netns exec "$CW_NS" curl -sf -c "$jar" -H 'Content-Type: application/json' \
			--data "$("$PY" -c 'import json,sys; print(json.dumps({"user": sys.argv[1], "password": sys.argv[2]}))' "$CW_USER" "$CW_PASS")" \
			"${CW_URL}api/v1/login" >/dev/null || fail "API login failed"
	fi
	local csrf
	csrf=$(awk '$6 == "csrf_token" { print $7 }' "$jar")
	ip netns exec "$CW_NS" curl -s -b "$jar" -X "$method" -H "X-CSRF-Token: $csrf" \
		-H 'Content-Type: application/json' ${body:+--data "$body"} "${CW_URL}api/v1/$path"
}

# console_wait_up SECONDS NAME...: every NAME listed as up within SECONDS
console_wait_up() {
	local secs=$1; shift
	local deadline=$((SECONDS + secs)) hosts
	while [ "$SECONDS" -lt "$deadline" ]; do
		console_api GET hosts >"$WORK/hosts.json"
		if "$PY" - "$WORK/hosts.json" "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
hosts = d if isinstance(d, list) else d.get("hosts", [])
up = {h["name"] for h in hosts if h.get("status") == "up"}
sys.exit(0 if set(sys.argv[2:]) <= up else 1)
PY
		then return 0; fi
		for p in "${_cw_pids[@]}"; do kill -0 "$p" 2>/dev/null || { tail -n 20 "$WORK"/*.log >&2; fail "pid $p (console or agent) exited"; }; done
		sleep 0.3
	done
	cat "$WORK/hosts.json" >&2
	tail -n 20 "$WORK"/agent-*.log >&2
	fail "hosts $* not all up within $secs s"
}
