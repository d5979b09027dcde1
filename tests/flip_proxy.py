#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A lying registry mirror for tests: a reverse proxy in front of --upstream
(http://HOST:PORT) that passes every request through unchanged (method,
path, Range, Accept, Authorization and body) but flips one byte in the
middle of every blob it serves (GET /v2/.../blobs/sha256:... answered 200
or 206). Manifests and everything else pass untouched, so a client trusts
the mirror until it checks the bytes.

    flip_proxy.py --upstream http://127.0.0.1:5000 --port-file F --stats FILE

--stats gets {"requests": N, "flipped": N} after every request. Exits after
--max-seconds (default 300).
"""
import argparse
import http.client
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

BLOB = re.compile(r"^/v2/.+/blobs/sha256:[0-9a-f]{64}$")
PASS_HEADERS = ("range", "accept", "authorization", "content-type", "content-length",
                "if-range", "user-agent")
LOCK = threading.Lock()
STATS = {"requests": 0, "flipped": 0}


def save_stats(path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(STATS, f)
    os.replace(tmp, path)


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def forward(self):
        up = urlsplit(ARGS.upstream)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() in PASS_HEADERS}
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read() if self.command != "HEAD" else b""
        except OSError as e:
            self.send_error(502, "upstream: %s" % e)
            return
        finally:
            conn.close()
        flip = (self.command == "GET" and resp.status in (200, 206) and
                BLOB.match(urlsplit(self.path).path) and data)
        if flip:
            data = bytearray(data)
            data[len(data) // 2] ^= 0xFF
            data = bytes(data)
        with LOCK:
            STATS["requests"] += 1
            STATS["flipped"] += 1 if flip else 0
            if ARGS.stats:
                save_stats(ARGS.stats)
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() in ("connection", "transfer-encoding", "keep-alive"):
                continue
            if k.lower() == "content-length" and self.command != "HEAD":
                v = str(len(data))
            self.send_header(k, v)
        if "content-length" not in (k.lower() for k, _ in resp.getheaders()) and \
                self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--stats")
    ap.add_argument("--max-seconds", type=float, default=300)
    ARGS = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    srv.daemon_threads = True
    if ARGS.stats:
        save_stats(ARGS.stats)
    with open(ARGS.port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.replace(ARGS.port_file + ".tmp", ARGS.port_file)
    threading.Timer(ARGS.max_seconds, lambda: os._exit(0)).start()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
