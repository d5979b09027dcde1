#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `anole image umount` signals only the daemon it started (issue 11 §2d.3):
# - after the daemon died and its pid went to another process (here a
#   `sleep` this test started), umount leaves that process alone, exits 0,
#   and still detaches the mounts the dead daemon left (the tree and, in
#   kernel mode, the blobs' FUSE directory) and removes its state; the same
#   with a pid file in the old form (a bare pid), which names nobody for sure;
# - for a user without XDG_RUNTIME_DIR (state under /tmp/anole-UID), a state
#   directory another user made first is refused by umount and mount with a
#   message naming it, and the victim's own process named in it survives.
. "$TESTDIR/lib.sh"
. "$TESTDIR/lazy_lib.sh"
need_root
need_anole
need_cmd setpriv
[ -e /dev/fuse ] || skip "no /dev/fuse"

make_srcfs "$WORK/srcfs" 256m
SRC=$WORK/srcfs/tree
gen_tree "$SRC" --seed 11 --small --parts standard
BLOBS=$WORK/blobs
IMG=$WORK/meta.img
MNT=$WORK/mnt
mkdir -p "$BLOBS" "$MNT"
"$ANOLE" image build -q "$SRC" -o "$IMG" --blob-dir "$BLOBS" --chunk-size 64K

sleeper() { # start an unrelated process; its pid in SLEEPER
	sleep 1000 &
	SLEEPER=$!
	add_pid "$SLEEPER"
}
# kill_daemon MNT: SIGKILL its daemon (a crash), wait for it to be gone
kill_daemon() {
	local pid i
	pid=$(lazy_pid "$1")
	kill -KILL "$pid"
	for i in $(seq 100); do pid_alive "$pid" || return 0; sleep 0.1; done
	fail "the daemon (pid $pid) survived SIGKILL"
}
# stale_umount MNT WHAT: umount must exit 0, say the daemon is gone, spare
# $SLEEPER and leave no mount and no state but the log
stale_umount() {
	local mnt=$1 what=$2 state rc=0
	state=$(lazy_state_dir "$mnt")
	timeout 60 "$ANOLE" image umount "$mnt" 2>"$WORK/err" || rc=$?
	check_not_crashed "$rc" "umount ($what)"
	[ "$rc" -eq 0 ] || { cat "$WORK/err" >&2; fail "$what: umount exited $rc"; }
	assert_grep "(pid [0-9]*) is gone: detaching what it left" "$WORK/err" "$what: umount's message"
	pid_alive "$SLEEPER" || fail "$what: umount killed pid $SLEEPER, an unrelated process"
	! grep -qF " $mnt " /proc/self/mountinfo || fail "$what: $mnt is still mounted"
	! grep -qF " $state/blobs " /proc/self/mountinfo || fail "$what: $state/blobs is still mounted"
	[ ! -e "$state/pid" ] || fail "$what: $state/pid is left"
	[ ! -e "$state/ctl.sock" ] || fail "$what: $state/ctl.sock is left"
	log "$what: umount spared pid $SLEEPER and detached what the dead daemon left"
}

for mode in kernel fuse; do
	log "mode $mode: a live daemon is stopped as before"
	lazy_mount "$IMG" "$MNT" "$BLOBS" "$mode" --cache "$WORK/cache"
	lazy_read "$SRC" "$MNT"
	lazy_umount "$MNT"

	log "mode $mode: the daemon died and its pid went to another process"
	lazy_mount "$IMG" "$MNT" "$BLOBS" "$mode" --cache "$WORK/cache"
	state=$(lazy_state_dir "$MNT")
	read -r _ start boot <"$state/pid"
	kill_daemon "$MNT"
	sleeper
	# what the pid file says after pid reuse: the pid is $SLEEPER's now,
	# the start time still the dead daemon's
	echo "$SLEEPER $start $boot" >"$state/pid"
	stale_umount "$MNT" "$mode, pid reused"
	kill "$SLEEPER"

	log "mode $mode: a pid file of the old form (a bare pid)"
	lazy_mount "$IMG" "$MNT" "$BLOBS" "$mode" --cache "$WORK/cache"
	kill_daemon "$MNT"
	sleeper
	echo "$SLEEPER" >"$state/pid"
	stale_umount "$MNT" "$mode, old pid file"
	# and a mount over what a crash left works
	lazy_mount "$IMG" "$MNT" "$BLOBS" "$mode" --cache "$WORK/cache"
	kill_daemon "$MNT"
	lazy_mount "$IMG" "$MNT" "$BLOBS" "$mode" --cache "$WORK/cache"
	lazy_read "$SRC" "$MNT"
	lazy_umount "$MNT"
	pid_alive "$SLEEPER" || fail "$mode: a mount over a crashed one killed pid $SLEEPER"
	kill "$SLEEPER"
done

log "a state directory under /tmp made first by another user"
VIC=65533      # the victim: no XDG_RUNTIME_DIR, state in /tmp/anole-65533
ATT=65534      # the other user
VSTATE=/tmp/anole-$VIC
[ ! -e "$VSTATE" ] || rm -rf "$VSTATE"
VDIR=$(mktemp -d /tmp/anole-umount-stale.XXXXXX)
chmod 0755 "$VDIR"
mkdir -m 0755 "$VDIR/mnt"
cp "$IMG" "$VDIR/meta.img"
chmod 0644 "$VDIR/meta.img"
_stale_cleanup() {
	local rc=$?
	rm -rf "$VSTATE" "$VDIR"
	(exit "$rc")
	_lazy_cleanup
}
trap _stale_cleanup EXIT
as_victim() { env -u XDG_RUNTIME_DIR HOME=/nonexistent setpriv --reuid=$VIC --regid=$VIC --clear-groups -- "$@"; }
as_victim sleep 1000 &
VSLEEP=$!
add_pid "$VSLEEP"
for i in $(seq 50); do [ "$(stat -c %u "/proc/$VSLEEP")" = "$VIC" ] && break; sleep 0.1; done
# the attacker writes a pid file naming the victim's process exactly as a
# daemon's would (its start time is public in /proc)
vstart=$(awk '{ sub(/.*\) /, ""); print $20 }' "/proc/$VSLEEP/stat")
hex=$(printf '%s' "$VDIR/mnt" | sha256sum | cut -c1-16)
setpriv --reuid=$ATT --regid=$ATT --clear-groups -- sh -euc "
	mkdir -m 0777 '$VSTATE' '$VSTATE/mounts' '$VSTATE/mounts/$hex'
	echo '$VSLEEP $vstart $(cat /proc/sys/kernel/random/boot_id)' >'$VSTATE/mounts/$hex/pid'"
for verb in umount mount; do
	rc=0
	if [ "$verb" = umount ]; then
		as_victim "$ANOLE" image umount "$VDIR/mnt" 2>"$WORK/err" || rc=$?
	else
		as_victim "$ANOLE" image mount "$VDIR/meta.img" "$VDIR/mnt" --blobs "$BLOBS" \
			--cache "$VDIR/cache" --mode fuse 2>"$WORK/err" || rc=$?
	fi
	check_not_crashed "$rc" "$verb as uid $VIC"
	[ "$rc" -ne 0 ] || fail "$verb used a state directory another user made"
	assert_grep "$VSTATE is owned by uid $ATT, not by uid $VIC" "$WORK/err" "$verb's message"
	pid_alive "$VSLEEP" || fail "$verb as uid $VIC killed its own process $VSLEEP"
	log "$verb refused: $(head -1 "$WORK/err")"
done
kill "$VSLEEP"
log "ok"
