#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `anole blob` on directory stores: push/size/cat round trips of blobs of
# 0, 1, 4096 and 1 MiB+3 bytes (flat DIR/<hex> and OCI layout
# DIR/blobs/sha256/<hex>), ranges equal to dd, the digest check of whole
# reads (a corrupted file is refused, nothing written), and the usage and
# error exits (2 for bad arguments, 1 for failures).
. "$TESTDIR/lib.sh"
. "$TESTDIR/blobstore_lib.sh"
need_anole

A=$ANOLE
store=$WORK/store
err=$ERR
mkdir -p "$WORK/in"

log "push, size and cat round trips"
for n in 0 1 4096 1048579; do
	f=$WORK/in/b$n
	d=$(make_blob "$f" "$n")
	got=$("$A" blob push "$store" "$f") || fail "push of $n bytes failed"
	assert_eq "$got" "$d" "digest printed by push"
	assert_exists "$store/${d#sha256:}"
	assert_eq "$("$A" blob size "$store" "$d")" "$n" "size of the $n byte blob"
	"$A" blob cat "$store" "$d" >"$WORK/out" || fail "cat of $n bytes failed"
	same_bytes "$f" "$WORK/out" "cat to stdout of $n bytes"
	"$A" blob cat "dir:$store" "$d" -o "$WORK/out2" || fail "cat -o failed"
	same_bytes "$f" "$WORK/out2" "cat -o of $n bytes"
done
f=$WORK/in/b1048579
d=sha256:$(sha256 "$f")
"$A" blob push "$store" "$f" --json >"$WORK/push.json"
assert_eq "$(json_get "$WORK/push.json" uploaded)" false "second push of the same file"
assert_eq "$(json_get "$WORK/push.json" digest)" "$d" "push --json digest"
assert_eq "$(json_get "$WORK/push.json" size)" 1048579 "push --json size"
"$A" blob size "$store" "$d" --json >"$WORK/size.json"
assert_eq "$(json_get "$WORK/size.json" size)" 1048579 "size --json"
[ -z "$(find "$store" -name '.*' -type f)" ] || fail "temporary files left in $store"

log "ranges"
for r in "0 1" "0 4096" "1 4095" "4095 2" "1048578 1" "1048575 4" "524288 300000" \
	"0 1048579" "1048579 0" "0 0" "7 0"; do
	# shellcheck disable=SC2086
	expect_range "$f" $r "$store" "$d"
done
"$A" blob cat "$store" "$d" --offset 1048000 --chunk-size 100 -o "$WORK/tail"
dd if="$f" of="$WORK/tail.want" bs=1000 skip=1048 status=none
same_bytes "$WORK/tail.want" "$WORK/tail" "tail with --offset and 100 byte requests"
"$A" blob cat "$store" "$d" --offset 1048579 >"$WORK/empty"
assert_eq "$(file_size "$WORK/empty")" 0 "cat from the end"

log "OCI image layout"
mkdir -p "$WORK/oci"
echo '{"imageLayoutVersion": "1.0.0"}' >"$WORK/oci/oci-layout"
"$A" blob push "$WORK/oci" "$WORK/in/b4096" >/dev/null
d4=sha256:$(sha256 "$WORK/in/b4096")
assert_exists "$WORK/oci/blobs/sha256/${d4#sha256:}"
"$A" blob cat "$WORK/oci" "$d4" | cmp -s - "$WORK/in/b4096" || fail "cat from an OCI layout"

log "a corrupted blob is refused when read whole, and nothing is written"
cp "$f" "$WORK/corrupt"
printf '\xff' | dd of="$WORK/corrupt" bs=1 seek=1000 conv=notrunc status=none
cp "$WORK/corrupt" "$store/${d#sha256:}"
rc_err 1 "$A" blob cat "$store" "$d" -o "$WORK/bad.out"
assert_grep "digest mismatch" "$err"
assert_missing "$WORK/bad.out" "output of a corrupted blob"
[ -z "$(find "$WORK" -maxdepth 1 -name '.bad.out.*')" ] || fail "temporary output left behind"
rc_err 1 "$A" blob cat "$store" "$d" >"$WORK/bad.stdout"
assert_eq "$(file_size "$WORK/bad.stdout")" 0 "stdout bytes of a corrupted blob"
# ranges are not verified here (the image layer checks chunk digests)
expect_range "$WORK/corrupt" 900 200 "$store" "$d"
assert_rc 0 "$A" blob cat "$store" "$d" --no-verify -o "$WORK/noverify"
same_bytes "$WORK/corrupt" "$WORK/noverify" "--no-verify"
cp "$f" "$store/${d#sha256:}"

log "errors"
missing=sha256:$(printf '%064d' 0)
rc_err 1 "$A" blob cat "$store" "$missing" >/dev/null
assert_grep "not found" "$err"
rc_err 1 "$A" blob size "$store" "$missing"
assert_grep "not found" "$err"
rc_err 1 "$A" blob cat "$store" "$d" --offset 1048580
assert_grep "beyond the end" "$err"
rc_err 1 "$A" blob cat "$store" "$d" --offset 1048578 --length 2 >/dev/null
assert_grep "beyond the end" "$err"
rc_err 1 "$A" blob push "$store" "$WORK/no-such-file"
rc_err 1 "$A" blob push "$store" "$WORK"
rc_err 1 "$A" blob cat "ftp://example/x" "$d"
assert_grep "unknown scheme" "$err"
rc_err 1 "$A" blob size "$WORK/in/b1" "$d"

log "usage"
for args in "blob --help" "blob cat --help" "blob size -h" "blob push --help"; do
	# shellcheck disable=SC2086
	assert_rc 0 "$A" $args >"$WORK/help"
	assert_grep "usage: anole blob" "$WORK/help" "anole $args"
done
assert_grep "auth-file" "$WORK/help" "common options in push --help"
usage() { rc_err 2 "$@" >/dev/null; [ -s "$err" ] || fail "'$*': no message"; }
usage "$A" blob
usage "$A" blob bogus
usage "$A" blob cat "$store"
usage "$A" blob cat "$store" sha256:abc
usage "$A" blob cat "$store" "${d^^}"
usage "$A" blob cat "$store" "$d" --offset x
usage "$A" blob cat "$store" "$d" --bogus
usage "$A" blob size "$store" "$d" extra
usage "$A" blob size "$store" "$d" --retries many
usage "$A" blob size "$store" "$d" --timeout 0
usage "$A" blob push "$store"
assert_grep "Try 'anole blob push --help'" "$err"
log "pass"
