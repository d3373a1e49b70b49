"""After a deploy: the attempt in the history, and the mail, on in-memory fakes."""

from __future__ import annotations

import pytest

from pysteps.errors import RolloutFailed
from pysteps.history import DeployHistory
from tests.unit.test_deploy import C1, C2, C3, World


@pytest.fixture
def world():
    return World()


def history(world):
    return DeployHistory(world.kube, "team-a", "hello").read()


def test_every_attempt_is_recorded_with_its_outcome(world):
    world.deploy(C1)
    with pytest.raises(RolloutFailed):
        world.deploy(C2, image="127.0.0.1:25000/team/never-ready")
    with pytest.raises(RolloutFailed):
        world.deploy(C3, image="127.0.0.1:25000/team/crash", rollback=False)
    world.deploy(C1)  # replaces the failed revision left by --no-rollback
    world.deploy(C1)  # nothing to do: recorded, as no change
    world.deploy(C1, dry_run=True)  # a dry run is not an attempt
    got = [(a.commit[0], a.result, a.rolled_back, a.changed, a.exit_code) for a in history(world)]
    assert got == [
        ("1", "ok", False, True, 0),
        ("2", "failed", True, True, 1),
        ("3", "failed", False, True, 1),
        ("1", "ok", False, True, 0),
        ("1", "ok", False, False, 0),
    ]
    assert history(world)[0].build_url == "https://ci.example.com/job/1/"
    assert history(world)[0].image and "@sha256:" in history(world)[0].image


def test_triggers_pick_the_recipients(world):
    mail = {
        "to": ["team@example.com"],
        "on": ["failure", "fixed"],
        "lists": [{"to": ["boss@example.com"], "on": ["still-failing"]}],
    }
    world.deploy(C1, mail=mail)
    assert world.mail.sent == []  # a plain success: nobody asked for it
    for commit in (C2, C3):
        with pytest.raises(RolloutFailed):
            world.deploy(commit, mail=mail, image="127.0.0.1:25000/team/never-ready")
    world.deploy("4" * 40, mail=mail)
    assert [(m.to, m.subject.split(":")[0]) for m in world.mail.sent] == [
        (("team@example.com",), "[pysteps] FAILED"),
        (("team@example.com", "boss@example.com"), "[pysteps] FAILED (still failing)"),
        (("team@example.com",), "[pysteps] ok (fixed)"),
    ]


def test_an_unexpected_mail_error_is_a_warning_and_the_deploy_stands(world, monkeypatch):
    def broken(mail):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(world.mail, "send", broken)
    result = world.deploy(C1)
    assert result.ok and result.exit_code == 0
    assert result.mail_error == "RuntimeError: template exploded"
    assert "warning: mail not sent: RuntimeError: template exploded" in world.out.getvalue()


def test_a_history_that_cannot_be_written_is_a_warning(world, monkeypatch):
    real_create = world.kube.create

    def no_configmaps(obj):
        if obj["kind"] == "ConfigMap":
            raise RuntimeError("configmaps are forbidden here")
        return real_create(obj)

    monkeypatch.setattr(world.kube, "create", no_configmaps)
    result = world.deploy(C1)
    assert result.ok
    assert result.history_error == "RuntimeError: configmaps are forbidden here"
    assert len(world.mail.sent) == 1  # the mail still goes out


def test_a_deploy_that_fails_before_planning_is_mailed(world, monkeypatch):
    from pysteps.errors import ServiceError

    def unreachable(*args, **kwargs):
        raise ServiceError("cannot reach the registry")

    monkeypatch.setattr(world.images, "remote_digest", unreachable)
    with pytest.raises(ServiceError):
        world.deploy(C1)
    (mail,) = world.mail.sent
    assert mail.subject.startswith("[pysteps] FAILED: team-a/hello")
    assert "cannot reach the registry" in mail.body
    assert history(world)[-1].result == "failed"


def test_code_mode_mail_and_history_name_the_release(world):
    code = {"mode": "code", "runtime_image": "127.0.0.1:25000/runtime/busybox:1"}
    world.deploy(C1, **code)
    mail = world.mail.sent[-1]
    assert f"Code release:   releases/{C1}" in mail.body
    assert "Image:" not in mail.body
    (attempt,) = history(world)
    assert attempt.code_release == C1 and attempt.image is None
