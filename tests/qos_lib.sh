# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Shared helpers of the tests/t_qos_*.sh tests (anole qos, docs/anole-qos.md).
# Source after lib.sh. Every cgroup is below /<QNAME> (qos-test-PID) in each
# hierarchy, and the EXIT trap stops the agent, restores its knobs, kills
# whatever is left in the groups and removes them.
need_root
QNAME=qos-test-$$
QSTATE=$WORK/state
QCONF=$WORK/qos.toml
V1CPU=/sys/fs/cgroup/cpu
V1ACCT=/sys/fs/cgroup/cpuacct
V1MEM=/sys/fs/cgroup/memory
V1BLK=/sys/fs/cgroup/blkio
V1CS=/sys/fs/cgroup/cpuset
V2=$(findmnt -n -t cgroup2 -o TARGET | head -1)
QAGENTS=()

# have_v1: this host has cpu, memory and blkio on cgroup v1
have_v1() { [ -f $V1CPU/cpu.cfs_quota_us ] && [ -f $V1MEM/memory.limit_in_bytes ] &&
	[ -f $V1BLK/blkio.throttle.read_bps_device ]; }

# work_disk: MAJ:MIN of the whole disk under WORK (throttles are per disk)
work_disk() {
	local d
	d=$(findmnt -n -o MAJ:MIN -T "$WORK" | tr -d ' ')
	if [ -f "/sys/dev/block/$d/partition" ]; then
		d=$(cat "$(readlink -f "/sys/dev/block/$d")/../dev")
	fi
	[ -f "/sys/dev/block/$d/queue/scheduler" ] || return 1
	echo "$d"
}

# qos_conf [TOML...]: the test's configuration, each argument one line
qos_conf() {
	{
		printf 'name = "%s"\nstate_dir = "%s"\n' "$QNAME" "$QSTATE"
		printf '%s\n' "$@"
	} >"$QCONF"
}

# qos_start [CONF]: start the agent as a daemon; its pid in QPID. QOS_RUN_V
# (default -v) is its verbosity flag; empty: the default level.
qos_start() {
	# an agent killed with SIGKILL left its metrics: they are not this one's passes
	rm -f "$QSTATE/$QNAME.json"
	# shellcheck disable=SC2086
	QPID=$("$ANOLE" qos run -c "${1:-$QCONF}" -d ${QOS_RUN_V--v} --log-file "$WORK/agent.log") ||
		{ cat "$WORK/agent.log" >&2 2>/dev/null; fail "the agent did not start"; }
	QAGENTS+=("$QPID")
}

# qos_stop: SIGTERM and wait until the pid is gone (it restores first)
qos_stop() {
	kill -TERM "$QPID" 2>/dev/null || return 0
	wait_until 30 "! kill -0 $QPID 2>/dev/null" || fail "the agent ignored SIGTERM"
}

# wait_until SECONDS 'SHELL CONDITION': poll every 0.1 s
wait_until() {
	local end
	end=$(($(date +%s%N) + $1 * 1000000000))
	while [ "$(date +%s%N)" -lt "$end" ]; do
		eval "$2" && return 0
		sleep 0.1
	done
	eval "$2"
}

# qos_passes: the passes the running agent has made, from its metrics file
# (written at the end of each pass); 0 before the first
qos_passes() {
	local n
	n=$(sed -n 's/.*"passes":\([0-9]*\).*/\1/p' "$QSTATE/$QNAME.json" 2>/dev/null)
	echo "${n:-0}"
}

# qos_wait_passes N: until the agent has made N passes. The agent's own count
# is the margin; the time limit only catches an agent that stopped working.
qos_wait_passes() {
	wait_until 120 "[ \$(qos_passes) -ge $1 ]" ||
		fail "the agent made $(qos_passes) passes in 120 s, waited for $1"
}

# qos_within_passes N 'SHELL CONDITION': until CONDITION holds or the agent
# has made N passes more than now; then CONDITION's status. For what the
# agent does within N passes: a loaded host makes its passes come later.
qos_within_passes() {
	local until=$(($(qos_passes) + $1))
	wait_until 120 "$2 || [ \$(qos_passes) -ge $until ]"
	eval "$2"
}

# qos_json PYTHON-EXPR: evaluate EXPR on `anole qos status --json` (as s)
qos_json() {
	"$ANOLE" qos status -c "$QCONF" --json |
		"$PY" -c "import json,sys; s=json.load(sys.stdin); print($1)"
}

# knob_snapshot FILE: every knob file of the test's groups and their bytes
knob_snapshot() {
	local f
	for f in "$V1CPU/$QNAME"*/cpu.* "$V1CPU/$QNAME"/*/cpu.* \
		"$V1MEM/$QNAME"*/memory.*limit_in_bytes "$V1MEM/$QNAME"/*/memory.*limit_in_bytes \
		"$V1BLK/$QNAME"*/blkio.throttle.*_device "$V1BLK/$QNAME"/*/blkio.throttle.*_device \
		"$V1CS/$QNAME"*/cpuset.cpus "$V1CS/$QNAME"/*/cpuset.cpus; do
		# cpu.shares: the tests' own weights, not the agent's
		case "$f" in *.stat|*.stat.local|*/cpu.shares) continue ;; esac
		[ -f "$f" ] || continue
		printf '== %s\n' "$f"
		cat "$f"
	done >"$1"
}

_qos_cleanup() {
	local p d h
	set +e
	for p in "${QAGENTS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${QAGENTS[@]}"; do
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	done
	[ -f "$QCONF" ] && "$ANOLE" qos restore -c "$QCONF" >/dev/null 2>&1
	# the test's subtree and groups named after it (adopted ones)
	for d in $V1CPU/$QNAME* $V1ACCT/$QNAME* $V1MEM/$QNAME* $V1BLK/$QNAME* $V1CS/$QNAME* $V2/$QNAME* \
		${QV2MOUNT:+$QV2MOUNT/$QNAME*}; do
		[ -d "$d" ] || continue
		for _ in 1 2 3; do
			find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null |
				xargs -r kill -KILL 2>/dev/null
			sleep 0.2
		done
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	return 0
}
trap '_qrc=$?; set +e; _qos_cleanup; (exit $_qrc); _cleanup' EXIT
