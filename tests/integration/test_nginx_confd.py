"""A route written to etcd reaches nginx through confd, and a bad route never breaks nginx.

The chain under test: etcd v3 key /devnginx/<ns>/<name> -> confd (watch) renders
resources/confd/templates/nginx-routes.conf.tmpl -> nginx -t on the staged file -> reload.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import pytest

from tests.conftest import require
from tests.integration import etcd_v3

pytestmark = pytest.mark.integration

NAMESPACE = "pysteps-test"
TIMEOUT = 20.0
T = TypeVar("T")


@dataclass
class Backend:
    """An HTTP server on loopback that answers every GET with its own unique body."""

    port: int
    body: str
    hosts_seen: list[str] = field(default_factory=list)

    @property
    def upstream(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_backend() -> tuple[Backend, ThreadingHTTPServer]:
    backend = Backend(port=0, body=f"backend-{uuid.uuid4().hex}")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            backend.hosts_seen.append(self.headers.get("Host", ""))
            payload = backend.body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    backend.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return backend, server


@pytest.fixture
def backend() -> Iterator[Backend]:
    backend, server = start_backend()
    yield backend
    server.shutdown()
    server.server_close()


@pytest.fixture
def other_backend() -> Iterator[Backend]:
    backend, server = start_backend()
    yield backend
    server.shutdown()
    server.server_close()


def fetch(nginx_url: str, host: str) -> tuple[int, str]:
    """GET / from nginx as if for HOST."""
    resp = etcd_v3.SESSION.get(f"{nginx_url}/", headers={"Host": host}, timeout=5)
    return resp.status_code, resp.text


def wait_until(probe: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    """Poll PROBE until DONE(result); fail with the last result after TIMEOUT seconds."""
    deadline = time.monotonic() + TIMEOUT
    result = probe()
    while not done(result):
        if time.monotonic() > deadline:
            pytest.fail(f"after {TIMEOUT:.0f}s, {what}: last answer {result!r}", pytrace=False)
        time.sleep(0.2)
        result = probe()
    return result


def route_value(domains: list[str], upstreams: list[str]) -> str:
    return json.dumps({"domains": domains, "upstreams": upstreams})


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def test_route_in_etcd_is_served_by_nginx_then_removed(testbed, backend):
    etcd, nginx = require(testbed, "PYSTEPS_ETCD_URL", "PYSTEPS_NGINX_URL")
    name = unique_name("route")
    domain = f"{name}.ctest.example.com"
    key = f"/devnginx/{NAMESPACE}/{name}"
    assert fetch(nginx, domain)[0] == 404  # unknown host: the default server

    etcd_v3.put(etcd, key, route_value([domain], [backend.upstream]))
    try:
        served = wait_until(
            lambda: fetch(nginx, domain),
            lambda r: r == (200, backend.body),
            f"nginx to proxy {domain} to {backend.upstream}",
        )
        assert served == (200, backend.body)
        assert domain in backend.hosts_seen  # nginx passes the Host header on
    finally:
        etcd_v3.delete(etcd, key)

    wait_until(
        lambda: fetch(nginx, domain),
        lambda r: r[0] == 404,
        f"nginx to answer 404 for {domain} once its key is gone",
    )


def test_invalid_routes_are_skipped_and_later_routes_still_applied(testbed, backend, other_backend):
    etcd, nginx, routes_file = require(
        testbed, "PYSTEPS_ETCD_URL", "PYSTEPS_NGINX_URL", "TESTBED_NGINX_ROUTES_FILE"
    )
    mark = uuid.uuid4().hex[:10]  # in every bad value, to find it in the rendered file
    good = unique_name("good")
    good_domain = f"{good}.ctest.example.com"
    later = unique_name("later")
    later_domain = f"{later}.ctest.example.com"
    up = backend.upstream
    bad_values = {
        "semicolon": route_value([f"{mark}.example.com; return 200 hijacked"], [up]),
        "space": route_value([f"{mark} .example.com"], [up]),
        "newline": f'{{"domains": ["{mark}.example.com\n}}"], "upstreams": ["{up}"]}}',
        "brace": route_value([f"{mark}.example.com{{"], [up]),
        "no-upstreams": json.dumps({"domains": [f"{mark}-noups.example.com"]}),
        "empty-upstreams": route_value([f"{mark}-empty.example.com"], []),
        "hostname-upstream": route_value([f"{mark}-dns.example.com"], [f"{mark}.invalid:80"]),
        "port-0": route_value([f"{mark}-port.example.com"], ["127.0.0.1:0"]),
        "domains-string": json.dumps({"domains": f"{mark}-str.example.com", "upstreams": [up]}),
        "not-json": f"{{domains: [{mark}.example.com",
    }
    keys = {f"/devnginx/{NAMESPACE}/bad-{mark}-{what}": v for what, v in bad_values.items()}
    # A key whose name is no Kubernetes name: it must not reach the file, not even in a comment.
    bad_name_key = f"/devnginx/{NAMESPACE}/Bad {mark};"
    written = [f"/devnginx/{NAMESPACE}/{good}", bad_name_key, *keys]
    try:
        etcd_v3.put(etcd, written[0], route_value([good_domain], [backend.upstream]))
        wait_until(
            lambda: fetch(nginx, good_domain),
            lambda r: r == (200, backend.body),
            f"nginx to serve {good_domain}",
        )
        etcd_v3.put(etcd, bad_name_key, route_value([f"{mark}-name.example.com"], [up]))
        for key, value in keys.items():
            etcd_v3.put(etcd, key, value)
        # Written after the bad keys: served only if confd still renders and nginx reloads.
        written.append(f"/devnginx/{NAMESPACE}/{later}")
        etcd_v3.put(etcd, written[-1], route_value([later_domain], [other_backend.upstream]))
        wait_until(
            lambda: fetch(nginx, later_domain),
            lambda r: r == (200, other_backend.body),
            f"nginx to serve {later_domain}, written after the bad keys",
        )
        assert fetch(nginx, good_domain) == (200, backend.body)
        for host in (
            f"{mark}.example.com",
            f"{mark}-noups.example.com",
            f"{mark}-empty.example.com",
            f"{mark}-dns.example.com",
            f"{mark}-port.example.com",
            f"{mark}-str.example.com",
            f"{mark}-name.example.com",
        ):
            assert fetch(nginx, host)[0] == 404, host

        rendered = Path(routes_file).read_text()
        assert "hijacked" not in rendered
        mentions = [line for line in rendered.splitlines() if mark in line]
        # Every bad key with a valid name is named in a "skipped" comment, and only there.
        assert sorted(mentions) == sorted(
            f"# skipped {NAMESPACE}/bad-{mark}-{what}: its value is not "
            '{"domains": [...], "upstreams": [...]} with valid items'
            for what in bad_values
        )
        assert "# skipped a key under /devnginx whose namespace or name" in rendered
    finally:
        for key in written:
            etcd_v3.delete(etcd, key)
