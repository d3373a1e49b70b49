"""Routes registered by pysteps reach nginx through confd (watch mode), and nothing breaks it.

The chain under test: pysteps' registry (etcd v3) -> /devnginx/<ns>/<name> -> confd -watch
renders resources/confd/templates/nginx-routes.conf.tmpl -> nginx -t on the staged file ->
reload -> nginx proxies by Host header to backends on loopback that answer their own identity.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pysteps.clients.routes import EtcdConfig, EtcdV3RouteRegistry
from pysteps.errors import InputError
from pysteps.routes import Canary, Route
from pysteps.routing import register_route
from tests.conftest import require
from tests.integration import etcd_v3
from tests.integration.edge import (
    backends,
    fetch,
    fetch_tls,
    unique,
    wait_until,
    websocket_echo,
)

pytestmark = pytest.mark.integration

NAMESPACE = "rt-nginx"


@pytest.fixture
def registry(testbed) -> Iterator[EtcdV3RouteRegistry]:
    (etcd,) = require(testbed, "PYSTEPS_ETCD_URL")
    reg = EtcdV3RouteRegistry(EtcdConfig((etcd,)))
    yield reg
    for stored in reg.list(NAMESPACE):  # only this test's namespace
        reg.delete(NAMESPACE, stored.route.name)


def pysteps_cli(testbed, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYSTEPS_ETCD_URL": testbed["PYSTEPS_ETCD_URL"], "PYSTEPS_ETCD_API": "v3"}
    return subprocess.run(
        [sys.executable, "-m", "pysteps", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


def test_registered_route_is_served_within_two_seconds_on_http_and_https(testbed, registry):
    nginx, tls_url, ca, app_logs = require(
        testbed,
        "PYSTEPS_NGINX_URL",
        "TESTBED_NGINX_TLS_URL",
        "TESTBED_NGINX_TLS_CERT",
        "TESTBED_NGINX_APP_LOG_DIR",
    )
    name = unique("app")
    domain = f"{name}.ctest.example.com"
    with backends("127.0.0.31", "127.0.0.32") as (one, two):
        assert fetch(nginx, domain)[0] == 404  # unknown host: the default server
        route = Route(NAMESPACE, name, (domain,), (one.upstream, two.upstream))
        written = time.monotonic()
        assert register_route(registry, route)
        # The first answer of the new config (its new worker) within 2 s, then steadily.
        wait_until(lambda: fetch(nginx, domain)[0], lambda s: s == 200, "a first 200", stable=0)
        assert time.monotonic() - written <= 2.0
        wait_until(lambda: fetch(nginx, domain)[0], lambda s: s == 200, f"nginx to serve {domain}")
        seen = {fetch(nginx, domain) for _ in range(8)}
        assert seen == {(200, one.identity), (200, two.identity)}  # both upstreams, nothing else

        status, body = fetch_tls(tls_url, domain, ca)
        assert status == 200 and body in (one.identity, two.identity)

        headers = one.headers_seen[-1]
        assert headers["host"] == domain
        assert headers["x-forwarded-host"] == domain
        assert headers["x-forwarded-for"] == "127.0.0.1"
        assert {h["x-forwarded-proto"] for h in one.headers_seen + two.headers_seen} == {
            "http",
            "https",
        }
    log = Path(app_logs) / f"{NAMESPACE}_{name}.access.log"
    assert log.exists() and log.read_text().count("GET / ") >= 9


def test_websockets_pass_through(testbed, registry):
    (nginx,) = require(testbed, "PYSTEPS_NGINX_URL")
    name = unique("ws")
    domain = f"{name}.ctest.example.com"
    with backends("127.0.0.33") as (backend,):
        register_route(registry, Route(NAMESPACE, name, (domain,), (backend.upstream,)))
        wait_until(lambda: fetch(nginx, domain)[0], lambda s: s == 200, f"nginx to serve {domain}")
        status, echoed = websocket_echo(nginx, domain, b"hello through the edge")
    assert status.startswith("HTTP/1.1 101")
    assert echoed == b"hello through the edge"


def test_removed_route_answers_404_and_leaves_the_config(testbed, registry):
    nginx, routes_file = require(testbed, "PYSTEPS_NGINX_URL", "TESTBED_NGINX_ROUTES_FILE")
    name = unique("gone")
    domain = f"{name}.ctest.example.com"
    with backends("127.0.0.34") as (backend,):
        register_route(registry, Route(NAMESPACE, name, (domain,), (backend.upstream,)))
        wait_until(lambda: fetch(nginx, domain), lambda r: r == (200, backend.identity), "serve")
        out = pysteps_cli(testbed, "routes", "remove", name, "-n", NAMESPACE)
        assert out.returncode == 0, out.stderr
        wait_until(lambda: fetch(nginx, domain)[0], lambda s: s == 404, f"404 for {domain}")
    assert name not in Path(routes_file).read_text()  # deleted keys really disappear
    again = pysteps_cli(testbed, "routes", "remove", name, "-n", NAMESPACE)
    assert again.returncode == 3 and "no route registered" in again.stderr


def test_pysteps_refuses_hostile_routes_and_writes_nothing(registry):
    name = unique("hostile")
    for route in (
        Route(NAMESPACE, name, ("x.example.com; return 200 hijacked",), ("127.0.0.1:80",)),
        Route(NAMESPACE, name, ("x.example.com",), ("127.0.0.1:80 backup; }",)),
        Route(NAMESPACE, "Bad;Name", ("x.example.com",), ("127.0.0.1:80",)),
    ):
        with pytest.raises(InputError):
            register_route(registry, route)
    assert registry.list(NAMESPACE) == []


def test_hostile_values_written_past_pysteps_are_skipped_and_later_routes_still_served(
    testbed, registry
):
    etcd, nginx, routes_file = require(
        testbed, "PYSTEPS_ETCD_URL", "PYSTEPS_NGINX_URL", "TESTBED_NGINX_ROUTES_FILE"
    )
    mark = unique("m")  # in every bad value, to find it in the rendered file

    def value(domains, upstreams):
        return json.dumps({"domains": domains, "upstreams": upstreams})

    with backends("127.0.0.35", "127.0.0.36") as (backend, later_backend):
        up = backend.upstream
        bad_values = {
            "semicolon": value([f"{mark}.example.com; return 200 hijacked"], [up]),
            "space": value([f"{mark} .example.com"], [up]),
            "newline": f'{{"domains": ["{mark}.example.com\n}}"], "upstreams": ["{up}"]}}',
            "brace": value([f"{mark}.example.com{{"], [up]),
            "no-upstreams": json.dumps({"domains": [f"{mark}-noups.example.com"]}),
            "hostname-upstream": value([f"{mark}-dns.example.com"], [f"{mark}.invalid:80"]),
            "port-0": value([f"{mark}-port.example.com"], ["127.0.0.1:0"]),
            "domains-string": json.dumps({"domains": f"{mark}-str.example.com", "upstreams": [up]}),
            "twice": value([f"{mark}-2.example.com"], [up])[:-1] + ', "domains": ["a.b"]}',
            "not-json": f"{{domains: [{mark}.example.com",
        }
        good = unique("good")
        register_route(registry, Route(NAMESPACE, good, (f"{good}.ctest.example.com",), (up,)))
        wait_until(
            lambda: fetch(nginx, f"{good}.ctest.example.com"),
            lambda r: r == (200, backend.identity),
            "nginx to serve the good route",
        )
        for what, raw in bad_values.items():
            etcd_v3.put(etcd, f"/devnginx/{NAMESPACE}/bad-{what}", raw)
        # A key whose name is no Kubernetes name: it must not reach the file, not even in a comment.
        etcd_v3.put(etcd, f"/devnginx/{NAMESPACE}/Bad {mark};", value([f"{mark}.x.com"], [up]))
        later = unique("later")
        later_domain = f"{later}.ctest.example.com"
        try:
            register_route(
                registry, Route(NAMESPACE, later, (later_domain,), (later_backend.upstream,))
            )
            wait_until(
                lambda: fetch(nginx, later_domain),
                lambda r: r == (200, later_backend.identity),
                f"nginx to serve {later_domain}, written after the bad keys",
            )
            assert fetch(nginx, f"{good}.ctest.example.com") == (200, backend.identity)
            for host in (f"{mark}.example.com", f"{mark}-dns.example.com", f"{mark}-2.example.com"):
                assert fetch(nginx, host)[0] == 404, host
            rendered = Path(routes_file).read_text()
            assert "hijacked" not in rendered
            assert [line for line in rendered.splitlines() if mark in line] == []
            for what in bad_values:
                assert f"# skipped {NAMESPACE}/bad-{what}: its value is not" in rendered, what
            assert "# skipped a key under /devnginx whose namespace or name" in rendered
        finally:
            etcd_v3.delete(etcd, f"/devnginx/{NAMESPACE}/Bad {mark};")
            for what in bad_values:
                etcd_v3.delete(etcd, f"/devnginx/{NAMESPACE}/bad-{what}")


def test_a_route_without_upstreams_renders_no_upstream_block(testbed, registry):
    nginx, routes_file = require(testbed, "PYSTEPS_NGINX_URL", "TESTBED_NGINX_ROUTES_FILE")
    empty, served = unique("empty"), unique("served")
    register_route(registry, Route(NAMESPACE, empty, (f"{empty}.ctest.example.com",), ()))
    with backends("127.0.0.37") as (backend,):
        domain = f"{served}.ctest.example.com"
        register_route(registry, Route(NAMESPACE, served, (domain,), (backend.upstream,)))
        wait_until(lambda: fetch(nginx, domain), lambda r: r == (200, backend.identity), "serve")
    rendered = Path(routes_file).read_text()
    assert f"# {NAMESPACE}/{empty}: no upstream" in rendered
    assert f"devnginx_{NAMESPACE}_{empty}" not in rendered
    assert fetch(nginx, f"{empty}.ctest.example.com")[0] == 404


def test_the_periodic_resync_applies_a_change_the_watcher_missed(testbed, registry):
    nginx, resync = require(testbed, "PYSTEPS_NGINX_URL", "TESTBED_CONFD_RESYNC_SECONDS")
    # testbed/confd-watch.sh (the pid file's) restarts its confd -watch child periodically.
    supervisor = (Path(testbed["TESTBED_DIR"]) / "run" / "confd.pid").read_text().strip()
    children = subprocess.run(
        ["pgrep", "-P", supervisor, "-x", "confd"], capture_output=True, text=True, check=False
    ).stdout.split()
    assert len(children) == 1, f"confd-watch.sh {supervisor} runs {children}, not one confd"
    watcher = int(children[0])
    name = unique("missed")
    domain = f"{name}.ctest.example.com"
    with backends("127.0.0.38") as (backend,):
        register_route(registry, Route(NAMESPACE, name, (domain,), (backend.upstream,)))
        wait_until(lambda: fetch(nginx, domain), lambda r: r == (200, backend.identity), "serve")
        os.kill(watcher, signal.SIGSTOP)  # the watcher sees nothing from here on
        try:
            registry.delete(NAMESPACE, name)
            wait_until(
                lambda: fetch(nginx, domain)[0],
                lambda s: s == 404,
                "the resync to remove the deleted route",
                timeout=int(resync) + 15,
            )
        finally:
            with contextlib.suppress(ProcessLookupError):  # restarted: that one is gone
                os.kill(watcher, signal.SIGCONT)


def test_a_canary_at_weight_10_takes_10_percent_then_all_or_nothing(testbed, registry):
    (nginx,) = require(testbed, "PYSTEPS_NGINX_URL")
    name = unique("canary")
    domain = f"{name}.ctest.example.com"
    with backends("127.0.0.61", "127.0.0.62", "127.0.0.63") as (old_a, old_b, new):
        main = Route(NAMESPACE, name, (domain,), (old_a.upstream, old_b.upstream))
        register_route(registry, main)
        wait_until(lambda: fetch(nginx, domain)[0], lambda s: s == 200, f"nginx to serve {domain}")
        canary = Canary(f"{name}-canary", 10, (new.upstream,))
        register_route(registry, replace(main, canary=canary))
        wait_until(
            lambda: fetch(nginx, domain)[1],
            lambda body: body == new.identity,
            "the canary to take requests",
            stable=0,  # at 10 % it answers now and then: once proves it is in the config
        )
        bodies = [fetch(nginx, domain)[1] for _ in range(2000)]
        share = bodies.count(new.identity) / len(bodies)
        assert 0.07 <= share <= 0.13, f"the canary took {share:.1%} of 2,000 requests"
        assert set(bodies) == {old_a.identity, old_b.identity, new.identity}

        # promote: the route's upstreams become the new version, no canary left
        register_route(registry, Route(NAMESPACE, name, (domain,), (new.upstream,)))
        wait_until(
            lambda: {fetch(nginx, domain)[1] for _ in range(20)},
            lambda seen: seen == {new.identity},
            "100 % new after promote",
        )
        # abort (from a fresh canary): the route without it, 100 % old
        register_route(registry, replace(main, canary=canary))
        wait_until(
            lambda: fetch(nginx, domain)[1], lambda b: b == new.identity, "canary again", stable=0
        )
        register_route(registry, main)
        wait_until(
            lambda: {fetch(nginx, domain)[1] for _ in range(40)},
            lambda seen: seen == {old_a.identity, old_b.identity},
            "100 % old after abort",
        )


def test_a_domain_claimed_by_two_keys_never_breaks_nginx(testbed, registry):
    etcd, nginx, tls_url, ca = require(
        testbed,
        "PYSTEPS_ETCD_URL",
        "PYSTEPS_NGINX_URL",
        "TESTBED_NGINX_TLS_URL",
        "TESTBED_NGINX_TLS_CERT",
    )
    shared = f"{unique('shared')}.ctest.example.com"
    first, second, later = "dup-a", "dup-b", unique("after-dup")
    with backends("127.0.0.39", "127.0.0.40") as (one, two):
        # Written past pysteps (which refuses the second): the template must cope.
        for name, backend in ((first, one), (second, two)):
            etcd_v3.put(
                etcd,
                f"/devnginx/{NAMESPACE}/{name}",
                json.dumps({"domains": [shared], "upstreams": [backend.upstream]}),
            )
        later_domain = f"{later}.ctest.example.com"
        register_route(registry, Route(NAMESPACE, later, (later_domain,), (two.upstream,)))
        wait_until(
            lambda: fetch(nginx, later_domain), lambda r: r == (200, two.identity), "later route"
        )
        assert fetch(nginx, shared) == (200, one.identity)  # the first key in key order
        assert fetch_tls(tls_url, shared, ca) == (200, one.identity)
