#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Plain HTTP caches keep working: nginx with proxy_cache and the slice module
# (the configuration docs/anole-blob.md gives) in front of an http:// blob
# store (tests/httpd_fault.py, which counts what reaches it). A lazy mount
# through nginx fills its cache; a second mount with an empty anole cache
# reads the same files from nginx alone (the origin sees no new request,
# nginx logs HITs), and anole's requests carry nothing that defeats a cache.
. "$TESTDIR/lib.sh"
. "$TESTDIR/blobstore_lib.sh"
. "$TESTDIR/lazy_lib.sh"
need_root
need_anole
need_cmd curl nginx
[ -e /dev/fuse ] || skip "no /dev/fuse"

SRC=$WORK/tree
"$PY" "$LAZY_CHECK" make-files "$SRC" 10 --seed 53 --min 100000 --max 500000 || fail "make-files"
BLOBS=$WORK/blobs IMG=$WORK/meta.img
mkdir -p "$BLOBS"
"$ANOLE" image build -q "$SRC" -o "$IMG" --blob-dir "$BLOBS" --chunk-size 64K --json \
	>"$WORK/build.json" || fail "image build"
BLOB=$(json_get "$WORK/build.json" blob_digest)
log "blob $BLOB: $(wc -c <"$BLOBS/${BLOB#sha256:}") bytes"
start_fault_server "$BLOBS"

# nginx: one worker, everything under $WORK/nginx, stopped by pid
N=$WORK/nginx
mkdir -p "$N/cache"
NGINX_PORT=$(free_port)
cat >"$N/nginx.conf" <<EOF
daemon off;
master_process off;
user root;
worker_processes 1;
pid $N/nginx.pid;
error_log $N/error.log warn;
events { worker_connections 256; }
http {
    log_format cache '\$request_method \$uri "\$http_range" \$status \$upstream_cache_status '
                     'cc="\$http_cache_control" pragma="\$http_pragma" args="\$args"';
    access_log $N/access.log cache;
    proxy_cache_path $N/cache levels=1:2 keys_zone=blobs:10m max_size=1g inactive=30d
                     use_temp_path=off;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location /blobs/ {
            slice              1m;
            proxy_cache        blobs;
            proxy_cache_key    \$uri\$slice_range;
            proxy_set_header   Range \$slice_range;
            proxy_http_version 1.1;
            proxy_set_header   Connection "";
            proxy_cache_valid  200 206 30d;
            proxy_pass         $FS_URL;
        }
    }
}
EOF
nginx -p "$N" -e "$N/error.log" -c "$N/nginx.conf" &
add_pid $!
for _ in $(seq 100); do
	curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" && break
	sleep 0.05
done
curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" || { cat "$N/error.log"; fail "nginx did not start"; }
STORE=http://127.0.0.1:$NGINX_PORT/blobs
log "nginx with proxy_cache + slice on port $NGINX_PORT"

origin_requests() { fs_stat 'd["requests"]'; }

log "first mount through nginx: misses fill its cache"
lazy_mount "$IMG" "$WORK/mnt1" "$STORE" kernel --cache "$WORK/cache1"
lazy_read "$SRC" "$WORK/mnt1"
lazy_snap "$WORK/mnt1"
first_fetches=$S_fetch_requests
lazy_umount "$WORK/mnt1"
r1=$(origin_requests)
log "  anole made $first_fetches range requests; the origin saw $r1 (1 MiB slices)"
assert_ge "$r1" 1 "origin requests on the first mount"
misses=$(grep -c ' MISS ' "$N/access.log" || true)
assert_ge "$misses" 1 "nginx cache misses on the first mount"

log "second mount, empty anole cache: served from nginx's cache"
lines_before=$(wc -l <"$N/access.log")
lazy_mount "$IMG" "$WORK/mnt2" "$STORE" kernel --cache "$WORK/cache2"
lazy_read "$SRC" "$WORK/mnt2"
lazy_snap "$WORK/mnt2"
lazy_umount "$WORK/mnt2"
assert_ge "$S_fetch_requests" 1 "range requests of the second mount"
assert_eq "$(origin_requests)" "$r1" "origin requests after the second mount (all from nginx)"
tail -n +"$((lines_before + 1))" "$N/access.log" >"$WORK/second.log"
hits=$(grep -c ' HIT ' "$WORK/second.log" || true)
log "  $S_fetch_requests range requests, $hits answered from nginx's cache"
assert_eq "$hits" "$(grep -c "^GET /blobs/" "$WORK/second.log")" "requests of the second mount that hit"
assert_ge "$hits" "$S_fetch_requests" "cache hits vs anole's requests"
# cache-friendly: a Range on the blob's plain URL, no Cache-Control, Pragma or query
assert_eq "$(grep '^GET /blobs/' "$N/access.log" | grep -vc 'cc="-" pragma="-" args="-"$' || true)" 0 \
	"requests with Cache-Control, Pragma or a query"
assert_grep "^GET /blobs/${BLOB#sha256:} \"bytes=[0-9]*-[0-9]*\" 206 HIT" "$WORK/second.log"
log "ok"
