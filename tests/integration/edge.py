"""What the route tests need around nginx: backends on loopback that answer their own identity
(so a response proves where a request went), requests to nginx by Host header, and polling.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

import pytest
import requests

T = TypeVar("T")
TIMEOUT = 20.0

# Loopback only: never let an HTTP(S)_PROXY from the environment route test traffic elsewhere.
SESSION = requests.Session()
SESSION.trust_env = False


@dataclass
class Backend:
    """An HTTP server on a loopback address; every GET answers `<identity>`.

    A request with `Upgrade: websocket` gets 101 and then has its bytes echoed back, which is
    all a proxy must let through for websockets to work.
    """

    host: str
    port: int
    identity: str
    headers_seen: list[dict[str, str]] = field(default_factory=list)

    @property
    def upstream(self) -> str:
        return f"{self.host}:{self.port}"


def _handler(backend: Backend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            backend.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
            if self.headers.get("Upgrade", "").lower() == "websocket":
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.end_headers()
                self.wfile.flush()
                while True:
                    data = self.connection.recv(4096)
                    if not data:
                        return
                    self.connection.sendall(data)
            payload = backend.identity.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            pass

    return Handler


@contextmanager
def backends(*hosts: str, port: int = 0) -> Iterator[list[Backend]]:
    """One backend per loopback HOST (on PORT, or a free port each); stopped afterwards."""
    started: list[tuple[Backend, ThreadingHTTPServer]] = []
    try:
        for host in hosts:
            backend = Backend(host, port, f"backend-{host}-{uuid.uuid4().hex[:10]}")
            server = ThreadingHTTPServer((host, port), _handler(backend))
            server.daemon_threads = True
            backend.port = server.server_address[1]
            threading.Thread(target=server.serve_forever, daemon=True).start()
            started.append((backend, server))
        yield [b for b, _s in started]
    finally:
        for _b, server in started:
            server.shutdown()
            server.server_close()


def fetch(nginx_url: str, host: str, path: str = "/") -> tuple[int, str]:
    """GET PATH from nginx as if for HOST, on a connection of its own: a reload closes the
    old workers' idle keep-alive connections, and a reused one would be reset."""
    resp = SESSION.get(
        f"{nginx_url}{path}", headers={"Host": host, "Connection": "close"}, timeout=5
    )
    return resp.status_code, resp.text


def fetch_tls(tls_url: str, host: str, ca_file: str) -> tuple[int, str]:
    """GET / over HTTPS from nginx for HOST (SNI and Host), verifying the edge's certificate."""
    address = tls_url.removeprefix("https://")
    ip, _, port = address.rpartition(":")
    context = ssl.create_default_context(cafile=ca_file)
    with (
        socket.create_connection((ip, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    return int(head.split()[1]), body


def websocket_echo(nginx_url: str, host: str, message: bytes) -> tuple[str, bytes]:
    """Open an Upgrade: websocket connection through nginx, send MESSAGE, read the echo."""
    address = nginx_url.removeprefix("http://")
    ip, _, port = address.rpartition(":")
    with socket.create_connection((ip, int(port)), timeout=5) as sock:
        sock.sendall(
            (
                f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk:
                break
            head += chunk
        status = head.split(b"\r\n", 1)[0].decode()
        sock.sendall(message)
        echoed = b""
        while len(echoed) < len(message):
            chunk = sock.recv(4096)
            if not chunk:
                break
            echoed += chunk
    return status, echoed


def wait_until(
    probe: Callable[[], T],
    done: Callable[[T], bool],
    what: str,
    timeout: float = TIMEOUT,
    stable: float = 0.5,
) -> T:
    """Poll PROBE until DONE(result) holds for STABLE seconds in a row; fail with the last
    result after TIMEOUT seconds. Why stable: for a moment after a reload nginx's old worker
    still takes connections beside the new one, so answers of both configs alternate."""
    deadline = time.monotonic() + timeout
    since: float | None = None
    while True:
        result = probe()
        now = time.monotonic()
        if done(result):
            since = now if since is None else since
            if now - since >= stable:
                return result
        else:
            since = None
        if now > deadline:
            pytest.fail(f"after {timeout:.0f}s, {what}: last answer {result!r}", pytrace=False)
        time.sleep(0.05)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
