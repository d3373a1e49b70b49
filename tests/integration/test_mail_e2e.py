"""Deploy mails and history through the real engine on the test bed: the CLI, the control plane
(kwok fails pods on TESTBED_SIMULATE=never-ready), the registry, Docker, and the SMTP server
over STARTTLS with a login. Runs as the namespace-scoped user of the test bed."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from tests.conftest import require
from tests.integration.mailstore import messages_to, parts, wait_for
from tests.integration.test_deploy_e2e import Bed, change_page, make_app
from tests.integration.test_mail import closed_port
from tests.integration.test_mail_render import artifacts_dir, render

pytestmark = pytest.mark.integration

TRIGGERS = ["always", "success", "failure", "first-failure", "still-failing", "fixed"]


def test_a_sequence_ok_fail_fail_ok_mails_by_trigger_and_is_in_the_history(testbed, tmp_path):
    restricted, namespace, store = require(
        testbed, "PYSTEPS_KUBECONFIG_RESTRICTED", "TESTBED_KUBE_NAMESPACE", "TESTBED_SMTP_STORE"
    )
    env = dict(testbed)
    env.update(
        PYSTEPS_SMTP_TLS="starttls",
        PYSTEPS_SMTP_PORT=env["TESTBED_SMTP_STARTTLS_PORT"],
        PYSTEPS_SMTP_CA_FILE=env["TESTBED_SMTP_CA_FILE"],
        PYSTEPS_SMTP_USERNAME=env["TESTBED_SMTP_USERNAME"],
        PYSTEPS_SMTP_PASSWORD=env["TESTBED_SMTP_PASSWORD"],
        PYSTEPS_MAIL_FROM="pysteps@ci.test",
    )
    bed = Bed(env, namespace, tmp_path)
    name = f"ml-{uuid.uuid4().hex[:6]}"
    tok = f"{name}-{uuid.uuid4().hex[:4]}"
    overrides = tmp_path / "overrides.json"
    overrides.write_text(
        json.dumps(
            {
                "name": name,
                "namespace": namespace,
                "image": f"{env['PYSTEPS_REGISTRY']}/e2e/hello",
                "build": {"args": {"BASE": env["TESTBED_BASE_IMAGE"]}},
                "rollout": {"progress_deadline_seconds": 10},
                "mail": {
                    "to": [f"{tok}-always@ci.test"],
                    "lists": [{"to": [f"{tok}-{t}@ci.test"], "on": [t]} for t in TRIGGERS[1:]],
                },
            }
        )
    )
    app = make_app(tmp_path)

    def deploy(build: int, *sets: str, expect: int) -> dict:
        result_file = tmp_path / f"result-{build}.json"
        args = ["deploy", "--repo", str(app), "--overrides", str(overrides)]
        args += [
            "--result",
            str(result_file),
            "--build-url",
            f"https://ci.test/job/{name}/{build}/",
        ]
        for s in sets:
            args += ["--set", s]
        out = bed.cli(*args, kubeconfig=restricted)
        assert out.returncode == expect, f"exit {out.returncode}\n{out.stderr}"
        return dict(json.loads(result_file.read_text()))

    try:
        commits = [change_page(app, "one")]
        assert deploy(1, expect=0)["mail_error"] is None
        commits.append(change_page(app, "two"))
        failed = deploy(2, "env.TESTBED_SIMULATE=never-ready", expect=1)
        assert failed["rolled_back"] is True and failed["mail_error"] is None
        commits.append(change_page(app, "three"))
        deploy(3, "env.TESTBED_SIMULATE=never-ready", expect=1)
        commits.append(change_page(app, "four"))
        deploy(4, expect=0)

        wait_for(store, f"{tok}-always@", 4)
        received = {t: len(messages_to(store, f"{tok}-{t}@")) for t in TRIGGERS}
        assert received == {
            "always": 4,
            "success": 2,
            "failure": 2,
            "first-failure": 1,
            "still-failing": 1,
            "fixed": 1,
        }
        mails = messages_to(store, f"{tok}-always@")
        assert all(m["X-Testbed-Auth-User"] == env["TESTBED_SMTP_USERNAME"] for m in mails)
        still = parts(mails[2])["text/plain"]
        assert f"FAILED (still failing): {namespace}/{name} at {commits[2][:12]}" in still
        assert re.search(r"Rollback: +rolled back: the previous revision runs again", still)
        assert re.search(rf"Rerun in Jenkins: +https://ci.test/job/{name}/3/restart", still)
        assert re.search(r"rolling update +[0-9.]+s #+ FAILED", still)  # the timeline
        assert "pysteps deploy --repo" in still and "--set env.TESTBED_SIMULATE" in still
        assert "== Failing pods ==" in still or "== Events ==" in still
        fixed = parts(mails[3])["text/plain"]
        assert re.search(r"Replicas ready: +2/2", fixed)
        # what changed since the live commit (one: the failed ones were rolled back)
        assert re.search(rf"Since: +{commits[0]}", fixed)
        for c in commits[1:]:
            assert c[:12] in fixed

        # The history, read with the namespace-scoped user, newest first.
        out = bed.cli("history", name, "-n", namespace, "--json", kubeconfig=restricted)
        assert out.returncode == 0, out.stderr
        history = json.loads(out.stdout)
        assert [(a["commit"], a["result"], a["rolled_back"]) for a in history] == [
            (commits[3], "ok", False),
            (commits[2], "failed", True),
            (commits[1], "failed", True),
            (commits[0], "ok", False),
        ]
        assert history[0]["build_url"] == f"https://ci.test/job/{name}/4/"
        assert history[0]["image"].startswith(f"{env['PYSTEPS_REGISTRY']}/e2e/hello@sha256:")
        assert "progress deadline exceeded" in history[1]["error"]
        table = bed.cli("history", name, "-n", namespace, kubeconfig=restricted)
        assert table.returncode == 0
        lines = table.stdout.splitlines()
        assert lines[0].startswith("WHEN") and len(lines) == 5
        assert " failed " in lines[2] and " yes " in lines[2]
        cm = bed.kget("configmap", f"pysteps-history-{name}")
        assert cm["metadata"]["labels"]["app.kubernetes.io/name"] == name
        missing = bed.cli("history", f"{name}-none", "-n", namespace, kubeconfig=restricted)
        assert missing.returncode == 3 and "no deploy recorded" in missing.stderr

        # The real failure mail, for a person to look at (text and PNG of the HTML).
        out_dir = artifacts_dir(testbed)
        (out_dir / "deploy-mail-e2e-failure.txt").write_text(
            f"Subject: {mails[2]['Subject']}\n\n{still}"
        )
        html = out_dir / "deploy-mail-e2e-failure.html"
        html.write_text(parts(mails[2])["text/html"])
        if testbed.get("TESTBED_CHROMIUM"):
            render(testbed["TESTBED_CHROMIUM"], html, html.with_suffix(".png"), tmp_path, 1600)

        # The mail server down: a warning in the output and the result, the deploy succeeds.
        down = Bed({**env, "PYSTEPS_SMTP_PORT": str(closed_port())}, namespace, tmp_path)
        change_page(app, "five")
        result_file = tmp_path / "result-down.json"
        out = down.cli(
            "deploy", "--repo", str(app), "--overrides", str(overrides), "--result",
            str(result_file), kubeconfig=restricted,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "warning: mail not sent: cannot send mail through 127.0.0.1" in out.stderr
        down_result = json.loads(result_file.read_text())
        assert down_result["ok"] and "cannot send mail" in down_result["mail_error"]
    finally:
        bed.cli("destroy", name, "-n", namespace, "--yes", kubeconfig=restricted)
        bed.kubectl(
            "-n", namespace, "delete", "configmap", f"pysteps-history-{name}", "--ignore-not-found"
        )
