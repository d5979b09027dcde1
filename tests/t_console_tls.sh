#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole console's second listener, HTTPS (--tls-listen/--tls-cert/--tls-key,
# libmicrohttpd's TLS): a client verifying against the test CA logs in and
# reads the host list; the session cookies are Secure there (and not on
# plain HTTP); plain HTTP sent to the HTTPS port gets no API answer; a
# missing key file is a clear error at start.
# needs-features: console
. "$TESTDIR/lib.sh"
. "$TESTDIR/console_lib.sh"
need_cmd curl jq openssl

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
	-addext subjectAltName=IP:127.0.0.1,DNS:localhost \
	-keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
TLS_PORT=$(free_port)
run_rc rc "$ANOLE" console serve --listen 127.0.0.1:0 --data "$WORK/bad" \
	--tls-listen "127.0.0.1:$TLS_PORT" --tls-cert "$WORK/cert.pem" --tls-key "$WORK/nokey.pem"
check_not_crashed "$rc" "console serve with a missing key"
assert_eq "$rc" 1 "console serve with a missing key"
log "HTTPS listener"
console_start --tls-listen "127.0.0.1:$TLS_PORT" --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem"

code=$(curl -s -o "$WORK/tls.out" -w '%{http_code}' --cacert "$WORK/cert.pem" -c "$WORK/tls.jar" -D "$WORK/tls.hdr" \
	-X POST --data-binary "{\"user\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}" "https://127.0.0.1:$TLS_PORT/api/v1/login")
assert_eq "$code" 200 "login over HTTPS"
assert_grep '^Set-Cookie: anole_session=.*HttpOnly' "$WORK/tls.hdr" "session cookie"
assert_eq "$(grep -c '^Set-Cookie: .*; Secure' "$WORK/tls.hdr")" 2 "Secure cookies over HTTPS"
code=$(curl -s -o "$WORK/tls.out" -w '%{http_code}' --cacert "$WORK/cert.pem" -b "$WORK/tls.jar" \
	"https://127.0.0.1:$TLS_PORT/api/v1/hosts")
assert_eq "$code" 200 "host list over HTTPS"
assert_eq "$(jq -r type "$WORK/tls.out")" array "host list over HTTPS"
# plain HTTP on the plain port: cookies without Secure
curl -s -o /dev/null -D "$WORK/plain.hdr" -X POST \
	--data-binary "{\"user\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}" "$URL/api/v1/login"
assert_grep '^Set-Cookie: anole_session=' "$WORK/plain.hdr" "login over HTTP"
assert_no_grep 'Secure' "$WORK/plain.hdr" "cookies over plain HTTP"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$TLS_PORT/api/v1/hosts" || true)
[ "$code" != 200 ] && [ "$code" != 401 ] || fail "plain HTTP on the HTTPS port answered $code"
console_stop
