#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A registry reverse proxy that stops answering mid-transfer, for tests of
an operation killed while it writes (power loss, a killed writer).

    stall_proxy.py --upstream http://127.0.0.1:5000 --port-file F \
                   --stall-at N --stalled-file S

Passes every request through to --upstream (method, path, Range, Accept,
Authorization) and counts the blob GETs (/v2/.../blobs/sha256:...). The
N-th one and every later one (retries too) get their status, headers and
the first half of their body, then nothing more: the connection stays open
until the proxy exits. S is created at the first of them. Exits after --max-seconds (default 300).
"""
import argparse
import http.client
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

BLOB = re.compile(r"^/v2/.+/blobs/sha256:[0-9a-f]{64}$")
PASS = ("range", "accept", "authorization", "user-agent")
LOCK = threading.Lock()
COUNT = [0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--stall-at", type=int, required=True)
    ap.add_argument("--stalled-file", required=True)
    ap.add_argument("--max-seconds", type=float, default=300)
    a = ap.parse_args()
    up = urlsplit(a.upstream)

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def relay(self, body):
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
            hdrs = {k: v for k, v in self.headers.items() if k.lower() in PASS}
            conn.request(self.command, self.path, headers=hdrs)
            r = conn.getresponse()
            data = r.read() if body else b""
            stall = False
            if body and self.command == "GET" and BLOB.match(self.path.split("?")[0]) \
                    and r.status in (200, 206):
                with LOCK:
                    COUNT[0] += 1
                    stall = COUNT[0] >= a.stall_at
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)) if body else
                             r.getheader("Content-Length", "0"))
            self.end_headers()
            if stall:
                self.wfile.write(data[:len(data) // 2])
                self.wfile.flush()
                open(a.stalled_file, "w").close()
                time.sleep(a.max_seconds)
                return
            if body:
                self.wfile.write(data)
            conn.close()

        def do_GET(self):
            self.relay(True)

        def do_HEAD(self):
            self.relay(False)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    threading.Timer(a.max_seconds, lambda: os._exit(0)).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
