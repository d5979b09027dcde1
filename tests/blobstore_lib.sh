# SPDX-License-Identifier: Apache-2.0
# Helpers for the blob store tests (t_blobstore_*.sh); source after lib.sh:
#     . "$TESTDIR/lib.sh"; . "$TESTDIR/blobstore_lib.sh"
# Servers started here are registered with add_pid: lib.sh's EXIT trap kills
# them by pid, on failure too.

# Everything here talks to 127.0.0.1 only: never through a proxy.
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy

ERR=$WORK/err

# rc_err WANT CMD...: like assert_rc, but CMD's stderr goes to $ERR (shown
# when the status is wrong) while the helper's own messages stay visible.
rc_err() {
	local want=$1; shift
	local rc=0
	"$@" 2>"$ERR" || rc=$?
	case "|$want|" in *"|$rc|"*) ;; *) sed 's/^/    | /' "$ERR" | head -20 >&2 ;; esac
	check_not_crashed "$rc" "$*"
	case "|$want|" in *"|$rc|"*) ;; *) fail "'$*' exited $rc, expected $want" ;; esac
}

# wait_for_file FILE SECONDS
wait_for_file() {
	local f=$1 i
	for ((i = 0; i < $2 * 20; i++)); do
		[ -s "$f" ] && return 0
		sleep 0.05
	done
	return 1
}

# start_fault_server DIR [httpd_fault.py options...]: sets FS_PORT and FS_URL
# (https:// with --tls-cert CERT, which the helpers below then trust).
FS_CURL=(curl -sf)
start_fault_server() {
	local dir=$1; shift
	local pf="$WORK/.fault.port" pid scheme=http a prev=
	FS_CURL=(curl -sf)
	for a; do
		[ "$prev" = --tls-cert ] && { scheme=https; FS_CURL=(curl -sf --cacert "$a"); }
		prev=$a
	done
	rm -f "$pf"
	# (--max-seconds only bounds a server the EXIT trap failed to kill: a
	# whole test on a loaded host may take longer than 300 s, and the server
	# must outlive it)
	"$PY" "$TESTDIR/httpd_fault.py" --dir "$dir" --port-file "$pf" --max-seconds 1800 "$@" \
		>>"$WORK/httpd_fault.log" 2>&1 &
	pid=$!
	add_pid "$pid"
	wait_for_file "$pf" 10 || { cat "$WORK/httpd_fault.log" >&2; fail "httpd_fault.py did not start"; }
	FS_PORT=$(cat "$pf")
	FS_URL="$scheme://127.0.0.1:$FS_PORT"
	log "fault server on port $FS_PORT (pid $pid)"
}

# fault JSON: queue a fault on the fault server.
fault() {
	"${FS_CURL[@]}" -X POST --data "$1" "$FS_URL/_fault" >/dev/null || fail "cannot set fault $1"
}
reset_stats() {
	"${FS_CURL[@]}" -X POST "$FS_URL/_reset" >/dev/null || fail "cannot reset the fault server's stats"
	fault '{"mode": "none"}'
}
# fs_stat EXPR: evaluate a Python expression on the server's /_stats document `d`.
fs_stat() {
	"${FS_CURL[@]}" "$FS_URL/_stats" >"$WORK/.stats.json" || fail "cannot read /_stats"
	"$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$WORK/.stats.json" "$1"
}

# make_blob FILE SIZE: random bytes; prints the file's sha256 digest.
make_blob() {
	head -c "$2" /dev/urandom >"$1"
	echo "sha256:$(sha256 "$1")"
}

# same_bytes EXPECTED_FILE ACTUAL_FILE WHAT
same_bytes() {
	cmp -s "$1" "$2" || fail "$3: bytes differ ($(file_size "$2") bytes, want $(file_size "$1"))"
}

# expect_range FILE OFF LEN STORE DIGEST [anole options]: `anole blob cat`
# of a range equals dd of the file.
expect_range() {
	local file=$1 off=$2 len=$3 store=$4 digest=$5; shift 5
	dd if="$file" of="$WORK/.want" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$len" \
		status=none
	assert_rc 0 "$ANOLE" blob cat "$store" "$digest" --offset "$off" --length "$len" "$@" \
		-o "$WORK/.got"
	same_bytes "$WORK/.want" "$WORK/.got" "range $off+$len of $digest from $store"
}

