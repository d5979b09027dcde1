# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Helpers for tests/t_tune_*.sh, sourced after lib.sh. Each test gets its own
# state directory (journal) and profile directory, and its real kernel knobs
# live in a network namespace of its own (net.* sysctls and /sys/class/net
# are per namespace), so nothing it changes is seen by the machine.
need_feature tune
export ANOLE_TUNE_STATE=$WORK/state
export ANOLE_TUNE_PROFILE_PATH=$WORK/profiles
mkdir -p "$ANOLE_TUNE_PROFILE_PATH"
TUNE_NS=""

# tune_netns: make the namespace (needs root and ip); skip without them
tune_netns() {
	need_root
	need_cmd ip
	TUNE_NS="tune_t$$"
	ip netns add "$TUNE_NS" || skip "cannot create a network namespace"
	ip -n "$TUNE_NS" link set lo up
}
# in_ns CMD...: run in the namespace, with its own /sys
in_ns() { ip netns exec "$TUNE_NS" "$@"; }

_tune_cleanup() {
	[ -n "$TUNE_NS" ] && ip netns del "$TUNE_NS" 2>/dev/null
	return 0
}
# set +e first: under errexit, (exit 1) would end the trap before _cleanup, which
# unmounts and kills what a failed test registered (a failed t_tune_params left
# debugfs mounted)
trap '_tune_rc=$?; set +e; _tune_cleanup; (exit $_tune_rc); _cleanup' EXIT

# snapshot FILE...: sha256 of each file's bytes ("absent" if missing)
snapshot() {
	local f
	for f; do
		if [ -e "$f" ]; then
			printf '%s %s\n' "$(sha256sum <"$f" | cut -d' ' -f1)" "$f"
		else
			printf 'absent %s\n' "$f"
		fi
	done
}
