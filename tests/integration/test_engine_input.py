"""Issue 9, part B, on the real test bed: hostile input changes nothing, destroy touches only
what the app owns, secrets never leave the Secret, a stolen lock stops a deploy.

Every check is made with the services themselves: kubectl, etcd's v3 gateway, the rendered
nginx routes file, the GlusterFS brick on disk and the SMTP store.
"""

from __future__ import annotations

import base64
import email
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pysteps.spec import deep_merge
from tests.conftest import OWN_DOMAINS, REPO, require
from tests.gitrepo import GitRepo
from tests.integration import etcd_v3
from tests.integration.test_deploy_e2e import Bed as E2EBed

pytestmark = pytest.mark.integration

EXAMPLE = REPO / "examples" / "hello"
# A namespace no test makes: a hostile code.path aims at it.
VICTIM = "ei-victim"


class Bed(E2EBed):
    """The end-to-end tests' bed, deploying with a JSON overrides file as the Jenkins step does."""

    def kubectl_or_empty(self, *args: str) -> str:
        """kubectl's output, or '' when it fails (the object or namespace does not exist)."""
        try:
            return self.kubectl(*args)
        except AssertionError:
            return ""

    def base_overrides(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "image": f"{self.env['PYSTEPS_REGISTRY']}/ei/hello",
            "build": {"args": {"BASE": self.env["TESTBED_BASE_IMAGE"]}},
            "domains": OWN_DOMAINS,
        }

    def deploy_with(
        self,
        app: Path,
        overrides: dict[str, Any],
        *args: str,
        spec: str = "deploy.yaml",
        extra_env: dict[str, str] | None = None,
    ):
        tag = uuid.uuid4().hex[:8]
        over = self.tmp / f"overrides-{tag}.json"
        over.write_text(json.dumps(overrides))
        result = self.tmp / f"result-{tag}.json"
        runner = Bed({**self.env, **extra_env}, self.namespace, self.tmp) if extra_env else self
        out = runner.cli(
            "deploy",
            "--repo",
            str(app),
            "-f",
            str(app / spec),
            "--overrides",
            str(over),
            "--result",
            str(result),
            *args,
        )
        data = json.loads(result.read_text()) if result.exists() else None
        return out, data


def make_app(tmp: Path, *, link_out: bool = False) -> Path:
    app = tmp / "app"
    shutil.copytree(EXAMPLE, app)
    if link_out:
        (app / "outside").symlink_to("/etc")  # a build context that leaves the checkout
    GitRepo(app).commit("first")
    return app


@pytest.fixture
def bed(testbed, tmp_path):
    require(
        testbed,
        "KUBECONFIG",
        "TESTBED_KUBECTL",
        "PYSTEPS_REGISTRY",
        "DOCKER_HOST",
        "PYSTEPS_ETCD_URL",
        "TESTBED_GLUSTER_BRICK",
        "TESTBED_NGINX_ROUTES_FILE",
        "TESTBED_SMTP_STORE",
    )
    namespace = f"ei-{uuid.uuid4().hex[:8]}"
    b = Bed(dict(testbed), namespace, tmp_path)
    b.kubectl("create", "namespace", namespace)
    yield b
    b.kubectl("delete", "namespace", namespace, "--wait=false")
    remove_local_images(testbed["DOCKER_HOST"], f"{testbed['PYSTEPS_REGISTRY']}/ei/hello")
    # Through the volume (never on the brick behind glusterd's back).
    host, volume = testbed.get("PYSTEPS_GLUSTER_HOST"), testbed.get("PYSTEPS_GLUSTER_VOLUME")
    if host and volume and (Path(testbed["TESTBED_GLUSTER_BRICK"]) / namespace).exists():
        from pysteps.clients.storage import GlusterStorage

        with GlusterStorage(host, volume) as storage:
            storage.app_dir(namespace).purge()
    etcd_v3.call(
        testbed["PYSTEPS_ETCD_URL"],
        "kv/deleterange",
        {
            "key": etcd_v3.b64(f"/devnginx/{namespace}/"),
            "range_end": etcd_v3.b64(f"/devnginx/{namespace}0"),
        },
    )


def remove_local_images(docker_host: str, repository: str) -> None:
    """The images our deploys built, off the engine (its vfs storage fills the disk)."""
    import docker

    client = docker.DockerClient(base_url=docker_host, version="auto")
    try:
        for image in client.images.list(name=repository):
            client.images.remove(image.id, force=True)
    finally:
        client.close()


# What "nothing changed" means, read from each service -------------------------------------


def cluster_state(bed: Bed, namespace: str) -> dict[str, str]:
    """Every object of NAMESPACE with its resourceVersion (and the namespace's existence)."""
    raw = bed.kubectl_or_empty(
        "-n", namespace, "get", "deploy,rs,rc,svc,pods,secrets,configmaps,leases", "-o", "json"
    )
    items = json.loads(raw)["items"] if raw.strip() else []
    state = {
        f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"] for o in items
    }
    exists = bed.kubectl("get", "namespace", namespace, "--ignore-not-found", "-o", "name")
    state["namespace"] = exists.strip()
    return state


def etcd_state(bed: Bed, prefix: str) -> dict[str, str]:
    """Route keys under PREFIX with their mod revisions."""
    found = etcd_v3.call(
        bed.env["PYSTEPS_ETCD_URL"],
        "kv/range",
        {
            "key": etcd_v3.b64(prefix),
            "range_end": etcd_v3.b64(prefix[:-1] + chr(ord(prefix[-1]) + 1)),
        },
    )
    return {
        base64.b64decode(kv["key"]).decode(): str(kv["mod_revision"])
        for kv in found.get("kvs") or []
    }


def nginx_lines(bed: Bed, namespace: str) -> list[str]:
    routes = Path(bed.env["TESTBED_NGINX_ROUTES_FILE"])
    text = routes.read_text() if routes.exists() else ""
    return [line for line in text.splitlines() if namespace in line]


def volume_tree(bed: Bed, top: str) -> dict[str, str]:
    """Every entry under TOP on the brick: kind and content hash (the volume's own bytes)."""
    root = Path(bed.env["TESTBED_GLUSTER_BRICK"]) / top
    tree: dict[str, str] = {}
    if not root.exists():
        return tree
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            tree[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            tree[rel] = "dir"
        else:
            tree[rel] = f"{path.stat().st_mode:o}:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return tree


def world_state(bed: Bed) -> tuple[Any, ...]:
    """Our namespace and a victim one, as the cluster, etcd, nginx and the volume see them."""
    return (
        cluster_state(bed, bed.namespace),
        cluster_state(bed, VICTIM),
        etcd_state(bed, f"/devnginx/{bed.namespace}/"),
        etcd_state(bed, f"/devnginx/{VICTIM}/"),
        nginx_lines(bed, bed.namespace),
        volume_tree(bed, bed.namespace),
        volume_tree(bed, VICTIM),
    )


# 1. Hostile values through every field -----------------------------------------------------

HOSTILE: list[tuple[str, dict[str, Any]]] = [
    ("name", {"name": "hello\n"}),
    ("name", {"name": "../hello"}),
    ("namespace", {"namespace": "ei-x\n"}),
    ("image", {"image": "127.0.0.1:25000/ei/hello\n"}),
    ("image", {"image": "127.0.0.1:25000/ei/hello;id"}),
    ("runtime_image", {"mode": "code", "runtime_image": "reg/rt:1\nx"}),
    ("command.0", {"command": ["httpd\x00"]}),
    ("build.context", {"build": {"context": "outside"}}),
    ("build.context", {"build": {"context": "../.."}}),
    ("build.dockerfile", {"build": {"dockerfile": "../Dockerfile"}}),
    ("build.args", {"build": {"args": {"BAD KEY": "x"}}}),
    ("build.extra_tags.0", {"build": {"extra_tags": ["latest\n"]}}),
    ("env", {"env": {"A-B": "x"}}),
    ("env", {"env": {"DB_PASSWORD": "literal-in-the-spec"}}),
    ("env.K", {"env": {"K": 7}}),
    ("readiness.path", {"readiness": {"path": "/ok\nx"}}),
    ("code.volume", {"mode": "code", "runtime_image": "reg/rt:1", "code": {"volume": "../../etc"}}),
    ("code.volume", {"mode": "code", "runtime_image": "reg/rt:1", "code": {"volume": "a;b"}}),
    ("code.volume", {"mode": "code", "runtime_image": "reg/rt:1", "code": {"volume": "a b"}}),
    ("code.volume", {"mode": "code", "runtime_image": "reg/rt:1", "code": {"volume": "pysteps\n"}}),
    (
        "code.host_mount_root",
        {"mode": "code", "runtime_image": "reg/rt:1", "code": {"host_mount_root": "/"}},
    ),
    (
        "code.host_mount_root",
        {"mode": "code", "runtime_image": "reg/rt:1", "code": {"host_mount_root": "/mnt/../etc"}},
    ),
    (
        "code.path",
        {"mode": "code", "runtime_image": "reg/rt:1", "code": {"path": f"{VICTIM}/shop"}},
    ),
    (
        "code.claim_name",
        {
            "mode": "code",
            "runtime_image": "reg/rt:1",
            "code": {"mount": "pvc", "claim_name": "x/../y"},
        },
    ),
    ("domains.0", {"domains": ["*.example.com"]}),
    ("domains.0", {"domains": ["hello.example.com\n"]}),
    ("domains", {"domains": ["a" * 64 + ".example.com"]}),
    ("domains.0", {"domains": ["x;return 301 http://evil.test/;#.example.com"]}),
    ("mail.to.0", {"mail": {"to": ["ops@example.com\nBcc: someone@evil.test"]}}),
    ("resources.limits.memory", {"resources": {"limits": {"memory": "1Gi\n"}}}),
    ("rollout.max_surge", {"rollout": {"max_surge": "25%;"}}),
    ("ports.http", {"ports": {"http": 70000}}),
    ("replicas", {"replicas": -1}),
    ("kind", {"kind": "DaemonSet"}),
    ("volumes", {"volumes": [{"hostPath": "/"}]}),
]


def test_hostile_values_through_every_field_exit_2_and_change_nothing(bed, tmp_path):
    app = make_app(tmp_path, link_out=True)
    # A live app first, so "nothing changed" covers a workload, a Service, a route and a lock.
    out, _ = bed.deploy_with(app, bed.base_overrides())
    assert out.returncode == 0, out.stderr
    before = world_state(bed)

    def refused(case: tuple[str, dict[str, Any]]) -> str | None:
        field, hostile = case
        out, result = bed.deploy_with(app, deep_merge(bed.base_overrides(), hostile))
        errors = [line for line in out.stderr.splitlines() if line.startswith("pysteps deploy:")]
        ok = (
            out.returncode == 2
            and len(errors) == 1
            and errors[0].startswith(f"pysteps deploy: spec field {field!r}")
            and result is not None
            and result["exit_code"] == 2
        )
        return None if ok else f"{field} {hostile!r}: exit {out.returncode}: {out.stderr[-400:]}"

    # Several at a time: each is a whole CLI run (start-up is most of it).
    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [f for f in pool.map(refused, HOSTILE) if f is not None]
    assert failures == []
    after = world_state(bed)
    assert after == before


def test_a_deploy_into_a_missing_namespace_is_exit_3_with_a_true_result(bed, tmp_path):
    app = make_app(tmp_path)
    missing = f"ei-missing-{uuid.uuid4().hex[:6]}"
    out, result = bed.deploy_with(app, deep_merge(bed.base_overrides(), {"namespace": missing}))
    assert out.returncode == 3, out.stderr
    assert f"namespace {missing} does not exist" in out.stderr
    assert "Traceback" not in out.stderr
    assert result["exit_code"] == 3 and result["ok"] is False
    assert cluster_state(bed, missing) == {"namespace": ""}


# 2. Destroy acts only on what the app owns ----------------------------------------------------


def test_destroy_of_a_missing_app_with_purge_leaves_every_other_apps_code(bed, tmp_path):
    require(bed.env, "PYSTEPS_GLUSTER_HOST", "PYSTEPS_GLUSTER_VOLUME")
    app = make_app(tmp_path)
    code = deep_merge(bed.base_overrides(), {"mode": "code"})
    out, _ = bed.deploy_with(app, code, spec="deploy-code.yaml")
    assert out.returncode == 0, out.stderr
    out, _ = bed.deploy_with(app, bed.base_overrides())  # an image-mode app beside it
    assert out.returncode == 0, out.stderr
    tree = volume_tree(bed, bed.namespace)
    assert any(p.startswith("hello-code/releases/") for p in tree), tree
    objects = cluster_state(bed, bed.namespace)

    # No app named like the namespace: once this wiped <namespace>/, every app's code.
    for missing in (bed.namespace, "ghost"):
        out = bed.cli("destroy", missing, "-n", bed.namespace, "--purge-code", "--yes")
        assert out.returncode == 3, out.stderr
        assert "no such app" in out.stderr
        assert volume_tree(bed, bed.namespace) == tree
        assert cluster_state(bed, bed.namespace) == objects

    # An image-mode app: its objects go, no code directory is touched.
    out = bed.cli("destroy", "hello", "-n", bed.namespace, "--purge-code", "--yes")
    assert out.returncode == 0, out.stderr
    assert "no code directory purged" in out.stderr
    assert volume_tree(bed, bed.namespace) == tree
    assert bed.kubectl_or_empty("-n", bed.namespace, "get", "deploy", "hello") == ""

    # The code-mode app's own directory, the one its workload records, goes with it.
    out = bed.cli("destroy", "hello-code", "-n", bed.namespace, "--purge-code", "--yes")
    assert out.returncode == 0, out.stderr
    assert f"code directory {bed.namespace}/hello-code" in out.stderr
    assert not any(p.startswith("hello-code") for p in volume_tree(bed, bed.namespace))


# 3. A planted secret, searched for everywhere --------------------------------------------------


def test_a_planted_secret_is_in_the_secret_and_nowhere_else(bed, tmp_path):
    app = make_app(tmp_path)
    app_secret = "ei-" + secrets.token_hex(12)  # its variable's name does not say "secret"
    registry_password = bed.env["PYSTEPS_REGISTRY_PASSWORD"]
    recipient = f"ei-{uuid.uuid4().hex[:8]}@example.com"
    overrides = deep_merge(
        bed.base_overrides(),
        {"env": {"APP_CRED": {"secret_env": "EI_APP_CRED"}}, "mail": {"to": [recipient]}},
    )
    # The build URL carries both: a careless Jenkins setup, the leak this test would catch.
    build_url = f"https://ci:{app_secret}@ci.example.test/job/{registry_password}/{app_secret}/"
    out, result = bed.deploy_with(
        app,
        overrides,
        "--build-url",
        build_url,
        "--output",
        "json",
        extra_env={"EI_APP_CRED": app_secret},
    )
    assert out.returncode == 0, out.stderr
    stored = json.loads(
        bed.kubectl("-n", bed.namespace, "get", "secret", "hello-pysteps-env", "-o", "json")
    )
    assert base64.b64decode(stored["data"]["APP_CRED"]).decode() == app_secret

    deployment = bed.kubectl("-n", bed.namespace, "get", "deployment", "hello", "-o", "json")
    env = json.loads(deployment)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [
        {
            "name": "APP_CRED",
            "valueFrom": {"secretKeyRef": {"name": "hello-pysteps-env", "key": "APP_CRED"}},
        }
    ]
    mails = wait_for_mail(bed, recipient)
    for secret in (app_secret, registry_password):
        for where, text in (
            ("stdout", out.stdout),
            ("stderr", out.stderr),
            ("result", json.dumps(result)),
            ("mail", "\n".join(mails)),
            ("deployment", deployment),
        ):
            assert secret not in text, f"{where} shows a secret"
    assert "********" in "\n".join(mails)  # the build line was there, masked


def wait_for_mail(bed: Bed, recipient: str, timeout: float = 30) -> list[str]:
    store = Path(bed.env["TESTBED_SMTP_STORE"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for path in store.glob("*.eml"):
            if path.is_file():
                raw = path.read_bytes()
                if recipient.encode() in raw:
                    msg = email.message_from_bytes(raw)
                    body = msg.get_payload(decode=True) if not msg.is_multipart() else b""
                    found.append(raw.decode(errors="replace") + (body or b"").decode())
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"no mail to {recipient} in {store}")


# 4. A lock stolen mid-deploy ----------------------------------------------------------------------


def test_a_lock_stolen_mid_deploy_stops_the_deploy_before_its_next_write(bed, tmp_path):
    app = make_app(tmp_path)
    GitRepo(app).write("www/index.html", f"<h1>{uuid.uuid4().hex}</h1>\n")  # a fresh build
    GitRepo(app).commit("fresh")
    tag = uuid.uuid4().hex[:8]
    over = tmp_path / f"o-{tag}.json"
    over.write_text(json.dumps(bed.base_overrides()))
    result = tmp_path / f"r-{tag}.json"
    env = {**os.environ, **bed.env}
    deploy = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pysteps",
            "deploy",
            "--repo",
            str(app),
            "--overrides",
            str(over),
            "--result",
            str(result),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    # As soon as the deploy holds its lease (it is building the image), someone takes it.
    deadline = time.monotonic() + 60
    while True:
        raw = bed.kubectl_or_empty(
            "-n", bed.namespace, "get", "lease", "pysteps-deploy-hello", "-o", "json"
        )
        if raw.strip():
            break
        assert time.monotonic() < deadline, "the deploy never took its lock"
        time.sleep(0.05)
    lease = json.loads(raw)
    lease["spec"]["holderIdentity"] = "ei-thief"
    lease["metadata"] = {k: lease["metadata"][k] for k in ("name", "namespace", "resourceVersion")}
    stolen = tmp_path / "stolen.json"
    stolen.write_text(json.dumps(lease))
    bed.kubectl("replace", "-f", str(stolen))
    _, stderr = deploy.communicate(timeout=300)
    assert deploy.returncode == 3, stderr
    assert "taken by ei-thief" in stderr
    data = json.loads(result.read_text())
    assert data["exit_code"] == 3 and data["done"] == [a for a in data["done"] if "build" in a]
    assert bed.kubectl_or_empty("-n", bed.namespace, "get", "deploy", "hello") == ""
    holder = json.loads(
        bed.kubectl("-n", bed.namespace, "get", "lease", "pysteps-deploy-hello", "-o", "json")
    )["spec"]["holderIdentity"]
    assert holder == "ei-thief"  # the deploy did not delete a lease that is not its own
