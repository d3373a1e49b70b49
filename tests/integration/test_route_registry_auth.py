"""The v3 registry logs in to an etcd with auth enabled (a scratch etcd of this test, on
loopback: auth on the shared one would lock every other test out), and a refused login is one
line that never shows the password."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pysteps.clients.routes import EtcdConfig, EtcdV3RouteRegistry
from pysteps.errors import ServiceError
from pysteps.routes import Route
from pysteps.routing import register_route
from tests.integration.edge import SESSION

pytestmark = pytest.mark.integration

PASSWORD = "rt-s3cret-pass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def etcd_with_auth(tmp_path: Path) -> Iterator[str]:
    etcd = shutil.which("etcd")
    etcdctl = shutil.which("etcdctl")
    if not etcd or not etcdctl:
        pytest.fail("etcd/etcdctl missing: testbed/testbed.sh up etcd installs them", pytrace=False)
    client, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{client}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
    log = (tmp_path / "etcd.log").open("w")
    proc = subprocess.Popen(
        [etcd, "--name", "rt-auth", "--data-dir", str(tmp_path / "data"),
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"rt-auth=http://127.0.0.1:{peer}"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if SESSION.get(f"{url}/health", timeout=1).ok:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"scratch etcd did not start: {(tmp_path / 'etcd.log').read_text()}")
            time.sleep(0.2)
        ctl = [etcdctl, f"--endpoints={url}"]
        for args in (
            ["user", "add", f"root:{PASSWORD}"],
            ["role", "add", "root"],
            ["user", "grant-role", "root", "root"],
            ["auth", "enable"],
        ):
            done = subprocess.run(
                ctl + args, capture_output=True, text=True, env={**env, "ETCDCTL_API": "3"}
            )
            assert done.returncode == 0, f"etcdctl {args[0]} {args[1]}: {done.stderr}"
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_v3_registry_logs_in_with_username_and_password(etcd_with_auth):
    anonymous = EtcdV3RouteRegistry(EtcdConfig((etcd_with_auth,)))
    with pytest.raises(ServiceError):
        anonymous.list()  # auth is really on
    reg = EtcdV3RouteRegistry(EtcdConfig((etcd_with_auth,), username="root", password=PASSWORD))
    route = Route("rt-auth", "hello", ("hello.example.com",), ("127.0.0.1:9",))
    assert register_route(reg, route)
    assert reg.get("rt-auth", "hello").route == route


def test_a_refused_login_is_one_line_without_the_password(etcd_with_auth):
    reg = EtcdV3RouteRegistry(
        EtcdConfig((etcd_with_auth,), username="root", password="wrong-" + PASSWORD)
    )
    with pytest.raises(ServiceError, match="refused the login of PYSTEPS_ETCD_USERNAME") as err:
        reg.list()
    assert PASSWORD not in str(err.value) and "\n" not in str(err.value)
