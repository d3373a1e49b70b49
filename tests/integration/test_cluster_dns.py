"""The rendered Corefile really serves: CoreDNS (built by the test bed) runs what `pysteps dns
render` wrote, and resolves through it.

Small DNS servers on loopback play the company's DNS server and two "internet" upstreams; the
kubernetes plugin reads the test bed's real apiserver through its admin kubeconfig. What each
server answers, and which server saw which query, prove where every query went. Every address in
the rendered config is loopback: nothing is ever sent anywhere else (no /etc/resolv.conf).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest
import requests
import yaml

from pysteps.clients.kube import KubeClient
from tests.conftest import require
from tests.integration.dns_servers import ZoneServer, free_port, free_udp_tcp_port

pytestmark = pytest.mark.integration

COMPANY_ZONE = "corp.example"
COMPANY_RECORDS = {"intranet.corp.example": "10.20.0.5", "git.corp.example": "10.20.0.6"}
UPSTREAM_A = "198.51.100.1"  # what the first "internet" upstream answers for any name
UPSTREAM_B = "198.51.100.2"


@dataclass
class RunningDns:
    port: int
    company: ZoneServer
    upstreams: list[ZoneServer]
    corefile: str
    process: subprocess.Popen[bytes]
    log: Path
    config_file: Path

    def ask(self, name: str, rdtype: str = "A") -> dns.message.Message:
        query = dns.message.make_query(name, rdtype)
        return dns.query.udp(query, "127.0.0.1", port=self.port, timeout=5)

    def addresses(self, name: str) -> list[str]:
        reply = self.ask(name)
        assert reply.rcode() == dns.rcode.NOERROR, (name, dns.rcode.to_text(reply.rcode()))
        return sorted(r.address for rrset in reply.answer for r in rrset)

    def stop(self) -> None:
        """Stop CoreDNS and the test's DNS servers."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for server in [self.company, *self.upstreams]:
            server.stop()


def _pysteps(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pysteps", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(env) if env is not None else None,
        check=False,
    )


def _no_proxy_env() -> dict[str, str]:
    """The environment without proxy settings: the apiserver is reached on loopback, directly."""
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


@pytest.fixture(scope="module")
def coredns_bin(testbed: Mapping[str, str]) -> str:
    (path,) = require(testbed, "TESTBED_COREDNS")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: run 'testbed/testbed.sh up coredns'", pytrace=False)
    return path


@pytest.fixture(scope="module")
def kube(testbed: Mapping[str, str]) -> KubeClient:
    (kubeconfig,) = require(testbed, "KUBECONFIG")
    return KubeClient(kubeconfig)


@pytest.fixture(scope="module")
def service(kube: KubeClient) -> Iterator[tuple[str, str, str]]:
    """A Service in a namespace of this test's own: (namespace, name, its ClusterIP)."""
    namespace = f"dn-{uuid.uuid4().hex[:8]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        svc = kube.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "dn-web", "namespace": namespace},
                "spec": {"selector": {"app": "dn-web"}, "ports": [{"port": 80}]},
            }
        )
        yield namespace, "dn-web", svc["spec"]["clusterIP"]
    finally:
        kube.delete("Namespace", None, namespace)


@pytest.fixture(scope="module")
def cluster_access(testbed: Mapping[str, str]) -> dict[str, str]:
    """The kubernetes plugin's settings: the test bed's admin kubeconfig and its context."""
    (kubeconfig,) = require(testbed, "KUBECONFIG")
    context = yaml.safe_load(Path(kubeconfig).read_text())["current-context"]
    return {"kubeconfig": kubeconfig, "context": context}


def start_coredns(
    coredns_bin: str,
    work: Path,
    company: ZoneServer,
    upstreams: list[ZoneServer],
    cluster_access: Mapping[str, str],
    cache_ttl: int = 5,
) -> RunningDns:
    """Render a Corefile with `pysteps dns render` (every address on loopback), start CoreDNS on
    it, and return once CoreDNS says it is ready."""
    port, ready = free_udp_tcp_port(), free_port()
    config = {
        "company_zones": {COMPANY_ZONE: [company.address]},
        "upstreams": [u.address for u in upstreams],
        "cache_ttl": cache_ttl,
        "coredns": {
            "port": port,
            "bind": ["127.0.0.1"],
            "health": f"127.0.0.1:{free_port()}",
            "ready": f"127.0.0.1:{ready}",
            "metrics": f"127.0.0.1:{free_port()}",
            **cluster_access,
        },
    }
    (work / "dns.yaml").write_text(yaml.safe_dump(config))
    rendered = _pysteps(
        "dns", "render", "--config", str(work / "dns.yaml"), "-o", str(work / "Corefile")
    )
    assert rendered.returncode == 0, rendered.stderr
    corefile = (work / "Corefile").read_text()
    _assert_only_loopback(corefile)
    log = work / "coredns.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [coredns_bin, "-conf", str(work / "Corefile")],
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_no_proxy_env(),
        )
    server = RunningDns(port, company, upstreams, corefile, process, log, work / "dns.yaml")
    try:
        _wait_ready(server, f"http://127.0.0.1:{ready}/ready")
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def running(
    coredns_bin: str, cluster_access: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningDns]:
    company = ZoneServer("127.0.0.21", COMPANY_RECORDS).start()
    upstreams = [
        ZoneServer("127.0.0.22", {}, default=UPSTREAM_A).start(),
        ZoneServer("127.0.0.23", {}, default=UPSTREAM_B).start(),
    ]
    server = start_coredns(
        coredns_bin, tmp_path_factory.mktemp("dn-coredns"), company, upstreams, cluster_access
    )
    yield server
    server.stop()


def _assert_only_loopback(corefile: str) -> None:
    assert "resolv.conf" not in corefile
    targets = [
        word
        for line in corefile.splitlines()
        if line.strip().startswith("forward .")
        for word in line.split()[2:]
        if word != "{"
    ]
    assert targets and all(t.startswith("127.") for t in targets), targets


def _wait_ready(server: RunningDns, url: str, timeout: float = 60) -> None:
    """CoreDNS's ready endpoint answers 200 once every plugin (kubernetes: synced) is ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            if requests.get(url, timeout=2, proxies={"http": "", "https": ""}).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    pytest.fail(
        f"CoreDNS did not become ready within {timeout:.0f}s (exit {server.process.poll()}); "
        f"its log:\n{server.log.read_text()[-4000:]}\nCorefile:\n{server.corefile}",
        pytrace=False,
    )


# ------------------------------------------------------------------------------ the tests


def test_company_names_are_answered_by_the_company_server(running: RunningDns) -> None:
    assert running.addresses("intranet.corp.example") == ["10.20.0.5"]
    assert running.addresses("GIT.corp.example.") == ["10.20.0.6"]
    assert "intranet.corp.example." in running.company.names_asked()
    for upstream in running.upstreams:
        assert not [n for n in upstream.names_asked() if n.endswith("corp.example.")]


def test_a_company_name_the_company_does_not_know_is_nxdomain_not_asked_upstream(
    running: RunningDns,
) -> None:
    reply = running.ask("nobody.corp.example")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    for upstream in running.upstreams:
        assert "nobody.corp.example." not in upstream.names_asked()


def test_other_names_are_answered_by_the_upstreams(running: RunningDns) -> None:
    answers = {tuple(running.addresses(f"host{i}.example.org")) for i in range(12)}
    # forward picks upstreams at random: each name went to one of the two, never elsewhere.
    assert answers <= {(UPSTREAM_A,), (UPSTREAM_B,)}
    asked = [n for u in running.upstreams for n in u.names_asked()]
    assert {f"host{i}.example.org." for i in range(12)} <= set(asked)
    assert not [n for n in running.company.names_asked() if n.endswith("example.org.")]


def test_cluster_names_are_answered_from_the_apiserver(
    running: RunningDns, service: tuple[str, str, str]
) -> None:
    namespace, name, cluster_ip = service
    fqdn = f"{name}.{namespace}.svc.cluster.local"
    deadline = time.monotonic() + 20  # the plugin learns of the new Service through its watch
    while True:
        reply = running.ask(fqdn)
        if reply.rcode() == dns.rcode.NOERROR and reply.answer:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"{fqdn}: {dns.rcode.to_text(reply.rcode())}, no answer")
        time.sleep(0.5)
    assert running.addresses(fqdn) == [cluster_ip]
    assert running.ask(f"nothing.{namespace}.svc.cluster.local").rcode() == dns.rcode.NXDOMAIN
    for server in [running.company, *running.upstreams]:
        assert not [n for n in server.names_asked() if n.endswith("cluster.local.")]


def test_dns_apply_stores_the_corefile_coredns_runs(
    running: RunningDns, service: tuple[str, str, str], kube: KubeClient, testbed: Mapping[str, str]
) -> None:
    namespace = service[0]  # this test's own namespace, never kube-system
    env = {**_no_proxy_env(), "KUBECONFIG": testbed["KUBECONFIG"]}
    args = ("dns", "apply", "--config", str(running.config_file), "--namespace", namespace)
    result = _pysteps(*args, env=env)
    assert result.returncode == 0, result.stderr
    stored = kube.get("ConfigMap", namespace, "coredns")
    assert stored is not None and stored["data"]["Corefile"] == running.corefile


def test_a_company_server_that_is_down_fails_closed_never_upstream(
    coredns_bin: str, cluster_access: dict[str, str], tmp_path: Path
) -> None:
    """Company names must not leak to the internet when the company's DNS is down."""
    dead = ZoneServer("127.0.0.24", {})  # never started: nothing answers there
    dead.port = free_udp_tcp_port(dead.host)
    upstream = ZoneServer("127.0.0.25", {}, default=UPSTREAM_A).start()
    server = start_coredns(coredns_bin, tmp_path, dead, [upstream], cluster_access, cache_ttl=0)
    try:
        reply = server.ask("intranet.corp.example")
        assert reply.rcode() == dns.rcode.SERVFAIL
        assert server.addresses("www.example.org") == [UPSTREAM_A]  # the rest still works
        assert "intranet.corp.example." not in upstream.names_asked()
    finally:
        server.stop()


def test_four_upstreams_are_refused_at_render(tmp_path: Path) -> None:
    out = tmp_path / "Corefile"
    upstreams = [f"--upstream=127.0.0.{i}:5300" for i in range(30, 34)]
    result = _pysteps("dns", "render", *upstreams, "-o", str(out))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "pysteps dns: dns config field 'upstreams': 4 servers given, at most 3 allowed "
        "(kube-dns and a pod's resolv.conf use only three); drop some"
    ]
    assert not out.exists()
