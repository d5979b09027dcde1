#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Fuzz the EROFS image reader for SECONDS seconds, then the tar-layer
# path of the builder (a third of that), the chunk table of --blob-dir
# images and OCI image layouts (a sixth each), and registries.conf with its
# TOML reader (a twelfth), image references (a twelfth), and trust
# policies with signature payloads (a twelfth).
#
#   fuzz/run.sh BUILD_DIR SECONDS
#
# BUILD_DIR holds fuzz_image_reader (make fuzz). The seed corpus is made of
# small images from Debian's mkfs.erofs (flat, chunked, LZ4-compressed, with
# xattrs, ACLs, symlinks, hard links, devices, fifos, long names) and, when BUILD_DIR has
# it, from anole's own builder. Exits non-zero if the fuzzer finds a crash,
# a sanitizer report, a leak or a hang; the reproducer is kept and named.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR SECONDS" >&2
	exit 2
fi
build=$1
seconds=$2
fuzzer=$build/fuzz_image_reader
if [ ! -x "$fuzzer" ]; then
	echo "$0: $fuzzer not found; run 'make fuzz' first" >&2
	exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/anole-fuzz.XXXXXX")
keep=0
cleanup() { [ "$keep" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT

corpus=$work/corpus
mkdir -p "$corpus" "$work/artifacts"

# A small tree with every kind of inode; quiet about what the file
# system here cannot do (xattrs, ACLs, device nodes as non-root).
make_tree() {
	local t=$1
	mkdir -p "$t/dir/sub" "$t/empty"
	echo hello >"$t/small"
	head -c 5000 /dev/urandom >"$t/tail"
	head -c 8192 /dev/urandom >"$t/blocks"
	: >"$t/zero"
	ln -s small "$t/link"
	ln -s "$(printf 'x%.0s' $(seq 1 300))" "$t/longlink"
	ln "$t/small" "$t/dir/hard"
	printf 'n%.0s' $(seq 1 255) >/dev/null
	: >"$t/dir/$(printf 'n%.0s' $(seq 1 200))"
	for i in 1 2 3 4 5 6; do echo "$i" >"$t/dir/sub/f$i"; done
	truncate -s 40000 "$t/sparse"
	mkfifo "$t/fifo" 2>/dev/null || true
	mknod "$t/null" c 1 3 2>/dev/null || true
	mknod "$t/blk" b 7 200 2>/dev/null || true
	if command -v setfattr >/dev/null; then
		setfattr -n user.a -v value "$t/small" 2>/dev/null || true
		setfattr -n user.bin -v 0x0001ff "$t/tail" 2>/dev/null || true
		setfattr -n trusted.t -v x "$t/dir" 2>/dev/null || true
		for i in 1 2 3 4; do
			setfattr -n user.shared -v same "$t/dir/sub/f$i" 2>/dev/null || true
		done
	fi
	if command -v setfacl >/dev/null; then
		setfacl -m u:1234:rwx "$t/dir" 2>/dev/null || true
		setfacl -d -m g:55:rx "$t/dir" 2>/dev/null || true
	fi
}

n=0
seed() {        # seed NAME MKFS-ARGS...: one image into the corpus
	local name=$1
	shift
	if mkfs.erofs --quiet "$@" "$corpus/$name.img" "$work/tree" >/dev/null 2>&1 ||
	   mkfs.erofs "$@" "$corpus/$name.img" "$work/tree" >/dev/null 2>&1; then
		n=$((n + 1))
	else
		rm -f "$corpus/$name.img"
	fi
}

make_tree "$work/tree"
if command -v mkfs.erofs >/dev/null; then
	seed flat -T0
	seed chunk4k -T0 --chunksize=4096
	seed chunk64k -T0 --chunksize=65536
	seed noxattr -T0 -x-1
	seed blob -T0 --chunksize=4096 --blobdev="$work/blob.img"
	# compressed (LZ4): compact and full indexes, big pclusters, inline
	# tail pclusters; text-like data so that files span several extents
	rm -rf "$work/tree"
	mkdir -p "$work/tree/z"
	for i in $(seq 1 400); do echo "line $i of a compressible file, erofs lcluster pcluster"; done \
		>"$work/tree/z/text"
	head -c 5000 "$work/tree/z/text" >"$work/tree/z/short"
	head -c 3000 /dev/urandom >"$work/tree/z/rand"
	seed lz4 -T0 -zlz4
	seed lz4tail -T0 -zlz4hc -C16384 -Eztailpacking
	seed lz4legacy -T0 -zlz4 -Elegacy-compress
	rm -rf "$work/tree"
	mkdir -p "$work/tree"
	echo hi >"$work/tree/f"
	ln -s f "$work/tree/l"
	mkdir "$work/tree/d"
	seed mini -T0
	seed minichunk -T0 --chunksize=4096
else
	echo "$0: mkfs.erofs not found; fuzzing without mkfs seeds" >&2
fi
if [ -x "$build/anole" ]; then
	rm -rf "$work/tree"
	make_tree "$work/tree"
	"$build/anole" image build -q "$work/tree" -o "$corpus/anole.img" --timestamp 0 \
		>/dev/null 2>&1 && n=$((n + 1)) || rm -f "$corpus/anole.img"
	"$build/anole" image build -q "$work/tree" -o "$corpus/anole-chunk.img" --timestamp 0 \
		--chunk-size 4096 >/dev/null 2>&1 && n=$((n + 1)) || rm -f "$corpus/anole-chunk.img"
fi
echo "fuzz: $n seed images in $corpus; running $fuzzer for ${seconds}s"

# run_fuzzer WHAT FUZZER CORPUS SECONDS MAX_LEN LOG_LINES: run it (scratch
# files under $work) and show the end of its log; a crash, sanitizer report,
# leak or hang fails the whole run, with the log and reproducers kept.
run_fuzzer() {
	local what=$1 fz=$2 corp=$3 secs=$4 max_len=$5 lines=$6 rc=0
	local log=$work/fuzz-${what// /-}.log

	TMPDIR=$work "$fz" "$corp" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 \
		-max_len="$max_len" -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
		>"$log" 2>&1 || rc=$?
	tail -n "$lines" "$log"
	if [ "$rc" != 0 ] || ls "$work/artifacts/"* >/dev/null 2>&1; then
		keep=1
		echo "fuzz: $what FAILED (exit $rc); log and reproducers kept in $work" >&2
		ls -l "$work/artifacts" >&2 || true
		exit 1
	fi
	echo "fuzz: $what ok"
}
# share N: a 1/N share of SECONDS, at least 5
share() { echo $(( seconds / $1 > 5 ? seconds / $1 : 5 )); }

run_fuzzer "image reader" "$fuzzer" "$corpus" "$seconds" 131072 25

# The tar-layer path of the builder (OCI conversion), seeded with small tars
# of the same tree (plain, PAX with xattrs and ids, GNU with long names, and
# with a whiteout; gzip of one and of two members), a third of the time. PAX records carry the untrusted
# numbers (size, uid, gid, mtime) that libarchive parses loosely.
tar_fuzzer=$build/fuzz_tar_layer
if [ -x "$tar_fuzzer" ]; then
	tcorpus=$work/tar-corpus
	mkdir -p "$tcorpus"
	tar -C "$work/tree" -cf "$tcorpus/tree.tar" . 2>/dev/null || true
	tar -C "$work/tree" --format=pax --xattrs --owner=4000000000 --group=70000 \
		--mtime=@1700000000.5 -cf "$tcorpus/pax.tar" . 2>/dev/null || true
	mkdir -p "$work/long/$(printf 'd%.0s' $(seq 120))" &&
		echo x >"$work/long/$(printf 'd%.0s' $(seq 120))/$(printf 'f%.0s' $(seq 120))"
	tar -C "$work/long" --format=gnu -cf "$tcorpus/gnu-long.tar" . 2>/dev/null || true
	mkdir -p "$work/wh/etc" && : >"$work/wh/etc/.wh.passwd" && : >"$work/wh/.wh..wh..opq"
	tar -C "$work/wh" -cf "$tcorpus/whiteout.tar" . 2>/dev/null || true
	# gzip, as most layers are: inflated by image/builder/layerpipe.c (zlib),
	# one member and two (the tar split between them)
	gzip -c "$tcorpus/pax.tar" >"$tcorpus/pax.tar.gz" 2>/dev/null || true
	{ head -c 1024 "$tcorpus/tree.tar" | gzip -c; tail -c +1025 "$tcorpus/tree.tar" | gzip -c; } \
		>"$tcorpus/two-members.tar.gz" 2>/dev/null || true
	run_fuzzer "tar layers" "$tar_fuzzer" "$tcorpus" "$(share 3)" 262144 5
fi

# The chunk table of --blob-dir images (lazy mounts, --chunk-dict), seeded
# with the tables of three builds (one blob; two chunk sizes, and chunks
# split into fetch units with their split table), a sixth of the time: as
# extensions behind a correct footer (first byte even) and as a whole image
# tail with its footer (first byte odd).
meta_fuzzer=$build/fuzz_blobmeta
if [ -x "$meta_fuzzer" ] && [ -x "$build/anole" ]; then
	mcorpus=$work/meta-corpus
	mkdir -p "$mcorpus"
	for cs in 4096 65536 65536u; do
		rm -rf "$work/mblobs" && mkdir -p "$work/mblobs"
		unit=${cs%u}; [ "$cs" = "$unit" ] || unit=4096
		"$build/anole" image build -q "$work/tree" -o "$work/meta.img" --timestamp 0 \
			--chunk-size "${cs%u}" --fetch-unit "$unit" --blob-dir "$work/mblobs" \
			>/dev/null 2>&1 || continue
		python3 - "$work/meta.img" "$mcorpus/ext-$cs" "$mcorpus/file-$cs" <<'PY'
import struct, sys
img = open(sys.argv[1], "rb").read()
off, size = struct.unpack_from("<QQ", img, len(img) - 64 + 8)
open(sys.argv[2], "wb").write(b"\0" + img[off:off + size])
open(sys.argv[3], "wb").write(b"\1" + img[-(size + 64 + 1024):])
PY
	done
	run_fuzzer "chunk table" "$meta_fuzzer" "$mcorpus" "$(share 6)" 65536 5
fi

# OCI image layouts: index.json, a manifest, or a nested index (the first
# byte says which; fuzz_oci_layout.c), seeded with valid ones that point at
# the blobs the harness always stores, a sixth of the time.
oci_fuzzer=$build/fuzz_oci_layout
if [ -x "$oci_fuzzer" ]; then
	ocorpus=$work/oci-corpus
	mkdir -p "$ocorpus"
	python3 - "$ocorpus" <<'PY'
import hashlib, json, sys
d = sys.argv[1]
h = lambda b: hashlib.sha256(b).hexdigest()
cfg = h(b"{}")
man = ('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
       '"config":{"mediaType":"application/vnd.oci.image.config.v1+json",'
       '"digest":"sha256:%s","size":2},"layers":[{"mediaType":'
       '"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":2}]}' % (cfg, cfg)).encode()
mdesc = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
         "digest": "sha256:" + h(man), "size": len(man)}
def seed(name, role, obj):
    open("%s/%s" % (d, name), "wb").write(bytes([role]) + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()))
seed("index", 0, {"schemaVersion": 2, "manifests": [dict(mdesc, annotations={"org.opencontainers.image.ref.name": "latest"})]})
seed("manifest", 1, man)
acc = json.loads(man)
acc["layers"].append({"mediaType": "application/vnd.anole.image.metadata.v1.erofs",
                      "digest": "sha256:" + cfg, "size": 2})
seed("accelerated", 1, json.dumps(acc).encode())
seed("platforms", 2, {"schemaVersion": 2, "manifests": [
    dict(mdesc, platform={"os": "linux", "architecture": "arm64", "variant": "v8"}),
    dict(mdesc, platform={"os": "linux", "architecture": "amd64"})]})
PY
	run_fuzzer "OCI layout" "$oci_fuzzer" "$ocorpus" "$(share 6)" 16384 5
fi
# registries.conf (TOML), seeded with the forms of containers-registries.conf(5):
# version 2 tables with mirrors and rewrites, wildcards, version 1 lists,
# aliases, inline tables and every kind of string, a twelfth of the time.
conf_fuzzer=$build/fuzz_registries_conf
if [ -x "$conf_fuzzer" ]; then
	ccorpus=$work/conf-corpus
	mkdir -p "$ccorpus"
	cat >"$ccorpus/v2.conf" <<'EOF'
unqualified-search-registries = ["example.com"]
short-name-mode = "permissive"

[[registry]]
prefix = "example.com/foo"
insecure = false
blocked = false
location = "internal-registry-for-example.com/bar"

[[registry.mirror]]
location = "example-mirror-0.local/mirror-for-foo"

[[registry.mirror]]
location = "example-mirror-1.local/mirrors/foo"
insecure = true
pull-from-mirror = "digest-only"

[[registry]]
location = "127.0.0.1:5000"
mirror-by-digest-only = true
mirror = [ { location = "127.0.0.1:5001" }, { location = 'localhost:5002/x' } ]

[[registry]]
prefix = "*.example.com"
blocked = true
EOF
	cat >"$ccorpus/v1.conf" <<'EOF'
[registries.search]
registries = ['registry1.com', 'registry2.com']
[registries.insecure]
registries = ['registry3.com']
[registries.block]
registries = ["registry.untrusted.com", "registry.unsafe.com"]
EOF
	cat >"$ccorpus/strings.conf" <<'EOF'
[aliases]
  "alpine" = "docker.io/library/alpine"
  'lit' = """multi
line \u00e9 \U0001F600 \
  joined"""
  x.y = '''raw 'quoted' text'''
n = [0x1f, 0o7, 0b1, -5, +3, 1_000]
EOF
	run_fuzzer "registries.conf" "$conf_fuzzer" "$ccorpus" "$(share 12)" 8192 5
fi
# Image references (image/ref.c), seeded with one of each transport and
# the awkward valid forms (IPv6 host, port, tag and digest together, a
# directory with a colon, a docker-archive name with a registry port), a
# twelfth of the time.
ref_fuzzer=$build/fuzz_ref
if [ -x "$ref_fuzzer" ]; then
	rcorpus=$work/ref-corpus
	mkdir -p "$rcorpus"
	n=0
	for r in "oci:layout:v1" "oci:/srv/a:b/layout" "layout" "docker://127.0.0.1:5000/a/b:t" \
		"docker://[::1]:5000/lib/x__y.z-w@sha256:$(printf '%064d' 0)" \
		"docker://registry.example.com/ns/repo:1.0@sha256:$(printf 'ab%062d' 0)" \
		"oci-archive:img.tar:latest" "docker-archive:img.tar:reg:5000/a/b:v1" "./plain.img"; do
		printf '%s' "$r" >"$rcorpus/seed-$n"
		n=$((n + 1))
	done
	run_fuzzer "image references" "$ref_fuzzer" "$rcorpus" "$(share 12)" 1024 5
fi
# Trust policies and signature payloads (image/policy.c, image/signature.c):
# the first byte picks the parser (even: policy, odd: payload), a twelfth
# of the time.
policy_fuzzer=$build/fuzz_policy
if [ -x "$policy_fuzzer" ]; then
	pcorpus=$work/policy-corpus
	mkdir -p "$pcorpus"
	d=$(printf '%064d' 0)
	printf '%s' '0{"default":[{"type":"reject"}],"transports":{"docker":{"r.example/a":[{"type":"sigstoreSigned","keyPath":"/k.pub","signedIdentity":{"type":"matchRepoDigestOrExact"}}]},"file":{"/nonexistent":[{"type":"insecureAcceptAnything"}]}}}' >"$pcorpus/policy"
	printf '%s' '0{"default":[{"type":"sigstoreSigned","keyDatas":["LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0K"],"signedIdentity":{"type":"exactReference","dockerReference":"a/b:c"}}]}' >"$pcorpus/policy-keydata"
	printf '%s' "1{\"critical\":{\"identity\":{\"docker-reference\":\"r.example/a:v1\"},\"image\":{\"docker-manifest-digest\":\"sha256:$d\"},\"type\":\"cosign container image signature\"},\"optional\":null}" >"$pcorpus/payload"
	run_fuzzer "policies and signature payloads" "$policy_fuzzer" "$pcorpus" "$(share 12)" 8192 5
fi
# The console's untrusted inputs (a twelfth of the time each): an agent's
# /metrics text (console/promtext.c) and a diagnosis request checked against
# the allow-list (lib/diag_policy.c).
prom_fuzzer=$build/console/fuzz_promtext
if [ -x "$prom_fuzzer" ]; then
	pcorpus=$work/promtext-corpus
	mkdir -p "$pcorpus"
	printf '# HELP a b\n# TYPE a gauge\na 1\nb{x="y",z="\\"q\\n"} -2.5e3 1700000000000\nc{} +Inf\nd NaN\n' \
		>"$pcorpus/seed-0"
	run_fuzzer "Prometheus text" "$prom_fuzzer" "$pcorpus" "$(share 12)" 8192 5
fi
diag_policy_fuzzer=$build/fuzz_diag_policy
if [ -x "$diag_policy_fuzzer" ]; then
	dcorpus=$work/diag-policy-corpus
	mkdir -p "$dcorpus"
	echo '{"tool":"runqlat","duration":2,"options":{"pid":1,"milliseconds":true}}' >"$dcorpus/seed-0"
	echo '{"tool":"profile","duration":60,"options":{"frequency":99,"user_stacks_only":false}}' >"$dcorpus/seed-1"
	run_fuzzer "diagnosis requests" "$diag_policy_fuzzer" "$dcorpus" "$(share 12)" 4096 5
fi
# `anole tune` parameter files (tune/knob.c) and profiles (tune/profile.c),
# seeded with every domain and type and the shipped profiles, a twelfth of
# the time.
tune_fuzzer=$build/fuzz_tune_params
if [ -x "$tune_fuzzer" ]; then
	pcorpus=$work/tune-corpus
	mkdir -p "$pcorpus"
	cat >"$pcorpus/all.params" <<'EOF'
# every domain and type
sysctl net.core.somaxconn int 128..65535 step 128 default 4096
sysfs kernel/mm/transparent_hugepage/enabled enum always,madvise,never
cpu governor enum performance,powersave
debugfs sched/base_slice_ns int 100000..10000000
file /tmp/x float -1.5..2.5e3 step 0.5
command workers int 1..64 default 4 run /bin/echo # a comment inside the program
EOF
	printf 'file /a int 5..1\n' >"$pcorpus/empty.params"
	# the same target parses profiles too: the shipped ones as seeds
	cp "$(dirname "$0")"/../tune/profiles/*.conf "$pcorpus/"
	run_fuzzer "tune parameters" "$tune_fuzzer" "$pcorpus" "$(share 12)" 4096 5
fi
# The qos agent's configuration (TOML), seeded with the documented example,
# a twelfth of the time.
qos_fuzzer=$build/fuzz_qos_config
if [ -x "$qos_fuzzer" ]; then
	qcorpus=$work/qos-corpus
	mkdir -p "$qcorpus"
	sed -n '/^```toml$/,/^```$/p' "$(dirname "$0")/../docs/anole-qos.md" | sed '1d;$d' \
		>"$qcorpus/example.toml"
	printf '[cpu_suppress]\nthreshold_percent = 150\n[be]\ncgroups = ["/a", "/a/"]\n' \
		>"$qcorpus/bad.toml"
	run_fuzzer "qos configuration" "$qos_fuzzer" "$qcorpus" "$(share 12)" 8192 5
fi
# anole os: the boot-state sector and the OS image manifest (os/), seeded
# with a valid state and manifest, a twelfth of the time.
os_fuzzer=$build/os/fuzz_os
if [ -x "$os_fuzzer" ]; then
	ocorpus=$work/os-corpus
	mkdir -p "$ocorpus"
	python3 - "$ocorpus" <<'EOF'
import struct, sys
d = sys.argv[1]
def crc32c(b):
    crc = 0xffffffff
    for x in b:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xffffffff
s = bytearray(512)
s[0:8] = b'ANOLEBST'; s[8:12] = struct.pack('<I', 1); s[12:16] = struct.pack('<I', 5)
s[16:20] = bytes([1, 2, 0, 3]); s[20:22] = b'v1'; s[52:54] = b'v2'
s[508:512] = struct.pack('<I', crc32c(bytes(s[:508])))
open(d + '/state', 'wb').write(s)
h = 'sha256:' + '0' * 64
open(d + '/manifest', 'w').write('{"format":"anole-os/1","version":"v1","kernel_release":"6.1.0",'
    '"digest_algorithm":"sha256","files":{"vmlinuz":{"size":1,"digest":"%s"},'
    '"initrd.img":{"size":2,"digest":"%s"},"root.erofs":{"size":3,"digest":"%s"}}}' % (h, h, h))
EOF
	run_fuzzer "os boot state and manifest" "$os_fuzzer" "$ocorpus" "$(share 12)" 4096 5
fi
echo "fuzz: ok"
