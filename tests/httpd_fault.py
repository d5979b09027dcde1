#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A small HTTP server for blob store tests, with faults injected on demand.

Serves the files of --dir under --prefix (GET/HEAD with single byte ranges:
206 + Content-Range, 416 beyond the end, 200 without Range). With
--registry it also emulates the blob endpoints of an OCI registry:

    GET|HEAD /v2/<repo>/blobs/sha256:<hex>    -> DIR/<hex>
    POST     /v2/<repo>/blobs/uploads/        -> 202, Location .../uploads/<id>?_state=..
    PATCH    /v2/<repo>/blobs/uploads/<id>    (appends)
    PUT      /v2/<repo>/blobs/uploads/<id>?_state=..&digest=sha256:<hex>
                                              -> verifies, stores DIR/<hex>, 201

--token-auth makes the /v2/ endpoints answer 401 with
`WWW-Authenticate: Bearer realm="http://HOST:PORT/token",service=..,scope=..`
until a token from /token is presented (with --token-user U:P the token
endpoint itself wants those Basic credentials; uploads want a token whose
scope has "push"). --basic-auth U:P asks for Basic credentials directly.

Control endpoints (never faulted, not counted):
    POST /_fault  {"mode": M, "count": N, ...}  queue a fault (count -1: forever)
        status    answer "code" (default 503) [, "retry_after": S]
                  [, "headers": {name: value, ...}]
        stall     send nothing for "seconds" (default 30) [, "after": bytes of
                  body first]
        truncate  send "bytes" (default half) of the body, then close
        corrupt   flip the byte at "at" (default: the middle) of the body
        drop      close the connection without an answer
        redirect  302 to /_redirect<path> (no auth needed there, and never
                  redirected again; registry requests only once authorized)
                  [, "host": name to put in the Location, e.g. "localhost"]
        ignore_range  answer 200 with the whole file
        none      clear all queued faults
      Optional "path": only requests whose path contains it; "method": only
      that method. truncate, corrupt and ignore_range only hit GETs that
      serve bytes; /token is only hit by a fault whose "path" matches it.
    GET  /_stats  JSON counts: requests, connections (that carried a counted
                  request), bytes_sent, per path
                  {count, methods, ranges, auth, status}, faults_fired, ...
    POST /_reset  zero the counters

With --tls-cert/--tls-key it speaks HTTPS. Bounded: exits after
--max-seconds (default 600).
"""
import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_RANGES_KEPT = 20000


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.faults = []
        self.reset()
        self.tokens = {}        # token -> scope
        self.uploads = {}       # id -> {"data": bytearray, "state": str, "repo": str}

    def reset(self):
        # a request that began before a reset (one stalled by a fault, still
        # writing) must not count after it: it carries the epoch it began in
        self.epoch = getattr(self, "epoch", 0) + 1
        self.requests = 0
        self.connections = 0
        self.bytes_sent = 0
        self.paths = {}
        self.faults_fired = {}
        self.token_requests = 0
        self.scopes = []
        self.uploads_done = 0
        self.put_queries = []

    def snapshot(self):
        return {
            "requests": self.requests,
            "connections": self.connections,
            "bytes_sent": self.bytes_sent,
            "paths": self.paths,
            "faults_fired": self.faults_fired,
            "faults_pending": len([f for f in self.faults if f["count"] != 0]),
            "token_requests": self.token_requests,
            "scopes": self.scopes,
            "uploads": self.uploads_done,
            "put_queries": self.put_queries,
        }


STATE = State()
ARGS = None


def take_fault(path, method, serves_bytes, redirected, authorized):
    with STATE.lock:
        for f in STATE.faults:
            if f["count"] == 0:
                continue
            if f.get("path") and f["path"] not in path:
                continue
            if path == "/token" and not f.get("path"):
                continue
            if f.get("method") and f["method"].upper() != method:
                continue
            if f["mode"] in ("truncate", "corrupt", "ignore_range") and not serves_bytes:
                continue
            if f["mode"] == "redirect" and (redirected or not authorized):
                continue
            if f["count"] > 0:
                f["count"] -= 1
            STATE.faults_fired[f["mode"]] = STATE.faults_fired.get(f["mode"], 0) + 1
            return dict(f)
    return None


def oci_error(code, message):
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small replies would wait ~40 ms for delayed ACKs
    server_version = "httpd_fault/1"

    def setup(self):
        super().setup()
        self._counted = False   # connections count once they carry a non-control request

    def log_message(self, fmt, *args):
        if ARGS.verbose:
            sys.stderr.write("httpd_fault: %s\n" % (fmt % args))

    # --------------------------------------------------------------- plumbing
    def send_response(self, code, message=None):
        key = getattr(self, "_stat_key", None)
        if key:
            with STATE.lock:
                st = STATE.paths[key]["status"]
                st[str(code)] = st.get(str(code), 0) + 1
        super().send_response(code, message)

    def reply(self, code, body=b"", headers=None, ctype="application/json"):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body or code not in (204, 304):
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        n = self.headers.get("Content-Length")
        if n is not None:
            return self.rfile.read(int(n)) if int(n) > 0 else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return b""

    def hard_close(self):
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def record(self, path):
        self._stat_key = path
        with STATE.lock:
            STATE.requests += 1
            if not self._counted:
                STATE.connections += 1
                self._counted = True
            p = STATE.paths.setdefault(path, {"count": 0, "methods": {}, "ranges": [],
                                              "auth": 0, "status": {}})
            p["count"] += 1
            p["methods"][self.command] = p["methods"].get(self.command, 0) + 1
            rng = self.headers.get("Range")
            if rng and len(p["ranges"]) < MAX_RANGES_KEPT:
                p["ranges"].append(rng)
            if self.headers.get("Authorization"):
                p["auth"] += 1

    # --------------------------------------------------------------- methods
    def do_GET(self):
        self.handle_any()

    def do_HEAD(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_PATCH(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def handle_any(self):
        with STATE.lock:
            self.epoch = STATE.epoch
        try:
            self._handle()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    def _handle(self):
        self._stat_key = None
        u = urlsplit(self.path)
        path, query = u.path, parse_qs(u.query)
        body = self.read_body() if self.command in ("POST", "PUT", "PATCH") else b""

        if path == "/_fault" and self.command == "POST":
            return self.control_fault(body)
        if path == "/_stats" and self.command == "GET":
            with STATE.lock:
                doc = json.dumps(STATE.snapshot()).encode()
            return self.reply(200, doc)
        if path == "/_reset" and self.command == "POST":
            with STATE.lock:
                STATE.reset()
            return self.reply(200, b"{}")

        self.record(path)
        noauth = False
        if path.startswith("/_redirect/"):
            path = path[len("/_redirect"):]
            noauth = True
        serves_bytes = self.command == "GET" and self.content_file(path) is not None
        # like a registry, redirect only requests that passed authentication
        authorized = noauth or not (ARGS.registry and path.startswith("/v2/")) or \
            self.authorized("/uploads/" in path)
        fault = take_fault(path, self.command, serves_bytes, noauth, authorized)
        if fault:
            mode = fault["mode"]
            if mode == "status":
                hdrs = dict(fault.get("headers", {}))
                if "retry_after" in fault:
                    hdrs["Retry-After"] = str(fault["retry_after"])
                code = int(fault.get("code", 503))
                return self.reply(code, oci_error("UNAVAILABLE", "injected HTTP %d" % code), hdrs)
            if mode == "drop":
                return self.hard_close()
            if mode == "redirect":
                host = fault.get("host")
                loc = "/_redirect" + self.path if not host else \
                    "http://%s:%d/_redirect%s" % (host, self.server.server_address[1], self.path)
                return self.reply(302, b"", {"Location": loc})
            if mode == "stall" and "after" not in fault:
                self.stall(float(fault.get("seconds", 30)))
                fault = None
        if path == "/token":
            return self.token_endpoint(query)
        if ARGS.registry and path.startswith("/v2/"):
            return self.registry(path, query, body, fault, noauth)
        f = self.content_file(path)
        if f is not None and self.command in ("GET", "HEAD"):
            return self.serve_file(f, fault)
        return self.reply(404, oci_error("NOT_FOUND", "no such path"))

    def stall(self, seconds):
        end = time.monotonic() + min(seconds, ARGS.max_seconds)
        while time.monotonic() < end:
            time.sleep(0.05)

    def control_fault(self, body):
        try:
            f = json.loads(body or b"{}")
            mode = f["mode"]
        except (ValueError, KeyError):
            return self.reply(400, b'{"error":"want {\\"mode\\": ...}"}')
        with STATE.lock:
            if mode == "none":
                STATE.faults.clear()
            else:
                f["count"] = int(f.get("count", 1))
                STATE.faults.append(f)
        return self.reply(200, b"{}")

    # --------------------------------------------------------------- content
    def content_file(self, path):
        """The file a GET of path serves, or None."""
        name = None
        if ARGS.registry:
            m = re.fullmatch(r"/v2/(.+)/blobs/sha256:([0-9a-f]{64})", path)
            if m:
                name = m.group(2)
        prefix = ARGS.prefix.rstrip("/") + "/"
        if name is None and path.startswith(prefix):
            name = path[len(prefix):]
        if not name or "/" in name or name.startswith("."):
            return None
        f = os.path.join(ARGS.dir, name)
        return f if os.path.isfile(f) else None

    def serve_file(self, fname, fault, extra=None):
        size = os.path.getsize(fname)
        rng = self.headers.get("Range")
        if fault and fault["mode"] == "ignore_range":
            rng = None
            fault = None
        start, end, code = 0, size - 1, 200
        if rng:
            m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", rng)
            if m and (m.group(1) or m.group(2)):
                a, b = m.group(1), m.group(2)
                if a == "":
                    n = int(b)
                    if n == 0:
                        return self.unsatisfiable(size)
                    start, end = max(0, size - n), size - 1
                else:
                    start = int(a)
                    end = min(int(b), size - 1) if b else size - 1
                    if start >= size or (b and int(b) < start):
                        return self.unsatisfiable(size)
                code = 206
        length = end - start + 1 if size else 0
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        if code == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD" or not length:
            return
        with open(fname, "rb") as fh:
            fh.seek(start)
            data = bytearray(fh.read(length))
        mode = fault["mode"] if fault else None
        if mode == "corrupt":
            at = int(fault.get("at", len(data) // 2)) % len(data)
            data[at] ^= 0xFF
        if mode == "truncate":
            n = int(fault.get("bytes", len(data) // 2))
            n = max(0, min(n, len(data) - 1))
            self.wfile.write(data[:n])
            with STATE.lock:
                if self.epoch == STATE.epoch:
                    STATE.bytes_sent += n
            return self.hard_close()
        if mode == "stall":
            n = max(0, min(int(fault.get("after", 0)), len(data) - 1))
            self.wfile.write(data[:n])
            self.wfile.flush()
            self.stall(float(fault.get("seconds", 30)))
            data = data[n:]
        self.wfile.write(data)
        with STATE.lock:
            if self.epoch == STATE.epoch:
                STATE.bytes_sent += len(data)

    def unsatisfiable(self, size):
        return self.reply(416, b"", {"Content-Range": "bytes */%d" % size})

    # --------------------------------------------------------------- auth
    def challenge(self, repo, push):
        scope = "repository:%s:%s" % (repo, "pull,push" if push else "pull")
        if ARGS.basic_auth:
            hdr = 'Basic realm="httpd_fault"'
        else:
            host = self.headers.get("Host") or "127.0.0.1:%d" % self.server.server_address[1]
            hdr = 'Bearer realm="http://%s/token",service="httpd_fault",scope="%s"' % (host, scope)
        return self.reply(401, oci_error("UNAUTHORIZED", "authentication required"),
                          {"WWW-Authenticate": hdr})

    def authorized(self, push):
        auth = self.headers.get("Authorization", "")
        if ARGS.basic_auth:
            want = "Basic " + base64.b64encode(ARGS.basic_auth.encode()).decode()
            return auth == want
        if ARGS.token_auth:
            if not auth.startswith("Bearer "):
                return False
            with STATE.lock:
                scope = STATE.tokens.get(auth[7:])
            return scope is not None and (not push or "push" in scope)
        return True

    def token_endpoint(self, query):
        with STATE.lock:
            STATE.token_requests += 1
            STATE.scopes.append(query.get("scope", [""])[0])
        if not ARGS.token_auth:
            return self.reply(404, b"{}")
        if ARGS.token_user:
            want = "Basic " + base64.b64encode(ARGS.token_user.encode()).decode()
            if self.headers.get("Authorization") != want:
                return self.reply(401, b'{"details":"bad credentials"}',
                                  {"WWW-Authenticate": 'Basic realm="token"'})
        tok = secrets.token_hex(16)
        with STATE.lock:
            STATE.tokens[tok] = query.get("scope", [""])[0]
        doc = {"token": tok, "access_token": tok, "expires_in": ARGS.token_expires}
        return self.reply(200, json.dumps(doc).encode())

    # --------------------------------------------------------------- registry
    def registry(self, path, query, body, fault, noauth):
        if path == "/v2/":
            if not noauth and not self.authorized(False):
                return self.challenge("", False)
            return self.reply(200, b"{}")
        m = re.fullmatch(r"/v2/(.+)/blobs/(sha256:[0-9a-f]{64})", path)
        if m and self.command in ("GET", "HEAD"):
            repo, digest = m.group(1), m.group(2)
            if not noauth and not self.authorized(False):
                return self.challenge(repo, False)
            f = self.content_file(path)
            if f is None:
                return self.reply(404, oci_error("BLOB_UNKNOWN", "blob unknown to registry"))
            return self.serve_file(f, fault, {"Docker-Content-Digest": digest})
        m = re.fullmatch(r"/v2/(.+)/blobs/uploads/([0-9a-f]*)", path)
        if m:
            repo, uid = m.group(1), m.group(2)
            if not noauth and not self.authorized(True):
                return self.challenge(repo, True)
            if self.command == "POST" and not uid:
                if "digest" in query:
                    return self.finish_upload(repo, bytearray(body), query["digest"][0])
                uid = secrets.token_hex(8)
                state = secrets.token_hex(8)
                with STATE.lock:
                    STATE.uploads[uid] = {"data": bytearray(), "state": state, "repo": repo}
                loc = "/v2/%s/blobs/uploads/%s?_state=%s" % (repo, uid, state)
                return self.reply(202, b"", {"Location": loc, "Docker-Upload-UUID": uid,
                                             "Range": "0-0"})
            with STATE.lock:
                up = STATE.uploads.get(uid)
            if up is None or up["repo"] != repo:
                return self.reply(404, oci_error("BLOB_UPLOAD_UNKNOWN", "no such upload"))
            if query.get("_state", [""])[0] != up["state"]:
                return self.reply(400, oci_error("BLOB_UPLOAD_INVALID", "_state lost"))
            if self.command == "PATCH":
                up["data"] += body
                loc = "/v2/%s/blobs/uploads/%s?_state=%s" % (repo, uid, up["state"])
                return self.reply(202, b"", {"Location": loc,
                                             "Range": "0-%d" % (len(up["data"]) - 1)})
            if self.command == "PUT":
                with STATE.lock:
                    STATE.put_queries.append(urlsplit(self.path).query)
                    STATE.uploads.pop(uid, None)
                if "digest" not in query:
                    return self.reply(400, oci_error("DIGEST_INVALID", "no digest"))
                return self.finish_upload(repo, up["data"] + body, query["digest"][0])
            if self.command == "DELETE":
                with STATE.lock:
                    STATE.uploads.pop(uid, None)
                return self.reply(204)
        return self.reply(404, oci_error("NOT_FOUND", "no such endpoint"))

    def finish_upload(self, repo, data, digest):
        have = "sha256:" + hashlib.sha256(data).hexdigest()
        if have != digest:
            return self.reply(400, oci_error("DIGEST_INVALID", "digest does not match content"))
        dst = os.path.join(ARGS.dir, digest[7:])
        tmp = dst + ".tmp%d" % threading.get_ident()
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.rename(tmp, dst)
        with STATE.lock:
            STATE.uploads_done += 1
        return self.reply(201, b"", {"Location": "/v2/%s/blobs/%s" % (repo, digest),
                                     "Docker-Content-Digest": digest})


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="directory of the served files / blobs")
    ap.add_argument("--prefix", default="/blobs", help="URL prefix of the plain files")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the chosen port here")
    ap.add_argument("--pid-file", help="write the pid here")
    ap.add_argument("--registry", action="store_true", help="emulate OCI blob endpoints")
    ap.add_argument("--token-auth", action="store_true", help="Bearer token flow on /v2/")
    ap.add_argument("--token-user", help="USER:PASS the token endpoint wants")
    ap.add_argument("--token-expires", type=int, default=300)
    ap.add_argument("--basic-auth", help="USER:PASS the /v2/ endpoints want (Basic)")
    ap.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate chain")
    ap.add_argument("--tls-key", help="... and this PEM key")
    ap.add_argument("--max-seconds", type=float, default=600)
    ap.add_argument("--verbose", action="store_true")
    ARGS = ap.parse_args()
    ARGS.dir = os.path.abspath(ARGS.dir)
    if ARGS.host not in ("127.0.0.1", "localhost", "::1") and not ARGS.host.startswith("127."):
        ap.error("--host must be a loopback address")

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer((ARGS.host, ARGS.port), Handler)
    if ARGS.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                     do_handshake_on_connect=False)
    port = srv.server_address[1]
    if ARGS.pid_file:
        with open(ARGS.pid_file + ".tmp", "w") as fh:
            fh.write("%d\n" % os.getpid())
        os.rename(ARGS.pid_file + ".tmp", ARGS.pid_file)
    if ARGS.port_file:
        with open(ARGS.port_file + ".tmp", "w") as fh:
            fh.write("%d\n" % port)
        os.rename(ARGS.port_file + ".tmp", ARGS.port_file)
    else:
        print(port, flush=True)

    def deadline():
        time.sleep(ARGS.max_seconds)
        os._exit(0)
    threading.Thread(target=deadline, daemon=True).start()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
