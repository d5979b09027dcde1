#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The chunk cache of lazy mounts trusts only what the daemon's own user can
# change (issue 11 §2d.1). Another user (uid 65534, via setpriv) plants, in
# a shared directory like /tmp, the things that once fooled root's daemon:
# - a cache directory of its own, or a world-writable one of root's, with
#   CACHE/<blob>/data and map as symbolic links to root's files (the daemon
#   overwrote one with blob data and truncated the other);
# - a blob directory or a 0666 data file of its own inside root's cache (it
#   could rewrite the data after the daemon verified it);
# and root itself leaves a symlink, a hard link to another file, a FIFO.
# Each time `mount` must refuse with a message naming the path and what is
# wrong, and the files outside stay byte for byte the same. `cache gc` must
# not follow or remove them either. A lock held on CACHE/<blob>/lock makes
# mount give up after its bounded wait, naming the lock and its holder.
# A cache anole creates itself is 0700 with 0600 files, and works.
. "$TESTDIR/lib.sh"
. "$TESTDIR/lazy_lib.sh"
need_root
need_anole
need_cmd setpriv flock
[ -e /dev/fuse ] || skip "no /dev/fuse"

ATT=65534      # the other user: nobody (no files of its own to care about)
as_other() { setpriv --reuid=$ATT --regid=$ATT --clear-groups -- "$@"; }

make_srcfs "$WORK/srcfs" 256m
SRC=$WORK/srcfs/tree
gen_tree "$SRC" --seed 7 --small --parts standard
BLOBS=$WORK/blobs
IMG=$WORK/meta.img
MNT=$WORK/mnt
mkdir -p "$BLOBS" "$MNT"
"$ANOLE" image build -q "$SRC" -o "$IMG" --blob-dir "$BLOBS" --chunk-size 64K --json >"$WORK/build.json"
HEX=$(json_get "$WORK/build.json" blob_digest); HEX=${HEX#sha256:}

# root's files the attacker aims at, and a shared sticky directory like /tmp
mkdir -p "$WORK/victim"
head -c 100000 /dev/urandom >"$WORK/victim/a"
head -c 100000 /dev/urandom >"$WORK/victim/b"
VICTIMS=$(sha256sum "$WORK/victim/a" "$WORK/victim/b")
victims_intact() {
	[ "$(sha256sum "$WORK/victim/a" "$WORK/victim/b")" = "$VICTIMS" ] ||
		fail "$1: a root-owned file outside the cache was changed"
	[ "$(stat -c %s "$WORK/victim/a")" = 100000 ] || fail "$1: victim/a was resized"
}
# ($WORK is private to root: the shared directory lives in /tmp itself)
SH=$(mktemp -d /tmp/anole-cache-trust.XXXXXX)
chmod 1777 "$SH"
_trust_cleanup() {
	local rc=$?
	rm -rf "$SH"
	(exit "$rc")
	_lazy_cleanup
}
trap _trust_cleanup EXIT

# refused CACHE PATTERN WHAT: mount must fail, saying PATTERN, mounting nothing
refused() {
	local cache=$1 pattern=$2 what=$3 rc=0
	timeout 120 "$ANOLE" image mount "$IMG" "$MNT" --blobs "$BLOBS" --cache "$cache" \
		--mode kernel 2>"$WORK/err" || rc=$?
	check_not_crashed "$rc" "mount ($what)"
	[ "$rc" -ne 124 ] || fail "$what: mount hung"
	[ "$rc" -ne 0 ] || { "$ANOLE" image umount "$MNT"; fail "$what: mount accepted the cache"; }
	assert_grep "$pattern" "$WORK/err" "$what: mount's message"
	! mountpoint -q "$MNT" || fail "$what: $MNT is mounted after a refused mount"
	victims_intact "$what"
	log "$what: refused: $(grep -o "$pattern.*" "$WORK/err" | head -1)"
}

log "another user's cache directory, its blob files symlinked to root's files"
as_other sh -euc "mkdir -m 0777 '$SH/c1' '$SH/c1/$HEX'
	ln -s '$WORK/victim/a' '$SH/c1/$HEX/data'; ln -s '$WORK/victim/b' '$SH/c1/$HEX/map'"
refused "$SH/c1" "c1 is owned by uid $ATT, not by uid 0" "attacker's cache directory"

log "root's world-writable cache directory, the same symlinks planted in it"
mkdir -m 0777 "$SH/c2"
chmod 0777 "$SH/c2"
as_other sh -euc "mkdir '$SH/c2/$HEX'
	ln -s '$WORK/victim/a' '$SH/c2/$HEX/data'; ln -s '$WORK/victim/b' '$SH/c2/$HEX/map'"
refused "$SH/c2" "c2 is writable by others" "world-writable cache directory"
rc=0
"$ANOLE" image cache gc --max-size 0 --cache "$SH/c2" 2>"$WORK/err" || rc=$?
check_not_crashed "$rc" "cache gc of a world-writable cache"
[ "$rc" -ne 0 ] || fail "cache gc accepted a world-writable cache"
assert_grep "c2 is writable by others" "$WORK/err" "cache gc's message"
[ -L "$SH/c2/$HEX/data" ] || fail "cache gc removed an entry of a cache it refused"
victims_intact "cache gc"

log "a blob directory planted before the admin made the cache private"
mkdir -m 0777 "$SH/c3"
chmod 0777 "$SH/c3"
as_other mkdir -m 0777 "$SH/c3/$HEX"
chmod 0700 "$SH/c3"
refused "$SH/c3" "c3/$HEX is owned by uid $ATT" "attacker's blob directory"

log "symlinks planted in root's blob directory while it was open"
mkdir -m 0755 "$SH/c4"
mkdir -m 0700 "$SH/c4/$HEX"
chmod 0777 "$SH/c4/$HEX"
as_other sh -euc "ln -s '$WORK/victim/a' '$SH/c4/$HEX/data'; ln -s '$WORK/victim/b' '$SH/c4/$HEX/map'
	ln -s '$WORK/victim/b' '$SH/c4/$HEX/lock'"
chmod 0700 "$SH/c4/$HEX"
refused "$SH/c4" "c4/$HEX/lock is a symbolic link (made by uid $ATT)" "symlinked lock"
rm "$SH/c4/$HEX/lock"
refused "$SH/c4" "c4/$HEX/data is a symbolic link (made by uid $ATT)" "symlinked data"
rm "$SH/c4/$HEX/data"
: >"$SH/c4/$HEX/data"
refused "$SH/c4" "c4/$HEX/map is a symbolic link" "symlinked map"
# gc neither follows the links nor removes what it refused
"$ANOLE" image cache gc --max-size 0 --cache "$SH/c4" >/dev/null 2>&1 || true
victims_intact "cache gc of a cache with a symlinked map"
rm "$SH/c4/$HEX/map"

log "another user's writable data file in root's blob directory"
chmod 0777 "$SH/c4/$HEX"
rm -f "$SH/c4/$HEX/data"
as_other sh -euc "head -c 4096 /dev/zero >'$SH/c4/$HEX/data'; chmod 0666 '$SH/c4/$HEX/data'"
chmod 0700 "$SH/c4/$HEX"
refused "$SH/c4" "c4/$HEX/data is owned by uid $ATT" "attacker's data file"
chown 0:0 "$SH/c4/$HEX/data"
refused "$SH/c4" "c4/$HEX/data is writable by others (mode 0666)" "world-writable data file"
rm "$SH/c4/$HEX/data"

log "a hard link to a file elsewhere, a FIFO"
ln "$WORK/victim/a" "$SH/c4/$HEX/data"
refused "$SH/c4" "c4/$HEX/data has 2 hard links" "hard-linked data"
rm "$SH/c4/$HEX/data"
mkfifo -m 0600 "$SH/c4/$HEX/data"
refused "$SH/c4" "c4/$HEX/data is not a regular file" "FIFO as data"
rm "$SH/c4/$HEX/data"

log "a held lock: mount gives up after its bounded wait, naming the holder"
# (mount.c: 3 s of polling the lock; the start of the daemon around it is
# not timed here, only that it ends and says why)
rm -rf "$SH/c5"
lazy_mount "$IMG" "$MNT" "$BLOBS" kernel --cache "$SH/c5"
lazy_umount "$MNT"
"$PY" -c 'import fcntl, sys, time
f = open(sys.argv[1], "r+"); fcntl.flock(f, fcntl.LOCK_EX); time.sleep(1000)' "$SH/c5/$HEX/lock" &
holder=$!
add_pid "$holder"
# until the holder has the lock (python's start can take long on a loaded
# machine), unless it died
while flock -n -s "$SH/c5/$HEX/lock" true; do
	kill -0 "$holder" 2>/dev/null || fail "the lock holder $holder exited"
	sleep 0.05
done
t0=$(date +%s.%N)
refused "$SH/c5" "c5/$HEX/lock is locked by another process (pid $holder)" "held lock"
t1=$(date +%s.%N)
fcmp "$t1 - $t0" ">=" 3 || fail "mount gave up on the lock before its 3 s wait"
kill "$holder"
wait "$holder" 2>/dev/null || true

log "the cache anole makes is private, and works (kernel mode, then read directly)"
lazy_mount "$IMG" "$MNT" "$BLOBS" kernel --cache "$SH/c5"
lazy_read "$SRC" "$MNT"
lazy_umount "$MNT"
lazy_mount "$IMG" "$MNT" "$BLOBS" kernel --cache "$SH/c5"
assert_eq "$(lazy_stat "$MNT" direct_blobs)" 1 "blobs read directly from the complete cache"
lazy_read "$SRC" "$MNT"
lazy_umount "$MNT"
assert_eq "$(stat -c %a "$SH/c5")" 700 "mode of a cache directory anole created"
assert_eq "$(stat -c %a "$SH/c5/$HEX")" 700 "mode of a blob directory"
for f in data map lock; do
	assert_eq "$(stat -c %a "$SH/c5/$HEX/$f")" 600 "mode of $f"
done
victims_intact "the end"
log "ok"
