# SPDX-License-Identifier: Apache-2.0
# Helpers for the lazy-mount tests (t_lazy_*.sh); source after lib.sh:
#     . "$TESTDIR/lib.sh"; . "$TESTDIR/lazy_lib.sh"
#
# Every mount made by lazy_mount is undone by the EXIT trap, on failure too,
# before lib.sh's own cleanup: `anole image umount --lazy`, then SIGKILL of
# that mount's daemon (its pid from its own state directory, never by name)
# and a lazy unmount of what is left (the tree and, in kernel mode, the FUSE
# directory of blobs in the state directory).

LAZY_CHECK="$TESTDIR/lazy_check.py"
: >"$_STATE/lazy_mounts"

# lazy_state_dir MNT: the daemon's state directory (as image/lazy/mount.c
# derives it: the first 8 bytes of SHA-256 of the absolute mount point).
lazy_state_dir() {
	local m
	m=$(readlink -f "$1")
	echo "/run/anole/mounts/$(printf '%s' "$m" | sha256sum | cut -c1-16)"
}
# lazy_pid MNT: pid of the daemon serving MNT, or nothing (the pid file
# holds "PID START_TIME BOOT_ID", see image/lazy/state.c).
lazy_pid() {
	local f
	f="$(lazy_state_dir "$1")/pid"
	[ -s "$f" ] && cut -d' ' -f1 "$f"
	true
}
pid_alive() { # PID: alive and not a zombie
	local s
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
	s=$(awk '{ sub(/.*\) /, ""); print substr($0, 1, 1) }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "$s" != Z ] && [ "$s" != X ]
}

# lazy_mount IMG MNT STORE MODE [anole image mount options...]
lazy_mount() {
	local img=$1 mnt=$2 store=$3 mode=$4 rc=0
	shift 4
	mkdir -p "$mnt"
	echo "$(readlink -f "$mnt")" >>"$_STATE/lazy_mounts"
	"$ANOLE" image mount "$img" "$mnt" --blobs "$store" --mode "$mode" "$@" || rc=$?
	check_not_crashed "$rc" "anole image mount $mode"
	if [ "$rc" -ne 0 ]; then
		tail -n 20 "$(lazy_state_dir "$mnt")/log" 2>/dev/null | sed 's/^/    daemon log: /' >&2
		fail "anole image mount $img $mnt --blobs $store --mode $mode $* exited $rc"
	fi
	mountpoint -q "$mnt" || fail "anole image mount returned but $mnt is not a mount point"
	LAZY_PID=$(lazy_pid "$mnt")
	[ -n "$LAZY_PID" ] || fail "no pid file in $(lazy_state_dir "$mnt")"
	pid_alive "$LAZY_PID" || fail "the daemon of $mnt (pid $LAZY_PID) is not running"
}

# lazy_umount MNT: `anole image umount` that must leave no mount, no daemon,
# no FUSE directory of blobs and no pid file behind.
lazy_umount() {
	local mnt=$1 pid state rc=0 i
	mnt=$(readlink -f "$mnt")
	state=$(lazy_state_dir "$mnt")
	pid=$(lazy_pid "$mnt")
	"$ANOLE" image umount "$mnt" || rc=$?
	check_not_crashed "$rc" "anole image umount $mnt"
	[ "$rc" -eq 0 ] || fail "anole image umount $mnt exited $rc"
	for i in $(seq 50); do pid_alive "$pid" || break; sleep 0.1; done
	! pid_alive "$pid" || fail "the daemon of $mnt (pid $pid) still runs after umount"
	! mountpoint -q "$mnt" || fail "$mnt is still mounted after umount"
	! grep -qF " $state/" /proc/self/mountinfo || fail "a mount below $state is left after umount"
	[ ! -e "$state/pid" ] || fail "$state/pid is left after umount"
	[ ! -e "$state/ctl.sock" ] || fail "$state/ctl.sock is left after umount"
	lazy_check_daemon_log "$mnt"
}

# lazy_check_daemon_log MNT: the daemon's log must hold no sanitizer report.
lazy_check_daemon_log() {
	local logf
	logf="$(lazy_state_dir "$1")/log"
	[ -f "$logf" ] || return 0
	if grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$logf"; then
		grep -E -A 30 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$logf" | head -60 >&2
		fail "sanitizer report in the daemon log of $1 ($logf)"
	fi
}

# lazy_stats MNT [FILE]: `anole image stats --json` into FILE (default
# $WORK/stats.json); lazy_stat MNT KEY: one value.
lazy_stats() {
	local out=${2:-$WORK/stats.json}
	"$ANOLE" image stats "$1" --json >"$out" || fail "anole image stats $1 failed"
}
lazy_stat() {
	lazy_stats "$1" "$WORK/.stat1.json"
	json_get "$WORK/.stat1.json" "$2"
}

# lazy_snap MNT: one stats request; sets S_<key> for every numeric or
# boolean key (S_bytes_fetched, S_prefetch_done, ...).
lazy_snap() {
	lazy_stats "$1" "$WORK/.snap.json"
	eval "$("$PY" -c '
import json, sys
for k, v in json.load(open(sys.argv[1])).items():
    if isinstance(v, bool):
        print("S_%s=%s" % (k, "true" if v else "false"))
    elif isinstance(v, int):
        print("S_%s=%d" % (k, v))
' "$WORK/.snap.json")"
}

# wait_prefetch MNT SECONDS: until prefetch_done is true.
wait_prefetch() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ "$(lazy_stat "$1" prefetch_done)" = true ] && return 0
		sleep 0.1
	done
	fail "prefetch on $1 not done after $2 s"
}

# lazy_read [lazy_check.py read options] SRC MNT [FILES]  (options first)
lazy_read() {
	"$PY" "$LAZY_CHECK" read "$@" || fail "lazy_check.py read $*"
}

_lazy_cleanup() {
	local rc=$? m pid state
	set +e
	while read -r m; do
		[ -n "$m" ] || continue
		state=$(lazy_state_dir "$m")
		pid=$(lazy_pid "$m")
		if pid_alive "$pid"; then
			timeout 20 "$ANOLE" image umount --lazy "$m" >/dev/null 2>&1
			pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
		fi
		# (mountinfo, not mountpoint(1): a dead FUSE mount fails stat)
		grep -qF " $m " /proc/self/mountinfo && umount -l "$m" 2>/dev/null
		grep -qF " $state/blobs " /proc/self/mountinfo && umount -l "$state/blobs" 2>/dev/null
	done < <(tac "$_STATE/lazy_mounts" 2>/dev/null | awk '!seen[$0]++')
	(exit "$rc")
	_cleanup
}
trap _lazy_cleanup EXIT
