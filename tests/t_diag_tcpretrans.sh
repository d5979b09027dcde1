#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole diag tcpretrans sees retransmissions: two network namespaces of the
# test's own joined by a veth pair, 30% of the client side's packets lost
# (netem, or an nftables random drop where the kernel has no netem), a TCP
# transfer from client to server (python sockets) - the tool must report
# retransmissions of that connection (client address and port to the
# server's), with the hook chosen here and each fallback. The namespaces go
# at exit; no BPF object is left after any run.
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
need_diag
need_cmd ip tc

"$ANOLE" diag list --json >"$WORK/list.json" || fail "anole diag list failed"
runs=$(diag_json '[t for t in rows[0]["tools"] if t["name"] == "tcpretrans"][0]["runs"]' "$WORK/list.json")
[ "$runs" = True ] || skip "tcpretrans does not run on this kernel: $(cat "$WORK/list.json")"

nsa="anole-tr-a-$$"
nsb="anole-tr-b-$$"
server_pid=""
_tr_cleanup() {
	local rc=$?
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
	ip netns del "$nsa" 2>/dev/null
	ip netns del "$nsb" 2>/dev/null
	(exit "$rc")
	_diag_cleanup
}
trap _tr_cleanup EXIT

ip netns add "$nsa" || skip "cannot create network namespaces"
ip netns add "$nsb" || fail "cannot create $nsb"
ip link add vtr-a netns "$nsa" type veth peer name vtr-b netns "$nsb" || fail "cannot create the veth pair"
ip -n "$nsa" addr add 10.231.0.1/24 dev vtr-a
ip -n "$nsb" addr add 10.231.0.2/24 dev vtr-b
ip -n "$nsa" link set lo up
ip -n "$nsb" link set lo up
ip -n "$nsa" link set vtr-a up
ip -n "$nsb" link set vtr-b up
# 30% of the client's packets lost: netem where the kernel has it, else an
# nftables rule dropping them at random as they reach the server's namespace
# (not the SYN: connecting would back off for seconds)
if tc -n "$nsa" qdisc add dev vtr-a root netem loss 30% 2>/dev/null; then
	log "loss: netem on the client's veth"
elif command -v nft >/dev/null &&
	ip netns exec "$nsb" nft -f - <<'NFT'
table inet anole_loss {
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr 10.231.0.1 tcp flags & syn == 0 numgen random mod 10 < 3 drop
	}
}
NFT
then
	log "loss: no netem here; nftables numgen drop in the server's namespace"
else
	skip "no way to lose packets: neither netem (sch_netem) nor nftables numgen"
fi

cat >"$WORK/server.py" <<'PY'
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.231.0.2", 5001))
s.listen(8)
while True:
    c, _ = s.accept()
    while c.recv(65536):
        pass
    c.close()
PY
# the client sends for about 2 s, prints its local port first
cat >"$WORK/client.py" <<'PY'
import socket, sys, time
c = socket.socket()
c.settimeout(10)
c.connect(("10.231.0.2", 5001))
print(c.getsockname()[1], flush=True)
# a send blocked by retransmission back-off gives up quickly: 2 s in all
c.settimeout(0.25)
end = time.time() + 2
buf = b"x" * 16384
while time.time() < end:
    try:
        c.send(buf)
    except socket.timeout:
        pass
    except OSError:
        break
c.close()
PY
ip netns exec "$nsb" "$PY" "$WORK/server.py" &
server_pid=$!
add_pid "$server_pid"
for _ in $(seq 50); do
	ip netns exec "$nsb" ss -Hltn 2>/dev/null | grep -q '10.231.0.2:5001' && break
	sleep 0.1
done

# retrans NAME PORT: events of run NAME for 10.231.0.1:PORT -> 10.231.0.2:5001
retrans() {
	diag_json "sum(1 for r in rows if r['saddr'] == '10.231.0.1' and r['sport'] == $2 and
		r['daddr'] == '10.231.0.2' and r['dport'] == 5001 and r['ip'] == 4)" "$WORK/$1.out"
}

hooks=$(diag_json "' '.join(h for t in rows[0]['tools'] if t['name'] == 'tcpretrans' for h in t['hooks'])" "$WORK/list.json")
for h in default $hooks; do
	# the default run covers the hook it picks
	[ "$h" != default ] && grep -q "using $h " "$WORK/json-default.err" && continue
	if [ "$h" = default ]; then
		diag_start "json-$h" tcpretrans --json
	else
		diag_start "json-$h" tcpretrans --hook "$h" --json
		assert_grep "using $h" "$WORK/json-$h.err" "tcpretrans --hook $h"
	fi
	port=$(timeout 20 ip netns exec "$nsa" "$PY" "$WORK/client.py" | head -n1)
	sleep 0.3
	kill -INT "$DIAG_PID"
	diag_finish "json-$h"
	[ -n "$port" ] || fail "the client did not connect"
	n=$(retrans "json-$h" "$port")
	log "$h: $n retransmissions of 10.231.0.1:$port -> 10.231.0.2:5001"
	[ "$n" -gt 0 ] || fail "tcpretrans ($h) saw no retransmission of port $port: $(head -c 2000 "$WORK/json-$h.out")"
done

# text
diag_start text tcpretrans
port=$(timeout 20 ip netns exec "$nsa" "$PY" "$WORK/client.py" | head -n1)
sleep 0.3
kill -INT "$DIAG_PID"
diag_finish text
assert_grep "^PID  *IP LADDR:LPORT  *T> RADDR:RPORT  *STATE$" "$WORK/text.out" "header"
assert_grep "^[0-9][0-9]*  *4  *10.231.0.1:$port  *R> 10.231.0.2:5001  *[A-Z_]*[A-Z]$" "$WORK/text.out" "text: a retransmission"
log "pass"
