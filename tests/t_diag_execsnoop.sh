#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole diag execsnoop sees a known exec (/bin/true anole-marker-PID) with
# the right program, arguments and parent - with the hook chosen here, with
# each fallback this kernel has (classic tracepoint: tracefs unmounted in a
# private mount namespace first, so the tool must mount it), with -p (the
# test shell: its children match; another process: nothing). No BPF object
# is left after any run.
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
need_diag

marker="anole-marker-$$"

# saw NAME ARG: the JSON events of run NAME include /bin/true ARG from this shell
saw() {
	diag_json "any(r['filename'] == '/bin/true' and r['args'] == ['/bin/true', '$2'] and r['ppid'] == $$ and r['comm'] == 'true' for r in rows)" "$WORK/$1.out"
}

# 1. the hook chosen here, JSON
diag_start json execsnoop --json --duration 3
/bin/true "$marker"
diag_finish json
[ "$(saw json "$marker")" = True ] ||
	fail "execsnoop did not report /bin/true $marker (parent $$): $(grep -c . "$WORK/json.out") events"

# 2. text output
diag_start text execsnoop --duration 2
/bin/true "$marker-text" two
diag_finish text
assert_grep "^PCOMM  *PID  *PPID  *FILENAME  *ARGS$" "$WORK/text.out" "header"
assert_grep "^true  *[0-9][0-9]*  *$$  */bin/true  */bin/true $marker-text two$" "$WORK/text.out" "the exec"

# 3. -p: the parent matches; an unrelated process sees nothing of ours
diag_start pid execsnoop -p $$ --json --duration 2
/bin/true "$marker-pid"
diag_finish pid
[ "$(saw pid "$marker-pid")" = True ] || fail "execsnoop -p $$ missed its child's exec"
sleep 30 &
add_pid $!
diag_start other execsnoop -p $! --json --duration 2
/bin/true "$marker-other"
diag_finish other
assert_no_grep "$marker-other" "$WORK/other.out" "execsnoop -p of another process"

# 4. each fallback this kernel has
"$ANOLE" diag list --json >"$WORK/list.json" || fail "anole diag list failed"
hooks=$(diag_json "' '.join(h for t in rows[0]['tools'] if t['name'] == 'execsnoop' for h in t['hooks'])" "$WORK/list.json")
for h in $hooks; do
	[ "$h" = tracepoint ] && continue
	diag_start "hook-$h" execsnoop --hook "$h" --json --duration 2
	/bin/true "$marker-$h"
	diag_finish "hook-$h"
	[ "$(saw "hook-$h" "$marker-$h")" = True ] || fail "execsnoop --hook $h missed the exec"
done
# the classic tracepoint without tracefs mounted: the tool mounts it itself
# (in a private mount namespace, so the machine's mounts stay as they are)
need_cmd unshare
cat >"$WORK/ns.sh" <<'NS'
for m in /sys/kernel/debug/tracing /sys/kernel/tracing /sys/kernel/debug; do
	while grep -q " $m " /proc/self/mountinfo; do umount -l "$m" || exit 1; done
done
exec "$@"
NS
DIAG_NS=(unshare -m --propagation private bash "$WORK/ns.sh")
"${DIAG_NS[@]}" "$ANOLE" diag execsnoop --hook tracepoint --json --duration 3 -v \
	>"$WORK/tp.out" 2>"$WORK/tp.err" &
DIAG_PID=$!
add_pid "$DIAG_PID"
for _ in $(seq 300); do
	grep -q ': using ' "$WORK/tp.err" && break
	kill -0 "$DIAG_PID" 2>/dev/null || break
	sleep 0.1
done
diag_bpf_ids "$DIAG_PID" >"$WORK/tp.ids"
/bin/true "$marker-tp"
diag_finish tp
assert_grep 'mounted tracefs at /sys/kernel/tracing' "$WORK/tp.err" "tracefs mount"
assert_grep 'using tracepoint (sched:sched_process_exec)' "$WORK/tp.err" "hook"
[ "$(saw tp "$marker-tp")" = True ] || fail "execsnoop --hook tracepoint missed the exec"
log "pass"
