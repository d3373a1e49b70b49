"""The deploy mail against the test bed's real SMTP server, on each transport.

The deploy engine runs here on in-memory fakes of the cluster and the image builder (so a
sequence of good and failing deploys takes seconds), with a real git history and the real
SMTP server; test_mail_e2e.py runs a sequence through the real control plane.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from pysteps.clients.mail import MailMessage, SmtpSettings, YagmailNotifier
from pysteps.console import Console
from pysteps.deploy import DeployEngine, DeployOptions, DeployResult, Services
from pysteps.errors import PystepsError, RolloutFailed, ServiceError
from pysteps.history import DeployHistory
from pysteps.manifests import Release
from pysteps.masking import MASK
from pysteps.spec import build_spec
from tests.conftest import REPO, require
from tests.gitrepo import GitRepo
from tests.integration.mailstore import everything, messages_to, parts, wait_for
from tests.unit.fakes import FakeCode, FakeImages, FakeKube, MemoryRouteRegistry
from tests.unit.test_mail_report import visible_text, words

pytestmark = pytest.mark.integration

GOOD = "127.0.0.1:25000/team/shop"
NEVER_READY = "127.0.0.1:25000/team/never-ready"


class Smtp:
    def __init__(self, env: dict[str, str]) -> None:
        (self.host, plain, starttls, ssl_port, self.ca, self.user, self.password, self.store) = (
            require(
                env,
                "PYSTEPS_SMTP_HOST",
                "PYSTEPS_SMTP_PORT",
                "TESTBED_SMTP_STARTTLS_PORT",
                "TESTBED_SMTP_SSL_PORT",
                "TESTBED_SMTP_CA_FILE",
                "TESTBED_SMTP_USERNAME",
                "TESTBED_SMTP_PASSWORD",
                "TESTBED_SMTP_STORE",
            )
        )
        self.ports = {"none": int(plain), "starttls": int(starttls), "ssl": int(ssl_port)}

    def settings(self, tls: str = "none", login: bool = False, **extra) -> SmtpSettings:
        values = dict(
            host=self.host,
            port=self.ports[tls],
            tls=tls,
            username=self.user if login else None,
            password=self.password if login else None,
            ca_file=self.ca,
            timeout=15.0,
            sender="pysteps@ci.test",
        )
        values.update(extra)
        return SmtpSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def smtp(testbed) -> Smtp:
    return Smtp(dict(testbed))


def token() -> str:
    return "ml-" + uuid.uuid4().hex[:10]


@pytest.mark.parametrize(
    ("tls", "login"), [("none", False), ("starttls", False), ("starttls", True), ("ssl", True)]
)
def test_mail_arrives_with_parts_headers_and_recipients(smtp, tls, login):
    tok = token()
    mail = MailMessage(
        to=(f"{tok}-a@ci.test", f"{tok}-b@ci.test"),
        cc=(f"{tok}-c@ci.test",),
        subject=f"[pysteps] ok: team-a/{tok} at 0123456789ab",
        body=f"plain {tok}\n",
        html=f"<p>html {tok}</p>",
    )
    YagmailNotifier(smtp.settings(tls, login)).send(mail)
    (msg,) = wait_for(smtp.store, tok)
    # (a plain listener started before the header existed does not write it)
    assert msg["X-Testbed-Transport"] in ({"ssl", "starttls"} & {tls} or {"plain", None})
    assert msg["X-Testbed-Auth-User"] == (smtp.user if login else None)
    assert msg["Subject"] == mail.subject
    assert msg["From"] == "pysteps@ci.test"
    assert msg["To"] == f"{tok}-a@ci.test, {tok}-b@ci.test"
    assert msg["Cc"] == f"{tok}-c@ci.test"
    assert sorted(msg["X-Testbed-Rcpt-To"].split(", ")) == sorted([*mail.to, *mail.cc])
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert parts(msg) == {"text/plain": mail.body, "text/html": mail.html + "\n"}


def test_a_wrong_password_is_refused(smtp):
    tok = token()
    notifier = YagmailNotifier(smtp.settings("ssl", True, password="not-the-password"))
    with pytest.raises(ServiceError, match="SMTPAuthenticationError"):
        notifier.send(MailMessage((f"{tok}@ci.test",), (), "s", "b"))
    assert messages_to(smtp.store, tok) == []


def test_a_certificate_from_another_ca_is_refused(smtp):
    tok = token()
    notifier = YagmailNotifier(smtp.settings("starttls", ca_file=None))  # the system CAs
    with pytest.raises(ServiceError, match="SSL"):
        notifier.send(MailMessage((f"{tok}@ci.test",), (), "s", "b"))
    assert messages_to(smtp.store, tok) == []


def test_the_send_is_bounded_by_its_timeout():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never greets
    try:
        settings = SmtpSettings("127.0.0.1", silent.getsockname()[1], timeout=2.0)
        started = time.monotonic()
        with pytest.raises(ServiceError, match="cannot send mail"):
            YagmailNotifier(settings).send(MailMessage(("x@ci.test",), (), "s", "b"))
        assert time.monotonic() - started < 4
    finally:
        silent.close()


_FAKE_KEYRING = """
import os
from pathlib import Path
_log = Path(os.environ["KEYRING_LOG"])
_log.write_text(_log.read_text() + "imported\\n" if _log.exists() else "imported\\n")
def get_password(service, user):
    _log.write_text(_log.read_text() + f"get_password {service} {user}\\n")
    return None
def set_password(service, user, password):
    _log.write_text(_log.read_text() + "set_password\\n")
"""

_SEND = """
import sys
from pysteps.clients.mail import MailMessage, YagmailNotifier
from pysteps.errors import ServiceError
try:
    YagmailNotifier.from_env().send(MailMessage((sys.argv[1],), (), "s", "b"))
    print("sent")
except ServiceError as exc:
    print("warning:", exc)
"""

_YAGMAIL_ALONE = """
import sys, yagmail
yagmail.SMTP(user=sys.argv[1], host=sys.argv[2], port=int(sys.argv[3]), smtp_ssl=False,
             smtp_starttls=False).login()
"""


def test_no_keyring_and_no_prompt_without_a_password(smtp, tmp_path):
    """CI has no keyring and no standard input: never consult the one, never read the other."""
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "keyring.py").write_text(_FAKE_KEYRING)
    log = tmp_path / "keyring.log"
    env = {
        **os.environ,
        "PYTHONPATH": f"{fake}{os.pathsep}{REPO}",
        "KEYRING_LOG": str(log),
        "PYSTEPS_SMTP_HOST": smtp.host,
        "PYSTEPS_SMTP_PORT": str(smtp.ports["starttls"]),
        "PYSTEPS_SMTP_TLS": "starttls",
        "PYSTEPS_SMTP_CA_FILE": smtp.ca,
    }
    env.pop("PYSTEPS_SMTP_PASSWORD", None)

    def run(code: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            env={**env, **extra},
            stdin=subprocess.DEVNULL,  # as under Jenkins: reading it gives EOF at once
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    # The control: yagmail by itself, given no password, does go to the keyring.
    alone = run(_YAGMAIL_ALONE, "someone@ci.test", smtp.host, str(smtp.ports["none"]))
    assert "get_password yagmail someone@ci.test" in log.read_text(), alone.stderr
    log.unlink()

    tok = token()
    # A username without a password: a warning, no keyring, no prompt.
    out = run(_SEND, f"{tok}@ci.test", PYSTEPS_SMTP_USERNAME=smtp.user)
    assert out.returncode == 0, out.stderr
    assert "warning:" in out.stdout and "PYSTEPS_SMTP_PASSWORD" in out.stdout
    assert "Password" not in out.stdout + out.stderr
    # No login at all: sent, and still no keyring.
    out = run(_SEND, f"{tok}@ci.test")
    assert out.stdout.strip() == "sent", out.stdout + out.stderr
    # Username and password from the environment: sent with login.
    out = run(
        _SEND,
        f"{tok}-login@ci.test",
        PYSTEPS_SMTP_USERNAME=smtp.user,
        PYSTEPS_SMTP_PASSWORD=smtp.password,
    )
    assert out.stdout.strip() == "sent", out.stdout + out.stderr
    assert "get_password" not in (log.read_text() if log.exists() else "")
    login_mail = wait_for(smtp.store, f"{tok}-login")[0]
    assert login_mail["X-Testbed-Auth-User"] == smtp.user


# The engine with fakes of the cluster, real git and the real SMTP server -----------------


class World:
    def __init__(self, tmp: Path, settings: SmtpSettings) -> None:
        self.kube = FakeKube()
        self.images = FakeImages()
        self.out = io.StringIO()
        self.console = Console(stream=self.out)
        self.services = Services(
            self.kube,
            MemoryRouteRegistry(),
            YagmailNotifier(settings),
            lambda: self.images,
            FakeCode,
        )
        self.repo = GitRepo(tmp / "app")

    def commit(self, message: str, author: str = "Alice Example <alice@ci.test>") -> str:
        self.repo.write("page.txt", message + uuid.uuid4().hex)
        self.repo.git("add", "-A")
        self.repo.git("commit", "-q", f"--author={author}", "-m", message)
        return self.repo.git("rev-parse", "HEAD")

    def deploy(self, commit: str, name: str, mail: dict, **fields) -> DeployResult:
        spec = build_spec(
            {"name": name, "namespace": "team-a", "image": GOOD, "mail": mail, **fields}
        ).with_secrets(os.environ)  # as `pysteps deploy` does
        engine = DeployEngine(self.services, self.console)
        options = DeployOptions(repo=self.repo.path, poll=0)
        release = Release(commit, f"https://ci.example.test/job/{name}/7/")
        try:
            return engine.deploy(spec, release, options)
        except PystepsError:
            assert engine.last_result is not None
            return engine.last_result


def test_each_trigger_over_ok_fail_fail_ok(smtp, tmp_path):
    world = World(tmp_path, smtp.settings())
    tok = token()
    triggers = ["always", "success", "failure", "first-failure", "still-failing", "fixed"]
    mail = {
        "to": [f"{tok}-always@ci.test"],
        "lists": [{"to": [f"{tok}-{t}@ci.test"], "on": [t]} for t in triggers[1:]],
    }
    sequence = [("ok", GOOD), ("failed", NEVER_READY), ("failed", NEVER_READY), ("ok", GOOD)]
    for n, (expected, image) in enumerate(sequence):
        result = world.deploy(world.commit(f"change {n}"), "shop", mail, image=image)
        assert result.ok == (expected == "ok"), result.error
        assert result.mail_error is None
    received = {t: len(messages_to(smtp.store, f"{tok}-{t}@")) for t in triggers}
    wait_for(smtp.store, f"{tok}-always@", 4)
    received = {t: len(messages_to(smtp.store, f"{tok}-{t}@")) for t in triggers}
    assert received == {
        "always": 4,
        "success": 2,
        "failure": 2,
        "first-failure": 1,
        "still-failing": 1,
        "fixed": 1,
    }
    for msg in messages_to(smtp.store, f"{tok}-always@"):
        # what arrived: the text and HTML parts say the same things
        text, html = parts(msg)["text/plain"], parts(msg)["text/html"]
        assert words(text) == words(visible_text(html)), words(text) ^ words(visible_text(html))
    subjects = [m["Subject"] for m in messages_to(smtp.store, f"{tok}-always@")]
    assert subjects[0].startswith("[pysteps] ok: team-a/shop at ")
    assert subjects[1].startswith("[pysteps] FAILED: team-a/shop at ")
    assert subjects[2].startswith("[pysteps] FAILED (still failing): team-a/shop at ")
    assert subjects[3].startswith("[pysteps] ok (fixed): team-a/shop at ")
    # the history the triggers read
    history = DeployHistory(world.kube, "team-a", "shop").read()
    assert [(a.result, a.rolled_back) for a in history] == [
        ("ok", False),
        ("failed", True),
        ("failed", True),
        ("ok", False),
    ]


def test_the_mail_lists_the_commits_since_the_live_one_with_authors(smtp, tmp_path):
    world = World(tmp_path, smtp.settings("ssl", login=True))
    tok = token()
    mail = {"to": [f"{tok}@ci.test"]}
    first = world.commit("first")
    world.deploy(first, "shop", mail)
    c2 = world.commit("Add the basket", "Bob Builder <bob@ci.test>")
    c3 = world.commit("Fix the basket total", "Carol Coder <carol@ci.test>")
    world.deploy(c3, "shop", mail)
    world.commit("not deployed yet")
    msgs = wait_for(smtp.store, tok, 2)
    text = parts(msgs[1])["text/plain"]
    section = text.split("== What changed ==")[1]
    lines = [ln for ln in section.splitlines() if ln.startswith("- ")]
    assert lines == [
        f"- {c3[:12]} Fix the basket total (Carol Coder <carol@ci.test>, {lines[0][-11:-1]})",
        f"- {c2[:12]} Add the basket (Bob Builder <bob@ci.test>, {lines[1][-11:-1]})",
    ]
    assert f"Since: {first}" in section
    html = parts(msgs[1])["text/html"]
    assert "Carol Coder &lt;carol@ci.test&gt;" in html and "not deployed yet" not in html
    # going back to the first commit: the mail says which commits are no longer deployed
    world.deploy(first, "shop", mail)
    back = parts(wait_for(smtp.store, tok, 3)[2])["text/plain"]
    assert "Going back:" in back and c3[:12] in back and c2[:12] in back


def test_secrets_from_the_environment_and_the_spec_appear_in_no_mail(smtp, tmp_path, monkeypatch):
    env_secret = "envS3cret-" + uuid.uuid4().hex[:8]
    spec_secret = "specS3cret-" + uuid.uuid4().hex[:8]
    monkeypatch.setenv("REGISTRY_PASSWORD", env_secret)
    # A secret env value of the spec is named there and read from the deploy's environment.
    monkeypatch.setenv("CI_SHOP_DB", spec_secret)
    world = World(tmp_path, smtp.settings())
    tok = token()
    mail = {"to": [f"{tok}@ci.test"]}
    env = {"DB_PASSWORD": {"secret_env": "CI_SHOP_DB"}}
    # Both secrets are in commit subjects, which the mail lists, and in a failing deploy's
    # build link: unmasked, they would be in the mail.
    world.deploy(world.commit("start"), "shop", mail, env=env)
    leaky = world.commit(f"rotate to {env_secret} and {spec_secret}")
    result = world.deploy(leaky, "shop", mail, env=env, image=NEVER_READY)
    assert not result.ok
    msgs = wait_for(smtp.store, tok, 2)
    for msg in msgs:
        text = everything(msg)
        assert env_secret not in text and spec_secret not in text
    assert f"rotate to {MASK} and {MASK}" in parts(msgs[1])["text/plain"]
    assert f"rotate to {MASK} and {MASK}" in parts(msgs[1])["text/html"]
    history = DeployHistory(world.kube, "team-a", "shop").read()
    assert all(env_secret not in str(a) and spec_secret not in str(a) for a in history)


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


def test_mail_server_down_is_a_warning_and_the_deploy_succeeds(smtp, tmp_path):
    from pysteps.commands.deploy import write_result

    world = World(tmp_path, SmtpSettings("127.0.0.1", closed_port(), timeout=5))
    result = world.deploy(world.commit("one"), "shop", {"to": ["oncall@ci.test"]})
    assert result.ok and result.exit_code == 0
    assert result.mail_error and "cannot send mail through 127.0.0.1" in result.mail_error
    assert "warning: mail not sent: cannot send mail" in world.out.getvalue()
    out = tmp_path / "result.json"
    write_result(out, result, None)
    assert '"mail_error": "cannot send mail through 127.0.0.1' in out.read_text()
    # the deploy went through and is recorded as good
    assert DeployHistory(world.kube, "team-a", "shop").read()[-1].result == "ok"


def test_a_required_mail_that_cannot_be_sent_fails_the_deploy(smtp, tmp_path):
    world = World(tmp_path, SmtpSettings("127.0.0.1", closed_port(), timeout=5))
    spec = build_spec(
        {
            "name": "shop",
            "namespace": "team-a",
            "image": GOOD,
            "mail": {"to": ["oncall@ci.test"], "required": True},
        }
    )
    engine = DeployEngine(world.services, world.console)
    with pytest.raises(ServiceError, match="mail was not sent") as err:
        engine.deploy(spec, Release(world.commit("one")), DeployOptions(repo=world.repo.path))
    assert err.value.exit_code == 4
    assert engine.last_result is not None and engine.last_result.exit_code == 4


def test_a_failed_deploy_mail_is_not_replaced_by_a_mail_error(smtp, tmp_path):
    world = World(tmp_path, SmtpSettings("127.0.0.1", closed_port(), timeout=5))
    world.deploy(world.commit("one"), "shop", {"to": ["o@ci.test"]})
    spec = build_spec(
        {
            "name": "shop",
            "namespace": "team-a",
            "image": NEVER_READY,
            "mail": {"to": ["o@ci.test"], "required": True},
        }
    )
    with pytest.raises(RolloutFailed):
        DeployEngine(world.services, world.console).deploy(
            spec, Release(world.commit("two")), DeployOptions(repo=world.repo.path, poll=0)
        )


def test_yagmail_sends_with_stdin_closed_from_the_cli_module(smtp, tmp_path):
    """The notifier the CLI builds (environment.make_services) sends with no stdin at all."""
    tok = token()
    code = textwrap.dedent(
        """
        import argparse, sys
        from pysteps.clients.mail import MailMessage
        from pysteps.console import Console
        from pysteps.environment import make_services
        sys.stdin.close()
        args = argparse.Namespace(kubeconfig=None, context=None)
        import pysteps.clients.kube as k
        k.KubeClient = lambda *a: None
        make_services(args, Console()).notifier.send(MailMessage((sys.argv[1],), (), "s", "b"))
        print("sent")
        """
    )
    env = {
        **os.environ,
        "PYSTEPS_SMTP_HOST": smtp.host,
        "PYSTEPS_SMTP_PORT": str(smtp.ports["ssl"]),
        "PYSTEPS_SMTP_TLS": "ssl",
        "PYSTEPS_SMTP_CA_FILE": smtp.ca,
        "PYSTEPS_SMTP_USERNAME": smtp.user,
        "PYSTEPS_SMTP_PASSWORD": smtp.password,
    }
    out = subprocess.run(
        [sys.executable, "-c", code, f"{tok}@ci.test"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.stdout.strip() == "sent", out.stderr
    assert wait_for(smtp.store, tok)[0]["X-Testbed-Transport"] == "ssl"
