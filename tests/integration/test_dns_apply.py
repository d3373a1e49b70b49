"""`pysteps dns apply` against the test bed's real kube-apiserver.

The test bed's cluster is shared, so the ConfigMaps are written into a namespace of this test's
own (`--namespace dn-...`), never into kube-system; the namespace is deleted afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from pysteps.clients.kube import KubeClient
from pysteps.clusterdns.config import parse_dns_config
from pysteps.clusterdns.render import kube_dns_data, render_corefile
from tests.conftest import require

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kube(testbed: Mapping[str, str]) -> KubeClient:
    (kubeconfig,) = require(testbed, "KUBECONFIG")
    return KubeClient(kubeconfig)


@pytest.fixture()
def namespace(kube: KubeClient) -> Iterator[str]:
    name = f"dn-{uuid.uuid4().hex[:8]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    kube.delete("Namespace", None, name)


def apply(
    testbed: Mapping[str, str], namespace: str, *args: str, kubeconfig: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": kubeconfig or testbed["KUBECONFIG"]}
    return subprocess.run(
        [sys.executable, "-m", "pysteps", "dns", "apply", "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def corefile(*upstreams: str, zones: Mapping[str, list[str]] | None = None) -> str:
    return render_corefile(
        parse_dns_config({"upstreams": list(upstreams), "company_zones": zones or {}})
    )


def configmap(kube: KubeClient, namespace: str, name: str = "coredns") -> dict[str, Any]:
    obj = kube.get("ConfigMap", namespace, name)
    assert obj is not None, f"ConfigMap {namespace}/{name} missing"
    return obj


def test_apply_creates_then_changes_nothing_then_updates(
    testbed: Mapping[str, str], kube: KubeClient, namespace: str
) -> None:
    first = apply(
        testbed, namespace, "--upstream", "127.0.0.53", "--zone", "corp.example=127.0.0.54"
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == f"ConfigMap {namespace}/coredns: create with Corefile"
    created = configmap(kube, namespace)
    assert created["data"] == {
        "Corefile": corefile("127.0.0.53", zones={"corp.example": ["127.0.0.54"]})
    }

    again = apply(
        testbed, namespace, "--upstream", "127.0.0.53", "--zone", "corp.example=127.0.0.54"
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"ConfigMap {namespace}/coredns: unchanged (Corefile)"]
    assert (
        configmap(kube, namespace)["metadata"]["resourceVersion"]
        == (created["metadata"]["resourceVersion"])
    )

    # Someone keeps another key in the same ConfigMap: it survives our update.
    other = configmap(kube, namespace)
    other["data"]["extra.server"] = "# kept\n"
    kube.replace(other)
    changed = apply(
        testbed, namespace, "--upstream", "127.0.0.63", "--zone", "corp.example=127.0.0.54"
    )
    assert changed.returncode == 0, changed.stderr
    lines = changed.stdout.splitlines()
    assert lines[0] == f"ConfigMap {namespace}/coredns: change Corefile"
    assert "-    forward . 127.0.0.53:53 {" in lines
    assert "+    forward . 127.0.0.63:53 {" in lines
    now = configmap(kube, namespace)
    assert now["data"] == {
        "Corefile": corefile("127.0.0.63", zones={"corp.example": ["127.0.0.54"]}),
        "extra.server": "# kept\n",
    }


def reader_kubeconfig(testbed: Mapping[str, str], namespace: str, path: Path) -> str:
    """A kubeconfig for a service account that may only read ConfigMaps in NAMESPACE."""
    kubectl, admin = require(testbed, "TESTBED_KUBECTL", "KUBECONFIG")
    rbac = f"""
apiVersion: v1
kind: ServiceAccount
metadata: {{name: dn-reader, namespace: {namespace}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: dn-reader, namespace: {namespace}}}
rules: [{{apiGroups: [""], resources: [configmaps], verbs: [get, list]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: dn-reader, namespace: {namespace}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: dn-reader}}
subjects: [{{kind: ServiceAccount, name: dn-reader, namespace: {namespace}}}]
"""
    base = [kubectl, "--kubeconfig", admin, "--request-timeout=20s"]
    subprocess.run([*base, "apply", "-f", "-"], input=rbac, text=True, check=True, timeout=60)
    token = subprocess.run(
        [*base, "create", "token", "dn-reader", "-n", namespace, "--duration", "10m"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    cluster = yaml.safe_load(Path(admin).read_text())["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "dn-reader", "user": {"token": token}}],
        "contexts": [
            {"name": "dn-reader", "context": {"cluster": cluster["name"], "user": "dn-reader"}}
        ],
        "current-context": "dn-reader",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return str(path)


def test_an_unchanged_config_needs_only_read_rights(
    testbed: Mapping[str, str], kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    """The proof that nothing is written: a reader-only identity can run the second apply."""
    args = ("--upstream", "127.0.0.53", "--zone", "corp.example=127.0.0.54")
    assert apply(testbed, namespace, *args).returncode == 0
    reader = reader_kubeconfig(testbed, namespace, tmp_path / "reader.kubeconfig")
    again = apply(testbed, namespace, *args, kubeconfig=reader)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"ConfigMap {namespace}/coredns: unchanged (Corefile)"]
    dry = apply(testbed, namespace, "--upstream", "127.0.0.63", "--dry-run", kubeconfig=reader)
    assert dry.returncode == 0, dry.stderr  # a dry run reads only, too
    assert dry.stdout.splitlines()[0].endswith("(dry run: nothing written)")
    # The same identity is refused a real change: its rights are really read-only.
    changed = apply(testbed, namespace, "--upstream", "127.0.0.63", kubeconfig=reader)
    assert changed.returncode == 3, changed.stderr
    assert "may not put ConfigMap" in changed.stderr
    kube_dns = apply(testbed, namespace, "--flavor", "kube-dns", *args)
    assert kube_dns.returncode == 0, kube_dns.stderr
    again = apply(testbed, namespace, "--flavor", "kube-dns", *args, kubeconfig=reader)
    assert again.returncode == 0, again.stderr


def test_dry_run_and_bad_input_write_nothing(
    testbed: Mapping[str, str], kube: KubeClient, namespace: str
) -> None:
    assert apply(testbed, namespace, "--upstream", "127.0.0.53").returncode == 0
    before = configmap(kube, namespace)

    dry = apply(testbed, namespace, "--upstream", "127.0.0.63", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0].endswith("change Corefile (dry run: nothing written)")
    assert "+    forward . 127.0.0.63:53 {" in dry.stdout

    four = [f"--upstream=127.0.0.{i}" for i in range(60, 64)]
    bad = apply(testbed, namespace, *four)
    assert bad.returncode == 2
    assert "'upstreams': 4 servers given, at most 3 allowed" in bad.stderr
    malformed = apply(testbed, namespace, "--upstream", "127.0.0.53", "--zone", "corp..x=127.0.0.1")
    assert malformed.returncode == 2
    assert "company_zones[corp..x]" in malformed.stderr

    after = configmap(kube, namespace)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["data"] == before["data"]


def test_kube_dns_flavor_writes_stub_domains_and_upstreams(
    testbed: Mapping[str, str], kube: KubeClient, namespace: str
) -> None:
    args = (
        "--flavor",
        "kube-dns",
        "--upstream",
        "127.0.0.53",
        "--zone",
        "corp.example=127.0.0.54:5353",
    )
    result = apply(testbed, namespace, *args)
    assert result.returncode == 0, result.stderr
    data = configmap(kube, namespace, "kube-dns")["data"]
    assert json.loads(data["stubDomains"]) == {"corp.example": ["127.0.0.54:5353"]}
    assert json.loads(data["upstreamNameservers"]) == ["127.0.0.53"]
    config = parse_dns_config(
        {"upstreams": ["127.0.0.53"], "company_zones": {"corp.example": "127.0.0.54:5353"}}
    )
    assert data == kube_dns_data(config)
    assert kube.get("ConfigMap", namespace, "coredns") is None  # one flavor, one ConfigMap
    again = apply(testbed, namespace, *args)
    assert again.stdout.strip().endswith("unchanged (stubDomains, upstreamNameservers)")


def test_concurrent_applies_both_succeed_and_one_whole_config_wins(
    testbed: Mapping[str, str], kube: KubeClient, namespace: str
) -> None:
    configs = [("127.0.0.71",), ("127.0.0.72", "127.0.0.73")]

    def run(upstreams: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        return apply(testbed, namespace, *[f"--upstream={u}" for u in upstreams])

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, configs))
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert configmap(kube, namespace)["data"]["Corefile"] in {corefile(*c) for c in configs}


def test_apply_into_a_missing_namespace_is_refused(testbed: Mapping[str, str]) -> None:
    missing = f"dn-missing-{uuid.uuid4().hex[:6]}"
    result = apply(testbed, missing, "--upstream", "127.0.0.53")
    assert result.returncode == 3
    assert f"namespace {missing} does not exist" in result.stderr
