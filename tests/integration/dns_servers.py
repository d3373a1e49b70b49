"""Small DNS servers on loopback, playing the company's DNS and the "internet" upstreams.

Each one answers A queries from its own table (or with a default address for any name), and
records every query it gets, so an answer and the query log prove where a query went. UDP and
TCP on the same port (CoreDNS's forward retries over TCP when an answer is truncated).
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Mapping

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class ZoneServer:
    """Answers A queries for NAME -> IP from RECORDS, DEFAULT for other names (or NXDOMAIN)."""

    def __init__(
        self, host: str, records: Mapping[str, str], default: str | None = None, ttl: int = 5
    ) -> None:
        if not host.startswith("127."):
            raise ValueError(f"{host}: test DNS servers listen on loopback only")
        self.host = host
        self.records = {_fqdn(k): v for k, v in records.items()}
        self.default = default
        self.ttl = ttl
        self.queries: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._servers: list[socketserver.BaseServer] = []
        self.port = 0

    # ------------------------------------------------------------------ answering

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        with self._lock:
            self.queries.append((name, rdtype))
        address = self.records.get(name, self.default)
        if address is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.A:
            response.answer.append(
                dns.rrset.from_text(question.name, self.ttl, dns.rdataclass.IN, "A", address)
            )
        return bytes(response.to_wire())

    def names_asked(self, rdtype: str = "A") -> list[str]:
        with self._lock:
            return [n for n, t in self.queries if t == rdtype]

    # ------------------------------------------------------------------ serving

    def start(self) -> ZoneServer:
        owner = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                sock.sendto(owner.answer(data), self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                size = int.from_bytes(_read(self.request, 2), "big")
                reply = owner.answer(_read(self.request, size))
                self.request.sendall(len(reply).to_bytes(2, "big") + reply)

        for _ in range(20):  # a free port for both UDP and TCP
            udp = socketserver.ThreadingUDPServer((self.host, 0), Udp)
            port = udp.server_address[1]
            try:
                tcp = socketserver.ThreadingTCPServer((self.host, port), Tcp)
            except OSError:
                udp.server_close()
                continue
            break
        else:
            raise RuntimeError(f"no free port on {self.host} for UDP and TCP")
        self.port = port
        self._servers = [udp, tcp]
        for server in self._servers:
            server.daemon_threads = True  # type: ignore[attr-defined]
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def _fqdn(name: str) -> str:
    return name.lower() if name.endswith(".") else name.lower() + "."


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("short read")
        data += chunk
    return data


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for CoreDNS's health/ready/metrics endpoints)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_udp_tcp_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP (for CoreDNS's DNS listener)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port = int(u.getsockname()[1])
            with socket.socket() as t:
                try:
                    t.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")
