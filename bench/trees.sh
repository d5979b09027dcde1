# SPDX-License-Identifier: Apache-2.0
# Shared by the benches: the real trees they run on (made once, cached in
# $WORK) and timing helpers. Sourced with WORK set, from the repository root.
need() { command -v "$1" >/dev/null || apt-get install -y -q --no-install-recommends "$2" >/dev/null; }
need debootstrap debootstrap
command -v npm >/dev/null || { echo "bench: npm is needed for the node_modules tree" >&2; exit 1; }

apt_mirror() {
	# the first Debian URI the host's apt uses (deb822 or one-line format)
	local uri
	uri=$(grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
	[ -n "$uri" ] || uri=$(grep -h -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
	echo "$uri"
}

make_rootfs() {
	local dir=$WORK/rootfs suite
	[ -f "$dir/.done" ] && return 0
	suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
	rm -rf "$dir"
	echo "bench: debootstrap --variant=minbase $suite (once)" >&2
	debootstrap --variant=minbase "$suite" "$dir" "$(apt_mirror)" >"$WORK/debootstrap.log" 2>&1 ||
		{ tail "$WORK/debootstrap.log" >&2; return 1; }
	touch "$dir/.done"
}

make_node_modules() {
	local dir=$WORK/node
	[ -f "$dir/.done" ] && return 0
	rm -rf "$dir"; mkdir -p "$dir"
	echo "bench: npm install (once)" >&2
	(cd "$dir" && npm init -y >/dev/null &&
	 npm install --no-audit --no-fund typescript webpack @babel/core eslint \
		@angular/core rxjs lodash @mui/material three >"$WORK/npm.log" 2>&1) ||
		{ tail "$WORK/npm.log" >&2; return 1; }
	touch "$dir/.done"
}

make_sparse() {
	local dir=$WORK/sparse
	[ -f "$dir/.done" ] && return 0
	rm -rf "$dir"; mkdir -p "$dir"
	truncate -s 5G "$dir/huge"
	for off in 4096 1000000000 3000000007 5368709000; do
		printf 'anole' | dd of="$dir/huge" bs=1 seek=$off conv=notrunc status=none
	done
	touch "$dir/.done"
}

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run_timed() {   # prints seconds
	local t0 t1
	t0=$(now); "$@" >/dev/null 2>&1; t1=$(now)
	echo "$t1 - $t0" | bc -l
}

