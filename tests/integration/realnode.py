"""The test bed's real node as tests use it: placement, readiness, and requests through nginx."""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import OWN_DOMAINS, require

NODE_KEYS = (
    "TESTBED_NODE_NAME",
    "TESTBED_NODE_IP",
    "TESTBED_NODE_LABEL",
    "TESTBED_NODE_TAINT",
    "TESTBED_RUNTIME_IMAGE",
    "PYSTEPS_NGINX_URL",
    "KUBECONFIG",
    "TESTBED_KUBECTL",
)


def kubectl(env: Mapping[str, str], *args: str, check: bool = True) -> str:
    out = subprocess.run(
        [env["TESTBED_KUBECTL"], "--kubeconfig", env["KUBECONFIG"], *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check:
        assert out.returncode == 0, out.stderr
    return out.stdout


def node_log_tail(env: Mapping[str, str], lines: int = 30) -> str:
    log = Path(env.get("TESTBED_DIR", "")) / "log" / "node_kubelet.log"
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no kubelet log: {exc})"


def require_ready_node(env: Mapping[str, str]) -> None:
    """The real node is registered and Ready; otherwise the test FAILS with the kubelet's log."""
    require(env, *NODE_KEYS)
    raw = kubectl(env, "get", "node", env["TESTBED_NODE_NAME"], "-o", "json", check=False)
    ready = False
    if raw:
        conds = json.loads(raw)["status"].get("conditions") or []
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conds)
    if not ready:
        pytest.fail(
            f"the test bed's real node {env['TESTBED_NODE_NAME']} is not Ready "
            f"(testbed/testbed.sh up node); kubelet log:\n{node_log_tail(env)}",
            pytrace=False,
        )


def placement(env: Mapping[str, str], namespace: str, tmp: Path) -> Path:
    """A --overrides file that puts the app on the real node, on a domain of its own."""
    path = tmp / f"placement-{namespace}.json"
    path.write_text(
        json.dumps(
            {
                "node_selector": {env["TESTBED_NODE_LABEL"]: "true"},
                "tolerations": [{"key": env["TESTBED_NODE_TAINT"], "operator": "Exists"}],
                # Only the namespaced domain: other tests' apps are also called hello.
                "domains": OWN_DOMAINS,
                "mail": {"to": []},
            }
        )
    )
    return path


def fetch(nginx_url: str, host: str, timeout: float = 3.0) -> tuple[int, str]:
    """GET / through nginx with HOST as the Host header: (status, body)."""
    parts = urlsplit(nginx_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Host": host, "Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def wait_for_page(nginx_url: str, host: str, text: str, timeout: float = 90) -> str:
    """Poll until nginx answers 200 with TEXT in the page; the last answer on time-out."""
    deadline = time.monotonic() + timeout
    last = "(no answer)"
    while time.monotonic() < deadline:
        try:
            status, body = fetch(nginx_url, host)
            last = f"{status} {body[:200]!r}"
            if status == 200 and text in body:
                return body
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.5)
    raise AssertionError(f"{host} did not serve {text!r} within {timeout:.0f}s; last: {last}")


@dataclass
class Poller:
    """Requests through nginx in a loop, counting failures and the longest gap between successes."""

    nginx_url: str
    host: str
    interval: float = 0.05
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    longest_gap: float = 0.0
    bodies: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Poller:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def _run(self) -> None:
        last_ok = time.monotonic()
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                status, body = fetch(self.nginx_url, self.host)
            except OSError as exc:
                status, body = 0, f"{type(exc).__name__}: {exc}"
            now = time.monotonic()
            if status == 200:
                self.ok += 1
                self.longest_gap = max(self.longest_gap, now - last_ok)
                last_ok = now
                if not self.bodies or self.bodies[-1][1] != body:
                    self.bodies.append((now, body))
            else:
                self.failures.append(f"{status} {body[:120]!r} at {t:.2f}")
            self._stop.wait(self.interval)

    def summary(self) -> str:
        return (
            f"{self.ok} requests ok, {len(self.failures)} failed, longest gap between "
            f"answers {self.longest_gap:.3f}s, {len(self.bodies)} page changes"
        )
