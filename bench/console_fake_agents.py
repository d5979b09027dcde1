#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""N lightweight fake agents for bench/console.sh only: each serves a
/metrics page (a real `anole monitor` page captured once, so the console
parses and stores what it would from a real fleet; counters advance on each
scrape) on its own loopback port, and heartbeats to the console as
`anole monitor --console` does (POST /api/v1/agent/heartbeat with the agent
token, held by the console until work or the interval's end, as the real
agent's long poll is), so the console registers and scrapes them. One asyncio process for
all of them: the bench measures the console, not the agents.

    console_fake_agents.py CONSOLE_URL TOKEN_FILE METRICS_FILE N [--prefix fake]
                           [--heartbeat S] [--ports-file F]
"""
import argparse
import asyncio
import json
import re
import signal
import sys
import urllib.parse

HOLD = 60  # as the real agent: the console holds it at most its heartbeat interval
SAMPLE = re.compile(rb"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$")


class Page:
    """The captured page; counters (*_total) advance each time it is served."""

    def __init__(self, text):
        self.lines = []
        for line in text.splitlines():
            m = SAMPLE.match(line)
            if m and not line.startswith(b"#"):
                try:
                    v = float(m.group(2))
                except ValueError:
                    v = None
                self.lines.append((m.group(1), v, b"_total" in m.group(1).split(b"{")[0]))
            else:
                self.lines.append((line, None, False))

    def render(self, n):
        out = []
        for key, v, counter in self.lines:
            if v is None:
                out.append(key)
            else:
                out.append(key + b" " + repr(v + n if counter else v).encode())
        return b"\n".join(out) + b"\n"


async def serve(reader, writer, page, state):
    try:
        while True:
            req = await reader.readuntil(b"\r\n\r\n")
            state["n"] += 1
            body = page.render(state["n"]) if req.startswith(b"GET /metrics") else b"not found\n"
            code = b"200 OK" if req.startswith(b"GET /metrics") else b"404 Not Found"
            writer.write(b"HTTP/1.1 " + code + b"\r\nContent-Type: text/plain; version=0.0.4\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def post(host, port, path, token, obj):
    body = json.dumps(obj).encode()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                     f"Connection: close\r\n\r\n".encode() + body)
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data.split(b"\r\n\r\n", 1)[-1]


async def heartbeat(name, port, url, token, every, errors):
    """The agent protocol's loop: an idle agent's heartbeat asks to be held
    ("hold"); the console answers after its heartbeat interval (or at once
    with work) with "interval": 0, and the next heartbeat goes at once."""
    u = urllib.parse.urlsplit(url)
    path = u.path.rstrip("/") + "/api/v1/agent/heartbeat"
    while True:
        wait = max(every, 1.0)
        try:
            status, body = await asyncio.wait_for(
                post(u.hostname, u.port or 80, path, token,
                     {"name": name, "metrics_port": port, "hold": HOLD}), HOLD + 15)
            if status != 200:
                errors[name] = f"{status} {body[:200]!r}"
            else:
                errors.pop(name, None)
                try:
                    wait = float(json.loads(body).get("interval", every))
                except ValueError:
                    pass
        except (OSError, asyncio.TimeoutError) as e:
            errors[name] = str(e) or type(e).__name__
        await asyncio.sleep(wait)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("token_file")
    ap.add_argument("metrics_file")
    ap.add_argument("n", type=int)
    ap.add_argument("--prefix", default="fake")
    ap.add_argument("--heartbeat", type=float, default=5)
    ap.add_argument("--ports-file")
    args = ap.parse_args()
    token = open(args.token_file).read().strip()
    page = Page(open(args.metrics_file, "rb").read())
    errors, tasks, servers, ports = {}, [], [], []
    for i in range(args.n):
        state = {"n": 0}
        srv = await asyncio.start_server(lambda r, w, s=state: serve(r, w, page, s), "127.0.0.1", 0)
        servers.append(srv)
        ports.append(srv.sockets[0].getsockname()[1])
    if args.ports_file:
        with open(args.ports_file, "w") as f:
            f.write("\n".join(map(str, ports)) + "\n")
    for i, port in enumerate(ports):
        name = f"{args.prefix}{i:03d}"
        tasks.append(asyncio.create_task(heartbeat(name, port, args.url, token, args.heartbeat, errors)))
        await asyncio.sleep(0.005)   # spread the heartbeats over time
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 10)
        except asyncio.TimeoutError:
            if errors:
                k = next(iter(errors))
                print(f"fake agents: {len(errors)} heartbeats failing, e.g. {k}: {errors[k]}", file=sys.stderr)
    for t in tasks:
        t.cancel()


if __name__ == "__main__":
    asyncio.run(main())
