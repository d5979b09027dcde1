#!/bin/bash
# OCI conversion and registry figures, anole vs the usual tools, in one run.
#
#   bench/oci.sh [ANOLE]     (default build/anole; run as root; a few minutes)
#
# Images (cached in $BENCH_WORK, default bench/work): v1 = the debootstrap
# minbase rootfs of bench/build.sh as one layer; v2 = v1 + a second layer
# with a few more Debian packages unpacked (apt-get download + dpkg -x).
# A local docker-registry on 127.0.0.1 serves them. Prints:
#   conversion time vs `skopeo copy` + `umoci unpack` of the same image
#   (anole: registry to registry, pull + build + push; median of REPEAT);
#   bytes pushed for v2 with and without --chunk-dict v1;
#   cold mount-and-run from the registry vs pull + unpack + run.
set -euo pipefail
ANOLE=$(realpath "${1:-build/anole}")
cd "$(dirname "$0")/.."
WORK=$(realpath -m "${BENCH_WORK:-bench/work}")
mkdir -p "$WORK"
for c in umoci skopeo docker-registry curl bc; do
	command -v "$c" >/dev/null || apt-get install -y -q --no-install-recommends \
		"$( [ "$c" = docker-registry ] && echo docker-registry || echo "$c")" >/dev/null
done
[ -f "$WORK/rootfs/.done" ] || ./bench/build.sh "$ANOLE" >/dev/null   # makes the rootfs

T=$(mktemp -d /var/tmp/anole-bench-oci.XXXXXX)
REG_PID=
cleanup() {
	for m in "$T"/mnt; do mountpoint -q "$m" && { "$ANOLE" image umount "$m" || umount -l "$m"; }; done
	[ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }

echo "bench: making the OCI images (v1 rootfs, v2 = v1 + packages)" >&2
cd "$T"
umoci init --layout img >/dev/null
umoci new --image img:v1 >/dev/null
umoci unpack --image img:v1 b >/dev/null
cp -a "$WORK/rootfs/." b/rootfs/
rm -f b/rootfs/.done
umoci repack --image img:v1 b >/dev/null
mkdir debs && (cd debs && apt-get download -q less curl libcurl4 vim-tiny procps >/dev/null 2>&1) || true
rm -rf b; umoci unpack --image img:v1 b >/dev/null
for d in debs/*.deb; do [ -e "$d" ] && dpkg -x "$d" b/rootfs; done
umoci repack --image img:v2 b >/dev/null 2>&1 || umoci repack --image img:v1 b >/dev/null
rm -rf b
[ "$(umoci ls --layout img | grep -c v2)" = 1 ] || { umoci tag --image img:v1 v2; }
added=$(du -sb debs 2>/dev/null | cut -f1 || echo 0)
# v3: the same tree as v2 rebuilt as one squashed layer (every layer digest new)
umoci unpack --image img:v2 b2 >/dev/null
umoci new --image img:v3 >/dev/null
umoci unpack --image img:v3 b3 >/dev/null
cp -a b2/rootfs/. b3/rootfs/
umoci repack --image img:v3 b3 >/dev/null
rm -rf b2 b3

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p registry
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/registry\nhttp:\n  addr: 127.0.0.1:%s\n  secret: bench\n' "$T" "$port" >registry.yml
docker-registry serve registry.yml >registry.log 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
R=127.0.0.1:$port
skopeo copy -q --dest-tls-verify=false oci:img:v1 "docker://$R/src:v1"
skopeo copy -q --dest-tls-verify=false oci:img:v2 "docker://$R/src:v2"
skopeo copy -q --dest-tls-verify=false oci:img:v3 "docker://$R/src:v3"

# Conversion: registry to registry for anole (pull, build, push), registry
# to an unpacked bundle for the peer, the same image from the same loopback
# registry. REPEAT rounds (default 3), alternating who goes first, each into
# a fresh repository or directory (nothing already pushed or pulled helps);
# the medians are compared. Caches stay warm for both.
REPEAT=${REPEAT:-3}
echo "bench: conversion, $REPEAT rounds (load before: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
peer_convert() {
	rm -rf peer peerb
	skopeo copy -q --src-tls-verify=false "docker://$R/src:v1" oci:peer:v1
	umoci unpack --image peer:v1 peerb >/dev/null
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
tp=() ta=()
for i in $(seq "$REPEAT"); do
	for who in $( [ $((i % 2)) = 1 ] && echo "peer anole" || echo "anole peer"); do
		t0=$(now)
		if [ "$who" = peer ]; then
			peer_convert
		else
			"$ANOLE" image convert -q "docker://$R/src:v1" -o "docker://$R/conv$i:v1" --json >"c1-$i.json"
		fi
		t1=$(now)
		if [ "$who" = peer ]; then tp+=("$(secs "$t0" "$t1")"); else ta+=("$(secs "$t0" "$t1")"); fi
	done
done
peer_conv=$(median "${tp[@]}")
anole_conv=$(median "${ta[@]}")
echo "bench: conversion rounds: anole ${ta[*]} s; skopeo copy + umoci unpack ${tp[*]} s (load after: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
cp c1-1.json c1.json
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "docker://$R/conv1:v1" "docker://$R/acc:v1"

echo "bench: v2 (v1 + a layer) and v3 (v2 squashed), with and without the chunk dictionary" >&2
# both repositories start with v1's blobs; only the dictionary differs
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "docker://$R/acc:v1" "docker://$R/nd:v1"
"$ANOLE" image convert -q "docker://$R/src:v2" -o "docker://$R/nd:v2" --json >c2n.json
"$ANOLE" image convert -q "docker://$R/src:v2" -o "docker://$R/acc:v2" --chunk-dict "docker://$R/acc:v1" --json >c2.json
"$ANOLE" image convert -q "docker://$R/src:v3" -o "docker://$R/nd:v3" --json >c3n.json
"$ANOLE" image convert -q "docker://$R/src:v3" -o "docker://$R/acc:v3" --chunk-dict "docker://$R/acc:v1" --json >c3.json
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

echo "bench: cold start from the registry" >&2
CMD='cat /etc/os-release >/dev/null; ls -l /etc >/dev/null; perl -e 1'
rm -rf peer2 peer2b; drop
t0=$(now)
skopeo copy -q --src-tls-verify=false "docker://$R/src:v1" oci:peer2:v1
umoci unpack --image peer2:v1 peer2b >/dev/null
chroot peer2b/rootfs /bin/sh -c "$CMD"
t1=$(now); peer_start=$(secs "$t0" "$t1")
mkdir -p mnt; drop
t0=$(now)
"$ANOLE" image mount "docker://$R/acc:v1" mnt --cache "$T/cache"
chroot mnt /bin/sh -c "$CMD"
t1=$(now); anole_start=$(secs "$t0" "$t1")
fetched=$("$ANOLE" image stats mnt --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes_fetched"])')
"$ANOLE" image umount mnt

printf '\n%-44s %12s %12s %8s\n' measure anole peer ratio
printf '%-44s %11.2fs %11.2fs %7.2fx\n' "convert v1 (vs skopeo copy + umoci unpack)" "$anole_conv" "$peer_conv" "$(echo "$anole_conv / $peer_conv" | bc -l)"
printf '%-44s %12s %12s\n' "  (median of $REPEAT rounds, registry to registry)" "" ""
printf '%-44s %12s %12s %7.2fx\n' "bytes pushed, v2 = v1 + layer (dict vs none)" "$(jget c2.json bytes_pushed)" "$(jget c2n.json bytes_pushed)" "$(echo "$(jget c2.json bytes_pushed) / $(jget c2n.json bytes_pushed)" | bc -l)"
printf '%-44s %12s %12s %7.2fx\n' "bytes pushed, v3 = v2 squashed (dict vs none)" "$(jget c3.json bytes_pushed)" "$(jget c3n.json bytes_pushed)" "$(echo "$(jget c3.json bytes_pushed) / $(jget c3n.json bytes_pushed)" | bc -l)"
printf '%-44s %11.2fs %11.2fs %7.2fx\n' "cold mount-and-run vs pull+unpack+run" "$anole_start" "$peer_start" "$(echo "$anole_start / $peer_start" | bc -l)"
echo "v2 added $added bytes of packages (.deb); bytes fetched for the start: $fetched"
