#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole diag opensnoop sees opens of unique paths with their result (a
# missing file: fd null, err ENOENT; a created one: an fd) - with the hook
# chosen here, whose --verbose output names every preferred hook it skipped
# and why; with each other hook this kernel has; with -p (only that process)
# and -c (only a cgroup v2 directory); with -x (failures only). No BPF object
# is left after any run.
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
need_diag

u="$WORK/anole-open-$$"

# opened NAME PATH PYCOND: an event of run NAME for PATH satisfying PYCOND (on r)
opened() {
	diag_json "any(r['path'] == '$2' and ($3) for r in rows)" "$WORK/$1.out"
}

"$ANOLE" diag list --json >"$WORK/list.json" || fail "anole diag list failed"
hooks=$(diag_json "' '.join(h for t in rows[0]['tools'] if t['name'] == 'opensnoop' for h in t['hooks'])" "$WORK/list.json")
chosen=$(diag_json "[t['hook'] for t in rows[0]['tools'] if t['name'] == 'opensnoop'][0]" "$WORK/list.json")
[ "$chosen" != None ] || skip "opensnoop does not run on this kernel: $(cat "$WORK/list.json")"
log "opensnoop hooks in order: $hooks; chosen here: $chosen"

# 1. the hook chosen here; -v says why each preferred one was skipped
diag_start main opensnoop --json --duration 3
cat "$u-missing" 2>/dev/null || true
: >"$u-created"
diag_finish main
[ "$(opened main "$u-missing" "r['fd'] is None and r['err'] == 2 and r['comm'] == 'cat'")" = True ] ||
	fail "opensnoop missed the failed open of $u-missing"
[ "$(opened main "$u-created" "r['fd'] is not None and r['fd'] >= 0 and r['err'] == 0 and r['pid'] == $$")" = True ] ||
	fail "opensnoop missed the open of $u-created by this shell"
for h in $hooks; do
	[ "$h" = "$chosen" ] && break
	assert_grep "opensnoop: skipped $h: ." "$WORK/main.err" "why $h was skipped"
done
assert_grep "opensnoop: using $chosen (" "$WORK/main.err" "the hook used"

# 2. every other hook this kernel can use
for h in $hooks; do
	[ "$h" = "$chosen" ] && continue
	rc=0
	"$ANOLE" diag opensnoop --hook "$h" --duration 0.5 >/dev/null 2>"$WORK/probe-$h.err" || rc=$?
	check_not_crashed "$rc" "opensnoop --hook $h"
	if [ "$rc" -ne 0 ]; then
		assert_grep "no hook loads on this kernel" "$WORK/probe-$h.err" "opensnoop --hook $h failure"
		log "hook $h does not load here: $(grep -m1 "  $h" "$WORK/probe-$h.err")"
		continue
	fi
	diag_start "hook-$h" opensnoop --hook "$h" --json --duration 2
	cat "$u-$h" 2>/dev/null || true
	diag_finish "hook-$h"
	[ "$(opened "hook-$h" "$u-$h" "r['err'] == 2")" = True ] || fail "opensnoop --hook $h missed the open"
done

# 3. -p: only that process
# (the helpers wait for a go file, created once the tool is attached)
bash -c "until [ -e '$WORK/go-pid' ]; do sleep 0.05; done; exec cat '$u-by-pid' 2>/dev/null" &
target=$!
add_pid "$target"
diag_start pid opensnoop -p "$target" --json --duration 2
: >"$WORK/go-pid"
cat "$u-not-by-pid" 2>/dev/null || true
diag_finish pid
[ "$(opened pid "$u-by-pid" "True")" = True ] || fail "opensnoop -p $target missed its open"
assert_no_grep "$u-not-by-pid" "$WORK/pid.out" "opensnoop -p: another process"
[ "$(diag_json "all(r['pid'] == $target for r in rows)" "$WORK/pid.out")" = True ] ||
	fail "opensnoop -p $target reported other processes"

# 4. -c: only tasks in a cgroup v2 directory (and below)
cg=$(diag_mkcgroup open)
bash -c "echo \$\$ >'$cg/cgroup.procs' && until [ -e '$WORK/go-cg' ]; do sleep 0.05; done; cat '$u-in-cg' 2>/dev/null; true" &
add_pid $!
diag_start cg opensnoop -c "$cg" --json --duration 2
: >"$WORK/go-cg"
cat "$u-not-in-cg" 2>/dev/null || true
diag_finish cg
[ "$(opened cg "$u-in-cg" "True")" = True ] || fail "opensnoop -c $cg missed the open in the cgroup"
assert_no_grep "$u-not-in-cg" "$WORK/cg.out" "opensnoop -c: a task outside the cgroup"

# 5. -x: failures only
diag_start failed opensnoop -x --json --duration 2
cat "$u-x-missing" 2>/dev/null || true
: >"$u-x-created"
diag_finish failed
[ "$(opened failed "$u-x-missing" "r['err'] == 2")" = True ] || fail "opensnoop -x missed a failed open"
assert_no_grep "$u-x-created" "$WORK/failed.out" "opensnoop -x: a successful open"
[ "$(diag_json "all(r['fd'] is None for r in rows)" "$WORK/failed.out")" = True ] ||
	fail "opensnoop -x reported a successful open"

# 6. text output
diag_start text opensnoop --duration 2
cat "$u-text" 2>/dev/null || true
diag_finish text
assert_grep "^PID  *COMM  *FD ERR PATH$" "$WORK/text.out" "header"
assert_grep "^[0-9][0-9]*  *cat  *-1   2 $u-text$" "$WORK/text.out" "the failed open"
log "pass"
