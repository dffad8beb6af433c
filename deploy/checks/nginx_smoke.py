#!/usr/bin/env python3
"""Loopback smoke test of deploy/nginx/nginx.conf (run by deploy/validate.sh).

Starts two fake gateways on 127.0.0.1, writes a loopback `upstreams.conf` next to a copy of
nginx.conf (the same include the compose file mounts), runs nginx on a free loopback port and
checks what the real deployment relies on:
  - a WebSocket upgrade reaches a gateway with `Upgrade: websocket` / `Connection: upgrade`
    and the tunnel carries bytes both ways;
  - plain requests keep `Host` with its port (the gateway's Origin check) and send no
    `Connection: close` (upstream keepalive);
  - streamed responses arrive incrementally (first chunk before the last is written);
    whether `proxy_buffering off` is set is checked statically by validate.sh, since nginx
    buffers only against a slow reader, which this test does not simulate;
  - /lb-healthz answers from nginx itself and /metrics is not exposed.
Standard library only; every wait is bounded; nginx is stopped by its own PID.

Usage: nginx_smoke.py NGINX_BINARY NGINX_CONF
"""
import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TIMEOUT = 5.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_head(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed before end of headers")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return lines[0], headers, rest


class FakeGateway(threading.Thread):
    """Answers /echo with the headers it got, /stream with two chunks 1s apart, and
    upgrades /ws, then echoes raw bytes back until the peer closes."""

    def __init__(self, name):
        super().__init__(daemon=True)
        self.name = name
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        conn.settimeout(TIMEOUT)
        try:
            while True:  # keepalive: several requests per upstream connection
                request_line, headers, _ = read_head(conn)
                path = request_line.split(" ")[1]
                if path == "/ws":
                    key = headers.get("sec-websocket-key", [""])[0]
                    accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
                    got = f"upgrade={headers.get('upgrade')} connection={headers.get('connection')}"
                    conn.sendall(
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
                        f"X-Seen: {got}\r\n\r\n".encode())
                    while True:  # raw tunnel echo; framing does not matter to nginx
                        data = conn.recv(4096)
                        if not data:
                            return
                        conn.sendall(data)
                elif path == "/stream":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    conn.sendall(b"6\r\nfirst\n\r\n")
                    time.sleep(1.0)
                    conn.sendall(b"5\r\nlast\n\r\n0\r\n\r\n")
                else:
                    body = (f"gateway={self.name}\nhost={headers.get('host')}\n"
                            f"connection={headers.get('connection')}\npath={path}\n").encode()
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        except (OSError, ConnectionError, IndexError):
            pass
        finally:
            conn.close()


def http_get(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode("latin-1")


def main():
    nginx, conf = sys.argv[1], sys.argv[2]
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    gateways = [FakeGateway("a"), FakeGateway("b")]
    for g in gateways:
        g.start()
    lb_port = free_port()
    workdir = tempfile.mkdtemp(prefix="nginx-smoke-")
    text = open(conf).read()
    text, n = re.subn(r"listen\s+8000;", f"listen 127.0.0.1:{lb_port};", text)
    if n != 1:
        print("FAIL nginx.conf must contain exactly one `listen 8000;`")
        return 1
    with open(os.path.join(workdir, "nginx.conf"), "w") as f:
        f.write(text)
    with open(os.path.join(workdir, "upstreams.conf"), "w") as f:
        # zone: round-robin state shared by all workers, so two requests reach two gateways.
        f.write("upstream gateways {\n    least_conn;\n    zone gateways 64k;\n")
        for g in gateways:
            f.write(f"    server 127.0.0.1:{g.port};\n")
        f.write("    keepalive 32;\n}\n")
    log = open(os.path.join(workdir, "nginx.log"), "w")
    proc = subprocess.Popen(
        [nginx, "-e", "stderr", "-p", workdir, "-c", os.path.join(workdir, "nginx.conf"),
         "-g", f"pid {workdir}/nginx.pid; daemon off;"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", lb_port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    print("FAIL nginx did not start:\n" + open(log.name).read())
                    return 1
                time.sleep(0.1)

        status, body = http_get(lb_port, "/lb-healthz")
        check(status == 200 and body == "ok\n", "/lb-healthz answered by nginx")
        status, _ = http_get(lb_port, "/metrics")
        check(status == 404, "/metrics not exposed through the load balancer")

        seen = set()
        for _ in range(4):
            status, body = http_get(lb_port, "/echo")
            check(status == 200, "plain request proxied")
            check(f"host=['127.0.0.1:{lb_port}']" in body, "Host forwarded with its port")
            check("connection=None" in body, "no `Connection: close` to the upstream")
            seen.add(body.splitlines()[0])
        check(seen == {"gateway=a", "gateway=b"}, f"requests spread over both gateways ({sorted(seen)})")

        with socket.create_connection(("127.0.0.1", lb_port), timeout=TIMEOUT) as s:
            start = time.time()
            s.sendall(f"GET /stream HTTP/1.1\r\nHost: 127.0.0.1:{lb_port}\r\n\r\n".encode())
            data = b""
            while b"first" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            check(b"first" in data and time.time() - start < 0.8,
                  "streamed response arrives incrementally (first chunk early)")

        with socket.create_connection(("127.0.0.1", lb_port), timeout=TIMEOUT) as s:
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall(
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{lb_port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                "Origin: http://127.0.0.1\r\n\r\n".encode())
            status_line, headers, rest = read_head(s)
            check(" 101 " in status_line, f"WebSocket upgrade passed through ({status_line})")
            seen_hdr = headers.get("x-seen", [""])[0]
            check("upgrade=['websocket']" in seen_hdr and "connection=['upgrade']" in seen_hdr,
                  f"Upgrade/Connection headers reached the gateway ({seen_hdr})")
            s.sendall(b"ping-through-tunnel")
            echoed = rest
            while b"ping-through-tunnel" not in echoed:
                chunk = s.recv(4096)
                if not chunk:
                    break
                echoed += chunk
            check(b"ping-through-tunnel" in echoed, "bytes flow both ways after the upgrade")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        for g in gateways:
            g.sock.close()
        if failures:
            print("nginx log:\n" + open(log.name).read())
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
