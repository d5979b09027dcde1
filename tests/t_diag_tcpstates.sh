#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole diag tcpstates sees a TCP connection's life: a python listener and
# client on loopback connect, send, and close (client first) - the client
# socket must go CLOSE -> SYN_SENT -> ESTABLISHED -> FIN_WAIT1 -> FIN_WAIT2
# -> CLOSE and the server's SYN_RECV -> ESTABLISHED -> CLOSE_WAIT ->
# LAST_ACK -> CLOSE, with the hook chosen here and each fallback; -D (remote
# port) keeps only the client's side; text output. No BPF object is left.
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
need_diag

"$ANOLE" diag list --json >"$WORK/list.json" || fail "anole diag list failed"
runs=$(diag_json '[t for t in rows[0]["tools"] if t["name"] == "tcpstates"][0]["runs"]' "$WORK/list.json")
[ "$runs" = True ] || skip "tcpstates does not run on this kernel: $(cat "$WORK/list.json")"

# one connection on loopback to port $1 (free: picked just before)
cat >"$WORK/conn.py" <<'PY'
import socket, sys, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1])))
l.listen(1)
c = socket.socket()
c.connect(l.getsockname())
s, _ = l.accept()
print(c.getsockname()[1], flush=True)
c.sendall(b"hello")
time.sleep(0.1)
c.close()                  # client: FIN_WAIT1, then FIN_WAIT2 on the ACK
while s.recv(4096):        # server: CLOSE_WAIT at the FIN; then EOF
    pass
time.sleep(0.1)
s.close()                  # server: LAST_ACK -> CLOSE; client: -> CLOSE (time-wait)
l.close()
time.sleep(0.2)
PY
# states NAME COND: the newstates, in order, of the socket of the first
# event of run NAME for which the python condition COND on r holds
states() {
	diag_json "' '.join(r['newstate'] for r in rows if r['skaddr'] ==
		next((x['skaddr'] for x in rows if (lambda r: $2)(x)), None))" "$WORK/$1.out"
}

client_want="SYN_SENT ESTABLISHED FIN_WAIT1 FIN_WAIT2 CLOSE"
server_want="SYN_RECV ESTABLISHED CLOSE_WAIT LAST_ACK CLOSE"

# run NAME ARGS...: the tool with ARGS while one connection to PORT (set
# by the caller) comes and goes; sets CPORT (the client's port)
run() {
	local name=$1
	shift
	diag_start "$name" tcpstates "$@"
	CPORT=$("$PY" "$WORK/conn.py" "$PORT")
	sleep 0.3
	kill -INT "$DIAG_PID"
	diag_finish "$name"
	[ -n "$CPORT" ] || fail "$name: the connection script failed"
}

hooks=$(diag_json "' '.join(h for t in rows[0]['tools'] if t['name'] == 'tcpstates' for h in t['hooks'])" "$WORK/list.json")
for h in default $hooks; do
	[ "$h" != default ] && grep -q "using $h " "$WORK/json-default.err" && continue
	PORT=$(free_port)
	if [ "$h" = default ]; then
		run "json-$h" --json
	else
		run "json-$h" --hook "$h" --json
		assert_grep "using $h" "$WORK/json-$h.err" "tcpstates --hook $h"
	fi
	# the client's first event (-> SYN_SENT) has its remote port, not yet its own
	got=$(states "json-$h" "r['saddr'] == '127.0.0.1' and r['dport'] == $PORT and r['newstate'] == 'SYN_SENT'")
	assert_eq "$got" "$client_want" "tcpstates ($h): client :$CPORT -> :$PORT"
	got=$(states "json-$h" "r['saddr'] == '127.0.0.1' and r['sport'] == $PORT and r['dport'] == $CPORT")
	assert_eq "$got" "$server_want" "tcpstates ($h): server :$PORT <- :$CPORT"
	log "$h: client $client_want; server $server_want"
done

# -D: only sockets whose remote port is the server's: the client's side
PORT=$(free_port)
run remote -D "$PORT" --json
got=$(states remote "r['dport'] == $PORT and r['newstate'] == 'SYN_SENT'")
assert_eq "$got" "$client_want" "tcpstates -D: client"
others=$(diag_json "len([r for r in rows if r['dport'] != $PORT])" "$WORK/remote.out")
assert_eq "$others" 0 "tcpstates -D $PORT: events of other remote ports"

# text, as libbpf-tools
PORT=$(free_port)
run text
assert_grep "^SKADDR  *PID  *COMM  *LADDR  *LPORT  *RADDR  *RPORT  *OLDSTATE  *-> NEWSTATE  *MS$" "$WORK/text.out" "header"
assert_grep "^[0-9a-f]*  *[0-9]*  *python3  *127.0.0.1  *[0-9]*  *127.0.0.1  *$PORT  *SYN_SENT  *-> ESTABLISHED  *[0-9.]*$" \
	"$WORK/text.out" "text: the client's connect"
log "pass"
