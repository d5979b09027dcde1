# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Shared helpers for tests/t_*.sh; source it first thing:
#     . "$TESTDIR/lib.sh"
# The runner (tests/run.sh) exports ANOLE (the binary), TESTDIR (this
# directory) and WORK (a fresh scratch directory for this test only).
# Exit status of a test: 0 pass, 77 skip, anything else fail.
#
# Everything a test starts through these helpers (mounts, loop devices,
# background processes) is undone by the EXIT trap, on failure too; and the
# trap also sweeps any mount below $WORK and any loop device whose backing
# file is below $WORK, however it was made.
#
# ANOLE_BUILD_OVERRIDE=mkfs makes build_image use Debian's mkfs.erofs instead
# of `anole image build` (for developing the harness without the builder).
# ANOLE_MOUNT_METHOD=loop|file|auto picks how images are mounted (auto: loop
# device via util-linux for single images, file-backed mount(2) when extra
# devices are given, falling back to loop-attached blobs).

set -euo pipefail
: "${ANOLE:?ANOLE is not set (run tests through tests/run.sh)}"
: "${TESTDIR:?TESTDIR is not set}"
: "${WORK:?WORK is not set}"
TESTDIR=$(cd "$TESTDIR" && pwd)
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
PY=${PYTHON:-python3}
export PYTHONDONTWRITEBYTECODE=1
# Sanitizer reports get their own exit status (99) and stop the program.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:exitcode=99:abort_on_error=0:detect_leaks=1:allocator_may_return_null=1:handle_abort=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:exitcode=99:print_stacktrace=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-exitcode=99}
SANITIZER_RC=99
_STATE="$WORK/.lib-state"
mkdir -p "$_STATE"
: >"$_STATE/mounts"
: >"$_STATE/loops"
: >"$_STATE/pids"

# ------------------------------------------------------------------ output
log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
skip() { printf 'SKIP: %s\n' "$*"; exit 77; }
need_root() { [ "$(id -u)" -eq 0 ] || skip "needs root"; }
need_cmd() {
	local c
	for c; do command -v "$c" >/dev/null 2>&1 || skip "needs $c"; done
}
# have_feature NAME: anole was built with this optional part (`anole
# features`; a binary without that command has them all). need_feature
# NAME...: skip unless it has them all (tests/run.sh skips whole tests by
# the same list).
have_feature() { ! "$ANOLE" features 2>/dev/null | grep -q "^$1  *no "; }
need_feature() {
	local f
	for f; do have_feature "$f" || skip "anole was built without $f"; done
}
need_anole() {
	[ -x "$ANOLE" ] || fail "anole binary $ANOLE is missing"
}

# ------------------------------------------------------------------ assertions
assert_eq() { # ACTUAL EXPECTED WHAT
	[ "$1" = "$2" ] || fail "${3:-value}: expected '$2', got '$1'"
}
assert_ne() { [ "$1" != "$2" ] || fail "${3:-value}: did not expect '$2'"; }
assert_le() { # A B WHAT  (integers)
	[ "$1" -le "$2" ] || fail "${3:-value}: $1 > $2"
}
assert_ge() { [ "$1" -ge "$2" ] || fail "${3:-value}: $1 < $2"; }
# fcmp A OP B: float comparison of two numbers or expressions (python)
fcmp() { "$PY" -c "import sys; sys.exit(0 if ($1) $2 ($3) else 1)"; }
assert_exists() { [ -e "$1" ] || fail "${2:-$1} does not exist"; }
assert_missing() { [ ! -e "$1" ] && [ ! -L "$1" ] || fail "${2:-$1} exists but should not"; }
assert_grep() { # PATTERN FILE WHAT
	grep -q -e "$1" "$2" || { sed 's/^/    /' "$2" | head -20 >&2; fail "${3:-$2}: no match for '$1'"; }
}
assert_no_grep() {
	! grep -q -e "$1" "$2" || { grep -e "$1" "$2" | head -20 >&2; fail "${3:-$2}: unexpected '$1'"; }
}
# run_rc VAR CMD...: run CMD, store its exit status in VAR (no errexit abort).
run_rc() {
	local __var=$1; shift
	local __rc=0
	"$@" || __rc=$?
	printf -v "$__var" '%s' "$__rc"
}
# assert_rc EXPECTED CMD...: CMD's exit status must be EXPECTED (a number or a
# list like "1|2"); sanitizer reports and signals always fail.
assert_rc() {
	local want=$1; shift
	local rc=0
	"$@" || rc=$?
	check_not_crashed "$rc" "$*"
	case "|$want|" in *"|$rc|"*) ;; *) fail "'$*' exited $rc, expected $want" ;; esac
}
# check_not_crashed RC WHAT: fail on sanitizer reports (99) and deaths by signal.
check_not_crashed() {
	local rc=$1 what=$2
	[ "$rc" -ne "$SANITIZER_RC" ] || fail "$what: sanitizer report (exit $rc)"
	[ "$rc" -lt 124 ] || fail "$what: crashed or timed out (exit $rc)"
}
file_size() { stat -c %s "$1"; }

# ----------------------------------------------------------------- services
# free_port: a TCP port on 127.0.0.1 that was free a moment ago
free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_registry NAME PORT [UPSTREAM]: Debian's docker-registry on
# 127.0.0.1:PORT (stopped at exit), storage in $WORK/NAME (deletes allowed),
# its access log in $WORK/NAME.log; with UPSTREAM (a URL), a pull-through
# mirror of that registry. Sets REG_PID.
start_registry() {
	local name=$1 port=$2 upstream=${3:-}
	mkdir -p "$WORK/$name"
	{
		printf 'version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n'
		printf 'storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n' "$WORK/$name"
		printf 'http:\n  addr: 127.0.0.1:%s\n  secret: anole-test-%s-%s\n' "$port" "$name" "$$"
		[ -z "$upstream" ] || printf 'proxy:\n  remoteurl: %s\n' "$upstream"
	} >"$WORK/$name.yml"
	docker-registry serve "$WORK/$name.yml" >"$WORK/$name.log" 2>&1 &
	REG_PID=$!
	add_pid "$REG_PID"
	# wait while it lives, not for so many seconds of clock: one that cannot
	# start exits (the runner's per-test timeout bounds one that hangs)
	until curl -sf "http://127.0.0.1:$port/v2/" >/dev/null; do
		kill -0 "$REG_PID" 2>/dev/null || {
			cat "$WORK/$name.log" >&2
			fail "docker-registry $name did not start"
		}
		sleep 0.1
	done
}

# ------------------------------------------------------------------ cleanup
# add_pid PID / add_mount DIR / add_loop DEV: undone by the EXIT trap
add_pid() { echo "$1" >>"$_STATE/pids"; }
add_mount() { echo "$1" >>"$_STATE/mounts"; }
add_loop() { echo "$1" >>"$_STATE/loops"; }
_cleanup() {
	local rc=$? m l p
	set +e
	trap - EXIT INT TERM
	while read -r p; do
		[ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done <"$_STATE/pids"
	# registered mounts first (reverse order), then anything else below WORK
	tac "$_STATE/mounts" 2>/dev/null | while read -r m; do
		[ -n "$m" ] && _umount_quiet "$m"
	done
	_sweep_mounts "$WORK"
	while read -r l; do
		[ -n "$l" ] && losetup -d "$l" 2>/dev/null
	done <"$_STATE/loops"
	_sweep_loops "$WORK"
	exit "$rc"
}
trap _cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

_umount_quiet() {
	local m=$1
	mountpoint -q "$m" 2>/dev/null || return 0
	for _ in 1 2 3 4 5; do
		umount "$m" 2>/dev/null && return 0
		sleep 0.2
	done
	umount -l "$m" 2>/dev/null
}
# Unmount every mount point at or below DIR, deepest first.
_sweep_mounts() {
	local dir=$1 m
	awk -v d="$dir" '{ gsub(/\\040/, " ", $5); if ($5 == d || index($5, d "/") == 1) print $5 }' \
		/proc/self/mountinfo | sort -r | while read -r m; do _umount_quiet "$m"; done
}
# Detach loop devices whose backing file is below DIR.
_sweep_loops() {
	local dir=$1 dev back
	losetup -l -n -O NAME,BACK-FILE 2>/dev/null | while read -r dev back; do
		case "$back" in "$dir"/*) losetup -d "$dev" 2>/dev/null ;; esac
	done
}

# ------------------------------------------------------------------ source trees
# make_srcfs DIR [SIZE]: a tmpfs at DIR (takes xattrs of every namespace and
# values up to 64 KiB, ACLs, sparse files), unmounted at exit.
make_srcfs() {
	local dir=$1 size=${2:-2g}
	mkdir -p "$dir"
	mount -t tmpfs -o "size=$size,mode=0755" anole-test-src "$dir" || fail "cannot mount tmpfs on $dir"
	echo "$dir" >>"$_STATE/mounts"
}
# gen_tree DEST ARGS...: tests/gen_tree.py (DEST on a fresh tmpfs if not on one)
gen_tree() {
	local dest=$1; shift
	"$PY" "$TESTDIR/gen_tree.py" "$dest" "$@" || fail "gen_tree.py $dest $* failed"
}
compare_trees() { # SRC DST [compare.py options]
	local src=$1 dst=$2; shift 2
	"$PY" "$TESTDIR/compare.py" "$@" "$src" "$dst" || fail "trees differ: $src vs $dst"
}

# ------------------------------------------------------------------ building
# build_image SRC IMG [anole build options...]: `anole image build`, or
# mkfs.erofs when ANOLE_BUILD_OVERRIDE=mkfs. Returns the builder's status.
build_image() {
	local src=$1 img=$2; shift 2
	if [ "${ANOLE_BUILD_OVERRIDE:-}" = mkfs ]; then
		local args=() a
		while [ $# -gt 0 ]; do
			a=$1; shift
			case "$a" in
			--chunk-size) args+=("--chunksize=$(_size_bytes "$1")"); shift ;;
			--chunk-size=*) args+=("--chunksize=$(_size_bytes "${a#*=}")") ;;
			--blob) args+=("--blobdev=$1"); shift ;;
			--blob=*) args+=("--blobdev=${a#*=}") ;;
			--uuid) args+=("-U" "$1"); shift ;;
			--uuid=*) args+=("-U" "${a#*=}") ;;
			--timestamp|--threads|--label) shift ;;  # mkfs -T would change file mtimes
			--timestamp=*|--threads=*|--label=*|--no-dedupe|-v|--verbose) ;;
			-q|--quiet) args+=(--quiet) ;;
			--json) echo "build_image: --json is not available with ANOLE_BUILD_OVERRIDE=mkfs" >&2; return 77 ;;
			*) echo "build_image: cannot map option $a to mkfs.erofs" >&2; return 2 ;;
			esac
		done
		mkfs.erofs --quiet "${args[@]}" "$img" "$src"
		return $?
	fi
	"$ANOLE" image build "$src" -o "$img" "$@"
}
_size_bytes() {
	local s=$1
	case "$s" in
	*[kK]) echo $(( ${s%?} << 10 )) ;;
	*[mM]) echo $(( ${s%?} << 20 )) ;;
	*) echo "$s" ;;
	esac
}
# build_ok SRC IMG [opts]: build_image that must succeed (sanitizers checked).
build_ok() {
	local rc=0
	build_image "$@" || rc=$?
	[ "$rc" -ne 77 ] || skip "build option not available with ANOLE_BUILD_OVERRIDE"
	check_not_crashed "$rc" "build $*"
	[ "$rc" -eq 0 ] || fail "build of $1 -> $2 failed (exit $rc)"
	[ -s "$2" ] || fail "build of $1 -> $2 left no image"
}
using_override() { [ -n "${ANOLE_BUILD_OVERRIDE:-}" ]; }

# check_image IMG [--device B]...: `anole image check` that must pass.
check_image() {
	local img=$1; shift
	local rc=0
	"$ANOLE" image check "$img" "$@" >"$WORK/check.out" 2>&1 || rc=$?
	check_not_crashed "$rc" "anole image check $img"
	if [ "$rc" -ne 0 ]; then
		sed 's/^/    /' "$WORK/check.out" | head -40 >&2
		fail "anole image check $img exited $rc"
	fi
}

# ------------------------------------------------------------------ kernel mounts
# mount_image IMG MNT [BLOB...]: mount read-only; unmounted at exit.
mount_image() {
	local img=$1 mnt=$2; shift 2
	local method=${ANOLE_MOUNT_METHOD:-auto}
	mkdir -p "$mnt"
	kmsg_mark >"$_STATE/kmark.$(_mkey "$mnt")"
	img=$(readlink -f "$img")
	if [ "$method" = auto ]; then
		if [ $# -eq 0 ]; then method="loop"; else method="file"; fi
	fi
	echo "$mnt" >>"$_STATE/mounts"
	case "$method" in
	file)
		local devs=() b
		for b; do devs+=(--device "$(readlink -f "$b")"); done
		if "$PY" "$TESTDIR/kmount.py" mount "$img" "$mnt" "${devs[@]}"; then
			return 0
		fi
		[ "${ANOLE_MOUNT_METHOD:-auto}" = auto ] || { kmsg_tail; fail "file-backed mount of $img failed"; }
		echo "mount_image: file-backed mount failed; trying loop devices" >&2
		_mount_loop "$img" "$mnt" "$@"
		;;
	loop) _mount_loop "$img" "$mnt" "$@" ;;
	*) fail "unknown ANOLE_MOUNT_METHOD $method" ;;
	esac
}
_mount_loop() {
	local img=$1 mnt=$2; shift 2
	local opts=ro b dev
	for b; do
		dev=$(losetup -f --show -r "$(readlink -f "$b")") || fail "losetup $b failed"
		echo "$dev" >>"$_STATE/loops"
		opts="$opts,device=$dev"
	done
	mount -t erofs -o "$opts" "$img" "$mnt" || { kmsg_tail; fail "mount -t erofs -o $opts $img $mnt failed"; }
}
_mkey() { printf '%s' "$1" | md5sum | cut -c1-12; }
# umount_image MNT: unmount; fails the test if the kernel logged EROFS errors
# for this mount meanwhile (attributable for loop-device mounts only: a
# file-backed mount logs as "(device erofs)").
umount_image() {
	local mnt=$1 src dev mark errs
	src=$(awk -v m="$mnt" '$5 == m { for (i = 7; i <= NF; i++) if ($i == "-") { print $(i + 2); exit } }' \
		/proc/self/mountinfo)
	mark=$(cat "$_STATE/kmark.$(_mkey "$mnt")" 2>/dev/null || echo 0)
	case "$src" in
	/dev/loop*)
		dev=${src#/dev/}
		errs=$(kmsg_since "$mark" | grep -F "(device $dev)" |
			grep -v -E "mounted with root inode|unmounted|mounted with opts|EXPERIMENTAL .* in use" || true)
		if [ -n "$errs" ]; then
			echo "$errs" | head -20 | sed 's/^/    dmesg: /' >&2
			fail "the kernel logged EROFS errors for $mnt ($src)"
		fi
		;;
	esac
	umount "$mnt" || { sleep 0.5; umount "$mnt"; } || fail "cannot unmount $mnt"
	# loop devices attached for blobs of this mount can go now
	local l
	while read -r l; do
		[ -n "$l" ] || continue
		if ! grep -q "device=$l" /proc/self/mountinfo 2>/dev/null; then
			losetup -d "$l" 2>/dev/null || true
		fi
	done <"$_STATE/loops"
}
# kmsg_mark: the timestamp of the newest kernel log line (the ring buffer
# wraps, so line counts do not work); kmsg_since MARK: lines logged after it.
# (the newest line that has a timestamp: continuation lines have none)
kmsg_mark() { dmesg 2>/dev/null | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p' | tail -n 1 | grep . || echo 0; }
kmsg_since() {
	dmesg 2>/dev/null | awk -v m="$1" '{ t = $0; sub(/^\[ */, "", t); sub(/\].*/, "", t); if (t + 0 > m + 0) print }'
}
kmsg_tail() { dmesg 2>/dev/null | tail -n 5 | sed 's/^/    dmesg: /' >&2 || true; }

# ------------------------------------------------------------------ fsck.erofs
# fsck_clean IMG [fsck.erofs options...]: Debian's fsck.erofs may exit 0 on
# errors, so its output must also hold no "<E>" line.
fsck_clean() {
	local img=$1; shift
	local rc=0 out="$WORK/fsck.out"
	fsck.erofs "$@" "$img" >"$out" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ] || grep -q '<E>' "$out"; then
		sed 's/^/    /' "$out" | head -40 >&2
		fail "fsck.erofs $* $img: exit $rc, $(grep -c '<E>' "$out") error line(s)"
	fi
}

# ------------------------------------------------------------------ misc
sha256() { sha256sum "$1" | cut -d' ' -f1; }
json_get() { # FILE KEY  -> value of top-level KEY (JSON on the last line)
	"$PY" - "$1" "$2" <<'EOF'
import json, sys
doc = json.loads(open(sys.argv[1]).read())
v = doc[sys.argv[2]]
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)
EOF
}
