"""Test-bed self-test: stopping the real node leaves nothing behind, and it starts again.

Only the node service is stopped (`testbed/testbed.sh down node`), never the whole test bed,
which other tests use at the same time. A pod runs on the node first, so there is a container,
a network namespace, a veth, rootfs and volume mounts and NodePort rules to clean up.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.realnode import kubectl, require_ready_node, wait_for_page

pytestmark = pytest.mark.integration

TESTBED = REPO / "testbed" / "testbed.sh"


def run_testbed_sh(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TESTBED), *args],
        env={**os.environ, "TESTBED_DIR": env["TESTBED_DIR"]},
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def processes_mentioning(*needles: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(n in cmd for n in needles):
            found.append(f"{proc.name}: {cmd[:160]}")
    return found


def mounts_under(*roots: str) -> list[str]:
    """Mount points at or below ROOTS."""
    points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    return [p for p in points for r in roots if p == r or p.startswith(r.rstrip("/") + "/")]


def links() -> dict[str, str]:
    """Interface name -> its `ip -o link` line."""
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0]: line for line in out.splitlines()}


def iptables_rules() -> str:
    text = ""
    for cmd in ("iptables-save", "ip6tables-save"):
        text += subprocess.run([cmd], capture_output=True, text=True, check=False).stdout
    return text


def test_testbed_node_stop_leaves_nothing_behind_and_starts_again(testbed, tmp_path):
    env = dict(testbed)
    require_ready_node(env)
    node, state, node_dir = (
        env["TESTBED_NODE_NAME"],
        env["TESTBED_NODE_STATE"],
        env["TESTBED_NODE_DIR"],
    )
    namespace = f"nd-teardown-{uuid.uuid4().hex[:6]}"
    kubectl(env, "create", "namespace", namespace)
    try:
        manifest = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": namespace, "labels": {"app": "web"}},
            "spec": {
                "nodeSelector": {env["TESTBED_NODE_LABEL"]: "true"},
                "tolerations": [{"key": env["TESTBED_NODE_TAINT"], "operator": "Exists"}],
                "containers": [
                    {
                        "name": "web",
                        "image": env["TESTBED_RUNTIME_IMAGE"],
                        "command": [
                            "sh",
                            "-c",
                            "mkdir -p /tmp/w && hostname > /tmp/w/index.html && "
                            "exec httpd -f -p 8080 -h /tmp/w",
                        ],
                        "ports": [{"containerPort": 8080}],
                    }
                ],
            },
        }
        (tmp_path / "pod.json").write_text(json.dumps(manifest))
        kubectl(env, "apply", "-f", str(tmp_path / "pod.json"))
        kubectl(env, "-n", namespace, "expose", "pod", "web", "--type=NodePort", "--port=8080")
        kubectl(env, "-n", namespace, "wait", "pod/web", "--for=condition=Ready", "--timeout=120s")
        port = json.loads(kubectl(env, "-n", namespace, "get", "svc", "web", "-o", "json"))["spec"][
            "ports"
        ][0]["nodePort"]
        # The pod answers on the node's address and NodePort (kube-proxy's rules).
        wait_for_page(f"http://{env['TESTBED_NODE_IP']}:{port}", "web", "web", timeout=60)

        before = links()
        pod_links = [n for n, line in before.items() if "master pysteps-cni0" in line]
        assert pod_links, f"no veth of the pod on the bridge: {before}"
        assert "KUBE-NODEPORTS" in iptables_rules()
        assert mounts_under(node_dir, state), "no mounts of the running pod?"
        saved = Path(node_dir, "sysctl.saved").read_text().split()

        stop = run_testbed_sh(env, "down", "node")
        assert stop.returncode == 0, stop.stderr

        left = processes_mentioning(state, node_dir)
        assert left == [], left
        assert not list(Path("/sys/fs/cgroup").glob("*/pysteps-node")), "kubelet cgroups left"
        assert mounts_under(node_dir, state, env["TESTBED_NODE_CODE_MOUNT"]) == []
        assert not Path(state).exists()
        after = links()
        assert "pysteps-cni0" not in after
        assert [n for n in pod_links if n in after] == []
        netns = Path("/var/run/netns")
        assert not (netns.exists() and [n for n in os.listdir(netns) if n.startswith("cni-")])
        rules = iptables_rules()
        assert not re.findall(r"(KUBE|CNI)-[A-Z0-9-]+", rules), rules
        for item in saved:
            key, _, value = item.partition("=")
            now = Path("/proc/sys", *key.split(".")).read_text().strip()
            assert now == value, f"{key} is {now}, was {value} before the node started"
        assert kubectl(env, "get", "node", node, "--ignore-not-found", "-o", "name") == ""
    finally:
        start = run_testbed_sh(env, "up", "node")
        kubectl(env, "delete", "namespace", namespace, "--wait=false", check=False)
    assert start.returncode == 0, start.stderr[-3000:]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            require_ready_node(env)
            break
        except pytest.fail.Exception:
            time.sleep(1)
    require_ready_node(env)
    assert "KUBE-NODEPORTS" in iptables_rules()
