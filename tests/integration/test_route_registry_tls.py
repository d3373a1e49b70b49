"""Both registries talk to an etcd that wants TLS client certificates (a scratch etcd of this
test, on loopback, with a CA, server and client certificates made by openssl)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pysteps.clients.routes import EtcdConfig, EtcdV2RouteRegistry, EtcdV3RouteRegistry
from pysteps.errors import ServiceError
from pysteps.routes import Route
from pysteps.routing import register_route

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"openssl {args[0]}: {done.stderr}"


def make_certs(d: Path) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=rt-ca",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=d)  # fmt: skip
    # clientAuth too: etcd's v3 JSON gateway dials etcd's own gRPC port with the server's
    # certificate, and with --client-cert-auth answers 503 "connection closed" without it.
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for who in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=rt-{who}",
                "-keyout", f"{who}.key", "-out", f"{who}.csr", cwd=d)  # fmt: skip
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "1", "-extfile", f"{who}.ext", "-out", f"{who}.crt",
                cwd=d)  # fmt: skip


@pytest.fixture(scope="module")
def etcd_tls(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    etcd = shutil.which("etcd")
    if not etcd or not shutil.which("openssl"):
        pytest.fail("etcd/openssl missing: testbed/testbed.sh up etcd installs etcd", pytrace=False)
    d = tmp_path_factory.mktemp("etcd-tls")
    make_certs(d)
    client, peer = free_port(), free_port()
    url = f"https://127.0.0.1:{client}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
    log = (d / "etcd.log").open("w")
    proc = subprocess.Popen(
        [etcd, "--name", "rt-tls", "--data-dir", str(d / "data"), "--enable-v2=true",
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--cert-file", str(d / "server.crt"), "--key-file", str(d / "server.key"),
         "--trusted-ca-file", str(d / "ca.crt"), "--client-cert-auth",
         "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"rt-tls=http://127.0.0.1:{peer}"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        session = requests.Session()
        session.trust_env = False
        deadline = time.monotonic() + 30
        while True:
            try:
                health = session.get(
                    f"{url}/health",
                    verify=str(d / "ca.crt"),
                    cert=(str(d / "client.crt"), str(d / "client.key")),
                    timeout=1,
                )
                if health.ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"scratch etcd did not start: {(d / 'etcd.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield url, d
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.mark.parametrize("api", ["v3", "v2"])
def test_registry_with_a_client_certificate(etcd_tls, api):
    url, d = etcd_tls
    config = EtcdConfig(
        (url,),
        api,
        ca_cert=str(d / "ca.crt"),
        cert=str(d / "client.crt"),
        key=str(d / "client.key"),
    )
    reg = EtcdV3RouteRegistry(config) if api == "v3" else EtcdV2RouteRegistry(config)
    route = Route("rt-tls", f"hello-{api}", ("hello.example.com",), ("127.0.0.1:9",))
    assert register_route(reg, route)
    assert reg.get("rt-tls", f"hello-{api}").route == route


@pytest.mark.parametrize("api", ["v3", "v2"])
def test_without_the_client_certificate_etcd_refuses_in_one_line(etcd_tls, api):
    url, d = etcd_tls
    config = EtcdConfig((url,), api, ca_cert=str(d / "ca.crt"), timeout=3)
    reg = EtcdV3RouteRegistry(config) if api == "v3" else EtcdV2RouteRegistry(config)
    with pytest.raises(ServiceError) as err:
        reg.list()
    assert "\n" not in str(err.value)
