#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The command line: --help of every command exits 0 and prints its usage;
# unknown commands/options and bad arguments exit 2 with a hint; the --json
# outputs of build, check and inspect parse and hold the expected keys with
# values that agree with the tree, the files on disk and each other.
. "$TESTDIR/lib.sh"
need_anole

A=$ANOLE
out=$WORK/out
err=$WORK/err

log "--help"
for args in "--help" "help" "-h" "image --help" "image build --help" "image check --help" \
	"image inspect --help" "image unpack --help" "image build -h" "image check -h"; do
	# shellcheck disable=SC2086
	assert_rc 0 "$A" $args >"$out" 2>"$err"
	assert_grep "usage: anole" "$out" "anole $args"
done
for verb in build check inspect unpack; do
	"$A" image "$verb" --help >"$out"
	assert_grep "usage: anole image $verb" "$out" "image $verb --help"
	assert_grep "--help" "$out" "image $verb --help lists its options"
done
# the version is meson's project version, whichever way it is asked for
want=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$TESTDIR/../meson.build" | head -1)
[ -n "$want" ] || fail "no project version in meson.build"
for args in version --version -V; do
	assert_rc 0 "$A" $args >"$out"
	assert_eq "$(cat "$out")" "anole $want" "anole $args"
done
assert_rc 0 "$A" --version --json >"$out"
assert_eq "$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["version"])' <"$out")" "$want" \
	"anole --version --json"
assert_rc 2 "$A" version --bogus >"$out" 2>"$err"
assert_grep "unknown argument '--bogus'" "$err" "anole version --bogus"

log "usage errors exit 2"
usage_err() { # CMD...
	local rc=0
	"$@" >"$out" 2>"$err" || rc=$?
	check_not_crashed "$rc" "$*"
	[ "$rc" -eq 2 ] || { cat "$out" "$err"; fail "'$*' exited $rc, expected 2"; }
	[ -s "$err" ] || fail "'$*' gave no message on stderr"
}
mkdir -p "$WORK/src"
echo hello >"$WORK/src/file"
usage_err "$A"
usage_err "$A" bogus
usage_err "$A" image
usage_err "$A" image bogus
for verb in build check inspect unpack; do
	usage_err "$A" image "$verb" --no-such-option x y
	grep -q "Try 'anole image $verb --help'" "$err" || fail "image $verb: no hint to --help"
done
usage_err "$A" image build
usage_err "$A" image build "$WORK/src"
usage_err "$A" image build "$WORK/src" "$WORK/src2" -o "$WORK/x.erofs"
usage_err "$A" image check
usage_err "$A" image check a b
usage_err "$A" image inspect
usage_err "$A" image inspect a b c
usage_err "$A" image unpack only-one
for cs in 3000 2K 128M 100K abc -4096 0; do
	usage_err "$A" image build "$WORK/src" -o "$WORK/x.erofs" --chunk-size "$cs"
done
usage_err "$A" image build "$WORK/src" -o "$WORK/x.erofs" --uuid not-a-uuid
usage_err "$A" image build "$WORK/src" -o "$WORK/x.erofs" --uuid 0123456789abcdef0123456789abcdef00
usage_err "$A" image build "$WORK/src" -o "$WORK/x.erofs" --timestamp yesterday
usage_err "$A" image build "$WORK/src" -o "$WORK/x.erofs" --label 0123456789abcdef
usage_err "$A" image build "$WORK/src" -o "$WORK/x.erofs" --threads 5000
SOURCE_DATE_EPOCH=soon usage_err "$A" image build "$WORK/src" -o "$WORK/x.erofs"
usage_err "$A" image check "$WORK/x.erofs" --max-errors 0
assert_missing "$WORK/x.erofs" "image after usage errors"

log "accepted sizes"
for cs in 4096 4K 64K 64KiB 1M 1MiB 67108864; do
	build_ok "$WORK/src" "$WORK/cs.erofs" --chunk-size "$cs" -q
done
build_ok "$WORK/src" "$WORK/lbl.erofs" --label 0123456789abcde --uuid 0123456789ABCDEF0123456789ABCDEF -q
"$PY" "$TESTDIR/erofs_img.py" "$WORK/lbl.erofs" sb >"$WORK/sb.json"
assert_eq "$(json_get "$WORK/sb.json" volume_name)" 0123456789abcde "superblock volume name from --label"
assert_eq "$(json_get "$WORK/sb.json" uuid)" 0123456789abcdef0123456789abcdef "superblock uuid from --uuid (upper case)"

log "compression levels: ALG,LEVEL everywhere, ALG:LEVEL still accepted"
# text that compresses, and better at zstd 19 than at 1 (a level is applied)
mkdir -p "$WORK/zsrc"
"$PY" -c '
import random, sys
r = random.Random(5)
words = [("".join(r.choice("abcdefghij") for _ in range(r.randint(2, 9)))) for _ in range(3000)]
sys.stdout.write(" ".join(r.choice(words) for _ in range(150000)))' >"$WORK/zsrc/text"
tag() { local t=${1//,/.comma.}; echo "${t//:/.colon.}"; }
for spec in zstd,19 zstd:19 zstd,1; do
	mkdir -p "$WORK/blobs-$(tag $spec)"
	build_ok "$WORK/zsrc" "$WORK/t-$(tag $spec).erofs" --blob-dir "$WORK/blobs-$(tag $spec)" \
		--compress "$spec" --uuid 0123456789abcdef0123456789abcdef --timestamp 0 -q
done
blob_sum() { cat "$WORK/blobs-$(tag "$1")"/* | cksum; }
blob_size() { du -b --apparent-size -s "$WORK/blobs-$(tag "$1")" | cut -f1; }
assert_eq "$(blob_sum zstd:19)" "$(blob_sum zstd,19)" "blob of --compress zstd:19 against zstd,19"
cmp "$WORK/t-$(tag zstd:19).erofs" "$WORK/t-$(tag zstd,19).erofs" ||
	fail "images of --compress zstd:19 and zstd,19 differ"
assert_ne "$(blob_sum zstd,1)" "$(blob_sum zstd,19)" "blobs of zstd,1 and zstd,19 (the level applied)"
[ "$(blob_size zstd,19)" -lt "$(blob_size zstd,1)" ] ||
	fail "zstd,19 blob ($(blob_size zstd,19) B) not smaller than zstd,1's ($(blob_size zstd,1) B)"
for spec in zstd,15 zstd:15 zstd,1; do
	build_ok "$WORK/zsrc" "$WORK/z-$(tag $spec).erofs" -z "$spec" \
		--uuid 0123456789abcdef0123456789abcdef --timestamp 0 -q
done
cmp "$WORK/z-$(tag zstd:15).erofs" "$WORK/z-$(tag zstd,15).erofs" ||
	fail "images of -z zstd:15 and -z zstd,15 differ"
cmp -s "$WORK/z-$(tag zstd,1).erofs" "$WORK/z-$(tag zstd,15).erofs" &&
	fail "images of -z zstd,1 and -z zstd,15 are equal: the level is not applied"
# a bad level or algorithm: exit status not 0, a message naming the option
# and the value, no image
bad_level() { # OPTION-NAME VALUE CMD...
	local name=$1 value=$2 rc=0; shift 2
	"$@" >"$out" 2>"$err" || rc=$?
	check_not_crashed "$rc" "$*"
	[ "$rc" -ne 0 ] || fail "'$*' succeeded"
	assert_grep "$name '$value'" "$err" "message of '$*'"
}
for v in zstd,23 zstd:0 lz4,13 none,3 brotli zstd,x; do
	bad_level --compress "$v" "$A" image build "$WORK/zsrc" -o "$WORK/bad.erofs" --blob-dir "$WORK/bb" --compress "$v"
	bad_level --compress "$v" "$A" image convert oci:"$WORK/none" -o oci:"$WORK/none2" --compress "$v"
done
for v in zstd:99 lz4hc,2 lzma,50 lz4,3 brotli,1 zstd,23; do
	bad_level -z "$v" "$A" image build "$WORK/zsrc" -o "$WORK/bad.erofs" -z "$v"
done
assert_grep "must be 1-22" "$err" "-z zstd,23 message says the allowed levels"
assert_missing "$WORK/bad.erofs" "image after bad compression levels"
"$A" image build --help | grep -q -- "--compress ALG\[,LEVEL\]" || fail "build --help: --compress ALG[,LEVEL]"
"$A" image convert --help | grep -q -- "--compress ALG\[,LEVEL\]" || fail "convert --help: --compress ALG[,LEVEL]"
"$A" image build --help | grep -q -- "ALG:LEVEL\|zstd:" && fail "build --help still documents ALG:LEVEL"

log "--json"
need_root
make_srcfs "$WORK/srcfs"
SRC=$WORK/srcfs/tree
gen_tree "$SRC" --seed 71 --small --parts types,hardlinks,xattrs,sizes,sparse
"$PY" "$TESTDIR/treestat.py" "$SRC" >"$WORK/treestat.json"
UUID=0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9
IMG=$WORK/j.erofs
"$A" image build "$SRC" -o "$IMG" --json --uuid "$UUID" --timestamp 1700000000 >"$WORK/build.json" 2>"$err" ||
	fail "build --json failed: $(cat "$err")"
"$A" image build "$SRC" -o "$WORK/jb.erofs" --json --chunk-size 64K --blob "$WORK/jb.blob" \
	>"$WORK/build-blob.json" 2>"$err" || fail "build --json --blob failed: $(cat "$err")"
"$A" image check "$IMG" --json >"$WORK/check.json" 2>"$err" || fail "check --json failed: $(cat "$err")"
"$A" image check "$WORK/jb.erofs" --device "$WORK/jb.blob" --json >"$WORK/check-blob.json" 2>"$err" ||
	fail "check --json --device failed: $(cat "$err")"
"$A" image inspect "$IMG" --json >"$WORK/inspect.json" 2>"$err" || fail "inspect --json failed: $(cat "$err")"
for p in types/regular types/symlink-0100 types/chr-4095-1048575 hl/a/g00-0 sizes/s00065537 types/dir /; do
	"$A" image inspect "$IMG" "$p" --json >"$WORK/inspect-path-$(echo "$p" | tr / _).json" 2>"$err" ||
		fail "inspect $p --json failed: $(cat "$err")"
done
# a corrupted image: check --json says so
cp "$IMG" "$WORK/bad.erofs"
"$PY" - "$WORK/bad.erofs" <<'EOF'
import struct, sys, os
sys.path.insert(0, os.environ["TESTDIR"])
import erofs_img
img = erofs_img.Image(sys.argv[1])
ino = img.inode(img.lookup(b"types/dir"))
struct.pack_into("<H", img.data, ino.off + 4, 0o170755)   # i_mode: bogus file type
img.fix_checksum()
img.save()
EOF
rc=0
"$A" image check "$WORK/bad.erofs" --json >"$WORK/check-bad.json" 2>"$err" || rc=$?
check_not_crashed "$rc" "check --json of a corrupted image"
assert_eq "$rc" 1 "exit status of check --json on a corrupted image"

"$PY" - "$WORK" "$SRC" "$IMG" "$UUID" <<'EOF' || fail "JSON outputs"
import glob, hashlib, json, os, stat, sys
work, src, img, uuid = sys.argv[1:5]
bad = []
def load(name):
    text = open(os.path.join(work, name)).read()
    try:
        doc = json.loads(text)
    except ValueError as e:
        bad.append("%s: not JSON (%s): %r" % (name, e, text[:200]))
        return {}
    if not isinstance(doc, dict):
        bad.append("%s: not a JSON object" % name)
        return {}
    return doc
def need(doc, name, keys):
    missing = [k for k in keys if k not in doc]
    if missing:
        bad.append("%s: missing keys %s" % (name, missing))
def expect(name, what, got, want):
    if got != want:
        bad.append("%s: %s = %r, expected %r" % (name, what, got, want))

ts = json.load(open(os.path.join(work, "treestat.json")))
b = load("build.json")
need(b, "build.json", ["image", "image_bytes", "inodes", "files", "dirs", "bytes_in",
                       "compact_inodes", "extended_inodes", "shared_xattrs", "files_deduped",
                       "chunks", "chunks_deduped"])
if b:
    expect("build.json", "image", b.get("image"), img)
    expect("build.json", "image_bytes", b.get("image_bytes"), os.stat(img).st_size)
    expect("build.json", "inodes", b.get("inodes"), ts["inodes"])
    expect("build.json", "dirs", b.get("dirs"), ts["dirs"])
    expect("build.json", "files", b.get("files"), ts["regs"])
    expect("build.json", "bytes_in", b.get("bytes_in"), ts["apparent_bytes"])
    expect("build.json", "compact+extended inodes",
           b.get("compact_inodes", 0) + b.get("extended_inodes", 0), ts["inodes"])
bb = load("build-blob.json")
need(bb, "build-blob.json", ["blob", "blob_bytes", "blob_digest", "chunks", "chunks_deduped"])
if bb:
    blob = os.path.join(work, "jb.blob")
    expect("build-blob.json", "blob", bb.get("blob"), blob)
    expect("build-blob.json", "blob_bytes", bb.get("blob_bytes"), os.stat(blob).st_size)
    expect("build-blob.json", "blob_digest", bb.get("blob_digest"),
           "sha256:" + hashlib.sha256(open(blob, "rb").read()).hexdigest())
    if not bb.get("chunks"):
        bad.append("build-blob.json: no chunks counted")
for name in ("check.json", "check-blob.json"):
    c = load(name)
    need(c, name, ["image", "ok", "errors", "inodes", "dirs", "files", "bytes_read"])
    if c:
        expect(name, "ok", c.get("ok"), True)
        expect(name, "errors", c.get("errors"), 0)
        expect(name, "inodes", c.get("inodes"), ts["inodes"])
        expect(name, "dirs", c.get("dirs"), ts["dirs"])
        expect(name, "files", c.get("files"), ts["regs"])
c = load("check-bad.json")
need(c, "check-bad.json", ["ok", "errors"])
if c:
    expect("check-bad.json", "ok", c.get("ok"), False)
    if not c.get("errors"):
        bad.append("check-bad.json: errors = %r on a corrupted image" % c.get("errors"))
i = load("inspect.json")
need(i, "inspect.json", ["uuid", "block_size", "inodes", "blocks"])
if i:
    if str(i.get("uuid", "")).replace("-", "").lower() != uuid.replace("-", ""):
        bad.append("inspect.json: uuid %r, expected %s" % (i.get("uuid"), uuid))
    expect("inspect.json", "inodes", i.get("inodes"), ts["inodes"])
    expect("inspect.json", "blocks * block_size", i.get("blocks", 0) * i.get("block_size", 0),
           os.stat(img).st_size)
types = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink",
         stat.S_IFCHR: "chrdev", stat.S_IFBLK: "blkdev", stat.S_IFIFO: "fifo",
         stat.S_IFSOCK: "socket"}
for f in sorted(glob.glob(os.path.join(work, "inspect-path-*.json"))):
    name = os.path.basename(f)
    p = load(name)
    need(p, name, ["path", "nid", "type", "mode", "uid", "gid", "nlink", "size", "mtime"])
    if not p:
        continue
    rel = p.get("path", "").strip("/")
    st = os.lstat(os.path.join(src, rel) if rel else src)
    mode = p.get("mode")
    mode = int(mode, 8) if isinstance(mode, str) else mode
    expect(name, "mode", mode, stat.S_IMODE(st.st_mode))
    expect(name, "uid", p.get("uid"), st.st_uid)
    expect(name, "gid", p.get("gid"), st.st_gid)
    expect(name, "nlink", p.get("nlink"), st.st_nlink)
    expect(name, "mtime", (p.get("mtime"), p.get("mtime_nsec", 0)), divmod(st.st_mtime_ns, 10**9))
    if not stat.S_ISDIR(st.st_mode):
        expect(name, "size", p.get("size"), st.st_size)
    t = types.get(stat.S_IFMT(st.st_mode))
    if t == "file" and p.get("type") in ("file", "regular", "reg"):
        pass
    elif p.get("type") not in (t, {"chrdev": "chr", "blkdev": "blk", "socket": "sock"}.get(t)):
        bad.append("%s: type %r for a %s" % (name, p.get("type"), t))
    if t == "symlink":
        expect(name, "target", p.get("target"), os.readlink(os.path.join(src, rel)))
print("\n".join(bad) or "json ok: build, build --blob, check, check --device, corrupted check, "
      "inspect, inspect PATH")
sys.exit(1 if bad else 0)
EOF
# optional parts: `anole features` lists each; the commands of one left out
# exit 1 naming it and why
"$ANOLE" features >"$WORK/features.txt" || fail "anole features failed"
"$ANOLE" features --json >"$WORK/features.json" || fail "anole features --json failed"
"$PY" - "$WORK/features.json" "$WORK/features.txt" <<'EOF' || fail "anole features: text and JSON disagree"
import json, sys
j = json.load(open(sys.argv[1]))
text = {l.split()[0]: l.split()[1] == "yes" for l in open(sys.argv[2])}
assert set(j) == set(text), (j, text)
assert {"diag", "monitor", "console", "tune", "fuse", "zstd", "lz4", "lzma", "deflate"} <= set(j), j
for k, v in j.items():
    assert v["built"] == text[k] and (v["built"] or v["reason"]), (k, v)
EOF
mkdir -p "$WORK/feat-src" && echo data >"$WORK/feat-src/f"
for part in diag monitor console tune fuse zstd lz4 lzma deflate; do
	have_feature "$part" && continue
	status=1 msg="^anole: anole was built without $part: ."
	case $part in
	diag) cmd=(diag runqlat) ;;
	monitor) cmd=(monitor --listen 127.0.0.1:0) ;;
	console) cmd=(console serve --listen 127.0.0.1:0 --data "$WORK/console") ;;
	tune) cmd=(tune rollback) ;;
	fuse) cmd=(image mount a.img "$WORK/mnt") ;;
	zstd|lz4) cmd=(image build "$WORK/feat-src" -o "$WORK/feat.img" --blob-dir "$WORK/feat-blobs"
		--compress "$part")
		status=2 msg="--compress '$part': anole was built without $part" ;;
	lzma|deflate) cmd=(image build "$WORK/feat-src" -o "$WORK/feat.img" -z "$part")
		msg="-z '$part': anole was built without $part" ;;
	esac
	rc=0
	"$ANOLE" "${cmd[@]}" >/dev/null 2>"$WORK/without.err" || rc=$?
	assert_eq "$rc" "$status" "anole ${cmd[*]} without $part: exit status"
	assert_grep "$msg" "$WORK/without.err" "anole ${cmd[*]}"
	assert_missing "$WORK/feat.img" "the image of anole ${cmd[*]}"
	log "without $part: $(cat "$WORK/without.err")"
done

# every command that talks to a registry takes the same store options,
# with the same ranges and message
store_cmds=("blob cat" "blob size" "blob push" "image convert" "image pull" "image push")
have_feature fuse && store_cmds+=("image mount")
for c in "${store_cmds[@]}"; do
	# shellcheck disable=SC2086 # two words
	"$ANOLE" $c --help >"$WORK/store-help.txt" || fail "anole $c --help failed"
	for o in --retries --timeout --backoff --insecure-registry --auth-file --ca-file; do
		grep -q -- "$o" "$WORK/store-help.txt" || fail "anole $c --help does not list $o"
	done
	rc=0
	# shellcheck disable=SC2086
	"$ANOLE" $c --backoff 0 a b 2>"$WORK/store.err" || rc=$?
	assert_eq "$rc" 2 "anole $c --backoff 0: exit status"
	assert_grep "^anole $c: --backoff takes 1 to 60000 milliseconds" "$WORK/store.err" "anole $c --backoff 0"
done
log "pass"
