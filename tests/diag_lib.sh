# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Helpers for the `anole diag` tests (t_diag_*.sh); source after lib.sh:
#     . "$TESTDIR/lib.sh"; . "$TESTDIR/diag_lib.sh"
#
# diag_start runs a tool in the background with -v, waits until it says
# which hook it attached, and records the ids of the BPF programs, maps and
# links the process holds (from /proc/PID/fdinfo); diag_finish waits for it
# to exit and then requires every one of those ids to be gone from
# `bpftool prog/map/link show` (the kernel frees them a moment after the
# last reference: polled for up to 5 s). Ids, not names: a concurrent run
# of the same tool elsewhere cannot fool the check.
#
# Processes started for a test go through add_pid (killed by lib.sh's EXIT
# trap); cgroups made by diag_mkcgroup are removed by this file's trap.

: >"$_STATE/diag_cgroups"

# need_diag: root, the binary, bpftool, python3 and kernel BTF (else skip).
need_diag() {
	need_root
	need_anole
	need_cmd bpftool python3
	[ -e /sys/kernel/btf/vmlinux ] || skip "this kernel has no BTF"
}

# diag_bpf_ids PID: "prog N", "map N" and "link N" for the BPF objects PID holds.
# An fd may close between the listing and its read (the tool is running):
# sed's failure on it must not end the test (set -e, pipefail).
diag_bpf_ids() {
	local f
	for f in /proc/"$1"/fdinfo/*; do
		sed -n -e 's/^prog_id:[[:space:]]*\([0-9][0-9]*\).*/prog \1/p' \
			-e 's/^map_id:[[:space:]]*\([0-9][0-9]*\).*/map \1/p' \
			-e 's/^link_id:[[:space:]]*\([0-9][0-9]*\).*/link \1/p' "$f" 2>/dev/null || true
	done | sort -u
}

# diag_start NAME TOOL [ARGS...]: `anole diag TOOL -v ARGS` in the background,
# stdout in $WORK/NAME.out, stderr in $WORK/NAME.err; returns once attached.
# (-v before ARGS: after `-- COMMAND` it would be the command's.) Sets DIAG_PID.
diag_start() {
	local name=$1 tool=$2
	shift 2
	"$ANOLE" diag "$tool" -v "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	DIAG_PID=$!
	add_pid "$DIAG_PID"
	for _ in $(seq 300); do
		if grep -q ': using ' "$WORK/$name.err"; then
			diag_bpf_ids "$DIAG_PID" >"$WORK/$name.ids"
			grep -q '^prog ' "$WORK/$name.ids" ||
				fail "$name: anole diag $tool $* holds no BPF program while attached"
			log "$name: $(grep -m1 ': using ' "$WORK/$name.err")"
			return 0
		fi
		if ! kill -0 "$DIAG_PID" 2>/dev/null; then
			sed 's/^/    /' "$WORK/$name.err" >&2
			# attached and already gone (a --duration shorter than this
			# poll on a busy machine): its BPF objects cannot be listed
			grep -q ': using ' "$WORK/$name.err" &&
				fail "$name: anole diag $tool $* attached and exited before its BPF objects were listed: end it with diag_stop, not --duration"
			fail "$name: anole diag $tool $* exited before attaching"
		fi
		sleep 0.1
	done
	fail "$name: anole diag $tool $* not attached after 30 s"
}

# diag_finish NAME [RC]: wait for the tool; its exit status must be RC (0);
# then every BPF object it held must be gone.
diag_finish() {
	local name=$1 want=${2:-0} rc=0
	wait "$DIAG_PID" || rc=$?
	check_not_crashed "$rc" "anole diag ($name)"
	if [ "$rc" -ne "$want" ]; then
		sed 's/^/    /' "$WORK/$name.err" | tail -n 20 >&2
		fail "$name: anole diag exited $rc, expected $want"
	fi
	diag_assert_released "$name"
}

# diag_stop NAME [RC]: end the run as Ctrl-C does (SIGINT: it reports what
# it collected and detaches), then diag_finish it. Tests end runs this way
# once the events they look for have happened, rather than by --duration: a
# window fixed in seconds can close before a loaded machine runs the
# workload, and a short one can end before diag_start has seen the tool.
diag_stop() {
	kill -INT "$DIAG_PID" 2>/dev/null || true
	diag_finish "$@"
}

# diag_cpu_ns PID: the CPU time PID's main thread has had, in ns (the
# scheduler's own accounting, /proc/PID/schedstat), 0 once it is gone.
diag_cpu_ns() {
	local v
	v=$(awk '{ print $1 }' "/proc/$1/schedstat" 2>/dev/null) || v=0
	echo "${v:-0}"
}

# diag_wait_cpu PID SECONDS: return once PID has run SECONDS of CPU time
# more than when called (fail after 120 s: it is not getting the CPU at
# all). Sampling tests wait for this rather than for wall-clock time: what
# they sample is CPU time, which a loaded machine hands out slowly.
diag_wait_cpu() {
	local pid=$1 want start
	start=$(diag_cpu_ns "$pid")
	want=$("$PY" -c "print(int($start + $2 * 1e9))")
	for _ in $(seq 1200); do
		[ "$(diag_cpu_ns "$pid")" -ge "$want" ] && return 0
		kill -0 "$pid" 2>/dev/null || fail "process $pid ended before running $2 s of CPU"
		sleep 0.1
	done
	fail "process $pid did not get $2 s of CPU in 120 s"
}

# diag_assert_released NAME: the objects listed in $WORK/NAME.ids are gone.
diag_assert_released() {
	local name=$1 kind id left n
	n=$(wc -l <"$WORK/$name.ids")
	for _ in $(seq 50); do
		left=""
		while read -r kind id; do
			bpftool "$kind" show id "$id" >/dev/null 2>&1 && left="$left $kind:$id"
		done <"$WORK/$name.ids"
		[ -z "$left" ] && break
		sleep 0.1
	done
	[ -z "$left" ] || fail "$name: BPF objects still loaded after exit:$left"
	# and, as an operator would look: no program of ours in bpftool's list
	bpftool prog show >"$WORK/$name.progs" 2>&1 || true
	while read -r kind id; do
		[ "$kind" = prog ] || continue
		! grep -q "^$id: " "$WORK/$name.progs" || fail "$name: program $id still in 'bpftool prog show'"
	done <"$WORK/$name.ids"
	log "$name: all $n BPF objects released"
}

# diag_json PYEXPR FILE: evaluate PYEXPR with `rows` = the JSON lines of FILE
# (a list of dicts); print the result. E.g. diag_json 'len(rows)' out.
diag_json() {
	"$PY" - "$1" "$2" <<'EOF'
import json, sys
rows = []
for line in open(sys.argv[2]):
    line = line.strip()
    if line:
        rows.append(json.loads(line))
def above(hist, low):
    return sum(b["count"] for b in hist if b["low"] >= low)
print(eval(sys.argv[1]))
EOF
}

# diag_cgroup2_root: where the cgroup v2 hierarchy is mounted (or nothing).
diag_cgroup2_root() {
	awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' \
		/proc/self/mountinfo | head -n1
}

# diag_mkcgroup NAME: a fresh cgroup v2 directory, removed at exit.
diag_mkcgroup() {
	local root dir
	root=$(diag_cgroup2_root)
	[ -n "$root" ] || skip "no cgroup v2 hierarchy mounted"
	dir="$root/anole-test-$1-$$"
	mkdir "$dir" || fail "cannot create cgroup $dir"
	echo "$dir" >>"$_STATE/diag_cgroups"
	echo "$dir"
}

_diag_cleanup() {
	local rc=$? d p
	set +e
	while read -r d; do
		[ -d "$d" ] || continue
		# processes still inside (ours) go first
		while read -r p; do kill -KILL "$p" 2>/dev/null; done <"$d/cgroup.procs"
		for _ in $(seq 20); do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
	done <"$_STATE/diag_cgroups"
	(exit "$rc")
	_cleanup
}
trap _diag_cleanup EXIT
