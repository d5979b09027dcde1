#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole diag memleak finds the allocations a process makes and never frees,
# by the user stack that made them, and not those it frees.
#
# The process is a small C program compiled here: every 10 ms it leaks one
# block from each of malloc, calloc, realloc, posix_memalign and
# aligned_alloc, each in a function of its own (anole_test_leak_*), and
# makes and frees the same kinds of blocks in anole_test_tidy_function.
# Asserted: each leaking function is in a reported stack, symbolised, with
# bytes = allocations x its block size; the tidy function is in none (the
# free probes work, on every kind); with -- COMMAND the report at the
# command's exit still names its functions and counts exactly what it
# leaked; bad input is a clear error; no BPF object is left.
. "$TESTDIR/lib.sh"
. "$TESTDIR/diag_lib.sh"
need_diag
need_cmd cc

cat >"$WORK/leaky.c" <<'C'
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *volatile anole_test_sink;

/* noinline and no tail calls: each allocator returns into its function */
__attribute__((noinline)) void anole_test_leaky_function(void)
{
	char *p = malloc(1234);

	memset(p, 1, 1234);
	anole_test_sink = p;
}

__attribute__((noinline)) void anole_test_leak_calloc(void)
{
	anole_test_sink = calloc(3, 100);
	memset(anole_test_sink, 1, 1);
}

__attribute__((noinline)) void anole_test_leak_realloc(void)
{
	char *p = malloc(16);

	p = realloc(p, 2000);
	memset(p, 1, 1);
	anole_test_sink = p;
}

__attribute__((noinline)) void anole_test_leak_memalign(void)
{
	void *p = NULL;

	if (posix_memalign(&p, 64, 640))
		abort();
	memset(p, 1, 1);
	anole_test_sink = p;
}

__attribute__((noinline)) void anole_test_leak_aligned(void)
{
	anole_test_sink = aligned_alloc(64, 1280);
	memset(anole_test_sink, 1, 1);
}

__attribute__((noinline)) void anole_test_tidy_function(void)
{
	char *p = malloc(777), *q = calloc(7, 111), *r = malloc(16);
	void *a = NULL, *b;

	r = realloc(r, 3333);
	if (posix_memalign(&a, 64, 4444))
		abort();
	b = aligned_alloc(64, 5504);
	memset(p, 2, 777);
	anole_test_sink = p;
	free(p);
	free(q);
	free(r);
	free(a);
	free(b);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 0; /* 0: until killed */

	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	for (long i = 0; !n || i < n; i++) {
		anole_test_leaky_function();
		anole_test_leak_calloc();
		anole_test_leak_realloc();
		anole_test_leak_memalign();
		anole_test_leak_aligned();
		anole_test_tidy_function();
		usleep(10000);
	}
	return 0;
}
C
# frame pointers: the kernel walks user stacks by them
cc -O1 -g -fno-omit-frame-pointer -fno-optimize-sibling-calls -o "$WORK/leaky" "$WORK/leaky.c" ||
	fail "cannot compile the test program"

# stack_of FUNC: the reports' last stack whose frames name FUNC (python expr)
stack_of() {
	echo "[s for s in rows[-1]['stacks'] if any('$1+' in f for f in s['stack'])]"
}

# 1. -p PID, JSON, two reports a second apart
"$WORK/leaky" >"$WORK/leaky.out" &
leaky=$!
add_pid "$leaky"
for _ in $(seq 50); do grep -q '^ready' "$WORK/leaky.out" && break; sleep 0.1; done
diag_start pid memleak -p "$leaky" --json 1 2
diag_finish pid
assert_eq "$(diag_json 'len(rows)' "$WORK/pid.out")" 2 "reports"
assert_eq "$(diag_json "rows[-1]['pid']" "$WORK/pid.out")" "$leaky" "pid in the report"
for fs in anole_test_leaky_function:1234 anole_test_leak_calloc:300 anole_test_leak_realloc:2000 \
	anole_test_leak_memalign:640 anole_test_leak_aligned:1280; do
	fn=${fs%:*} size=${fs#*:}
	s=$(stack_of "$fn")
	[ "$(diag_json "len($s)" "$WORK/pid.out")" -ge 1 ] || {
		tail -n 1 "$WORK/pid.out" | head -c 3000 >&2
		fail "memleak -p: no stack with $fn"
	}
	count=$(diag_json "sum(x['allocations'] for x in $s)" "$WORK/pid.out")
	bytes=$(diag_json "sum(x['bytes'] for x in $s)" "$WORK/pid.out")
	log "$fn: $bytes bytes in $count allocations"
	[ "$count" -ge 30 ] || fail "$fn: $count allocations outstanding after 2 s at 100 a second"
	assert_eq "$bytes" "$((count * size))" "$fn: bytes = allocations x $size"
	# the innermost frame is the function itself, symbolised with its module
	assert_eq "$(diag_json "$s[0]['stack'][0].startswith('$fn+0x') and '(leaky)' in $s[0]['stack'][0]" "$WORK/pid.out")" \
		True "$fn: innermost frame"
done
assert_eq "$(diag_json "len($(stack_of anole_test_tidy_function))" "$WORK/pid.out")" 0 \
	"stacks of anole_test_tidy_function (it frees what it allocates)"
kill "$leaky"
wait "$leaky" 2>/dev/null || true

# 2. -- COMMAND, text: it runs 100 rounds and exits before the first
# interval; the last report, at its exit, has all 100 leaks, named
diag_start cmd memleak --older 0 5 -- "$WORK/leaky" 100
diag_finish cmd
assert_grep "^ready " "$WORK/cmd.out" "the command's own output"
assert_grep "^	123400 bytes in 100 allocations from stack$" "$WORK/cmd.out" \
	"the malloc leaks of the command, at its exit"
grep -A1 "^	123400 bytes in 100 allocations from stack$" "$WORK/cmd.out" | tail -n 1 >"$WORK/cmd.frame"
assert_grep "^		0 \[<[0-9a-f]*>\] anole_test_leaky_function+0x[0-9a-f]* (leaky)$" "$WORK/cmd.frame" \
	"innermost frame of the leak, symbolised after the command ended"
assert_grep "^	30000 bytes in 100 allocations from stack$" "$WORK/cmd.out" "the calloc leaks"
assert_no_grep "anole_test_tidy_function" "$WORK/cmd.out" "freed allocations"
assert_grep "is exiting" "$WORK/cmd.err" "the run ends with the command"

# 2b. a run that ends first (--duration) ends the command it started
diag_start cmdend memleak --duration 1 --json -- "$WORK/leaky" 0
diag_finish cmdend
child=$(sed -n 's/^ready \([0-9]*\)$/\1/p' "$WORK/cmdend.out")
[ -n "$child" ] || fail "the command of the --duration run did not start"
! kill -0 "$child" 2>/dev/null || { add_pid "$child"; fail "the command ($child) outlived the run"; }
assert_eq "$(diag_json "len($(stack_of anole_test_leaky_function))" <(grep '^{' "$WORK/cmdend.out"))" 1 \
	"the leaks of the --duration run's command"

# 3. bad input
assert_rc 2 "$ANOLE" diag memleak --duration 1
assert_rc 1 "$ANOLE" diag memleak -p 2147483 --duration 1
assert_rc 2 "$ANOLE" diag memleak -p 1 -- true
rc=0
"$ANOLE" diag memleak --duration 1 -- "$WORK/no-such-program" >/dev/null 2>"$WORK/bad.err" || rc=$?
assert_eq "$rc" 1 "memleak of a command that does not exist: exit status"
assert_grep "cannot run $WORK/no-such-program" "$WORK/bad.err" "message"
log "pass"
