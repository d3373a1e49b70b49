"""`make demo`: the main job on the local platform, end to end, both release modes.

1. shows the test bed's services;
2. image mode: builds examples/hello's Dockerfile, pushes it with login, deploys it by digest;
3. deploys the same commit again: an empty plan;
4. code mode: copies the code to the GlusterFS volume and deploys the runtime image;
5. changes one file and deploys again: an incremental sync and a rolling restart;
6. lists the apps, shows one and its deploy history, where the mails are stored, and one
   mail's subject and text part;
7. asks nginx for each app by its domain and prints the app's own answer.

Both apps run on the test bed's real node (kubelet + containerd): the spec's `node_selector`
and `tolerations` put them there, so the page comes from a process that really runs.
"""

from __future__ import annotations

import email
import email.policy
import http.client
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
NAMESPACE = "demo"


def load_env() -> dict[str, str]:
    """The test bed's endpoints ($TESTBED_DIR/env, else .testbed/env)."""
    from pysteps.testbed_env import read_testbed_env

    return read_testbed_env()


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def sh(*cmd: str, env: dict[str, str] | None = None, check: bool = True) -> int:
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    rc = subprocess.run(list(cmd), env={**os.environ, **(env or {})}, check=False).returncode
    if check and rc != 0:
        raise SystemExit(f"demo: {cmd[0]} {cmd[1] if len(cmd) > 1 else ''} failed with exit {rc}")
    return rc


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "demo",
        "GIT_AUTHOR_EMAIL": "demo@example.com",
        "GIT_COMMITTER_NAME": "demo",
        "GIT_COMMITTER_EMAIL": "demo@example.com",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    ).stdout.strip()


def fetch_through_nginx(nginx_url: str, domain: str, timeout: float = 60) -> str:
    """GET / from nginx with DOMAIN as the Host header; waits for the route to arrive."""
    parts = urlsplit(nginx_url)
    deadline = time.monotonic() + timeout
    answer = "(no answer)"
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=3)
        try:
            conn.request("GET", "/", headers={"Host": domain})
            resp = conn.getresponse()
            answer = f"HTTP {resp.status}\n{resp.read().decode(errors='replace')}"
            if resp.status == 200:
                break
        except OSError as exc:
            answer = f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()
        time.sleep(0.5)
    return answer


def main() -> None:
    env = load_env()
    pysteps = [sys.executable, "-m", "pysteps"]
    kubectl = [env["TESTBED_KUBECTL"], "--kubeconfig", env["KUBECONFIG"]]

    step("The local platform")
    sh(str(REPO / "testbed" / "testbed.sh"), "status")

    work = Path(tempfile.mkdtemp(prefix="pysteps-demo-"))
    app = work / "hello"
    shutil.copytree(REPO / "examples" / "hello", app)
    git(app, "init", "-q", "-b", "main")
    git(app, "add", "-A")
    git(app, "commit", "-q", "-m", "hello, version 1")
    if subprocess.run([*kubectl, "get", "namespace", NAMESPACE], capture_output=True).returncode:
        sh(*kubectl, "create", "namespace", NAMESPACE)
    mails_before = set(Path(env["TESTBED_SMTP_STORE"]).glob("*.eml"))
    # The real node is tainted: only apps that ask for it (and tolerate the taint) land there.
    placement = work / "real-node.json"
    placement.write_text(
        json.dumps(
            {
                "node_selector": {env["TESTBED_NODE_LABEL"]: "true"},
                "tolerations": [{"key": env["TESTBED_NODE_TAINT"], "operator": "Exists"}],
                # A domain of the demo's own: other namespaces may hold apps called hello too.
                "domains": ["{name}.ctest.example.com", "{name}-{namespace}.apps.example.com"],
            }
        )
    )

    image_sets = [
        "--overrides", str(placement),
        "--set", f"image={env['PYSTEPS_REGISTRY']}/demo/hello",
        "--set", f"build.args.BASE={env['TESTBED_BASE_IMAGE']}",
    ]
    step("Image mode: build, push, deploy by digest")
    sh(*pysteps, "deploy", "--repo", str(app), *image_sets, env=env)

    step("The same commit again: nothing to do")
    sh(*pysteps, "deploy", "--repo", str(app), *image_sets, "--dry-run", env=env)

    code_args = ["-f", str(app / "deploy-code.yaml"), "--overrides", str(placement)]
    code_args += ["--set", f"runtime_image={env['TESTBED_RUNTIME_IMAGE']}"]
    step("Code mode: copy the code to the volume, deploy the runtime image")
    sh(*pysteps, "deploy", "--repo", str(app), *code_args, env=env)

    step("Code mode: change one file, deploy again (incremental sync, rolling restart)")
    (app / "www" / "index.html").write_text("<h1>hello from pysteps</h1>\n<p>version 2</p>\n")
    git(app, "commit", "-q", "-am", "hello, version 2")
    sh(*pysteps, "deploy", "--repo", str(app), *code_args, env=env)

    step("What runs now")
    sh(*pysteps, "list", "-n", NAMESPACE, env=env)
    sh(*pysteps, "status", "hello-code", "-n", NAMESPACE, env=env)

    step("Every deploy attempt of hello-code, failed ones included (pysteps history)")
    sh(*pysteps, "history", "hello-code", "-n", NAMESPACE, env=env)

    step("The route in etcd, kept on the nodes by routes sync")
    sh(*pysteps, "routes", "show", "hello", "-n", NAMESPACE, env=env)
    sh(*pysteps, "routes", "sync", "-n", NAMESPACE, env=env)

    step("Mail on-call received")
    store = Path(env["TESTBED_SMTP_STORE"])
    print(f"  the demo's mails are stored as .eml files in {store}")
    mails = sorted(set(store.glob("*.eml")) - mails_before)
    for path in mails:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        print(f"  {path.name}  {msg['To']}: {msg['Subject']}")
    if mails:
        last = email.message_from_bytes(mails[-1].read_bytes(), policy=email.policy.default)
        text = last.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
        print(f"\n  Subject: {last['Subject']}\n")
        print(textwrap.indent(text.get_content() if text else "(no text part)", "  | "))
    shutil.rmtree(work, ignore_errors=True)

    step("The apps answer at their domains (through nginx, from the real node)")
    for app_name in ("hello", "hello-code"):
        domain = f"{app_name}-{NAMESPACE}.apps.example.com"
        print(f"$ curl -H 'Host: {domain}' {env['PYSTEPS_NGINX_URL']}/", flush=True)
        print(fetch_through_nginx(env["PYSTEPS_NGINX_URL"], domain), flush=True)
    print("\ndemo done: both apps run in namespace 'demo' (pysteps destroy NAME -n demo --yes)")


if __name__ == "__main__":
    main()
