"""The command line: instant help, exit codes from one table, one-line errors, no prompts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pysteps.cli import main


def test_help_exits_zero_and_names_commands():
    out = subprocess.run(
        [sys.executable, "-m", "pysteps", "--help"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0
    for command in ("deploy", "list", "status", "rollback", "destroy", "create"):
        assert command in out.stdout


def test_help_imports_no_heavy_modules():
    code = "import sys, pysteps.cli as c; c.build_parser(); print(sorted(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = out.stdout
    for heavy in ("pydantic", "pykube", "requests", "docker", "yaml"):
        assert f"'{heavy}'" not in loaded, heavy


def test_bad_spec_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "deploy.yaml").write_text("name: Not_Valid\nimage: r/a\n")
    code = main(["deploy", "--repo", str(tmp_path), "--commit", "a" * 40, "--dry-run"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [err[0]] and "spec field 'name'" in err[0]


def test_bad_input_writes_a_result_for_jenkins(tmp_path):
    (tmp_path / "deploy.yaml").write_text("name: a\n")
    result = tmp_path / "result.json"
    code = main(["deploy", "--repo", str(tmp_path), "--commit", "a" * 40, "--result", str(result)])
    data = json.loads(result.read_text())
    assert code == 2
    assert data["ok"] is False and data["exit_code"] == 2
    assert "image" in data["error"]


def test_destroy_without_terminal_refuses_instead_of_prompting(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", open("/dev/null"))  # noqa: SIM115
    assert main(["destroy", "hello", "-n", "team-a"]) == 2
    assert "pass --yes" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["destroy", "status", "rollback"])
@pytest.mark.parametrize("bad", ["../x", "Hello", "a;rm", "hello\n"])
def test_app_names_are_validated_before_any_request(command, bad, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, bad, "--yes"] if command == "destroy" else [command, bad])
    assert exit_.value.code == 2
    assert "DNS-1123" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([command, "ok", "-n", bad])


def test_commit_must_be_hex(tmp_path, capsys):
    (tmp_path / "deploy.yaml").write_text("name: a\nimage: r/a\n")
    assert main(["deploy", "--repo", str(tmp_path), "--commit", "$(reboot)", "--dry-run"]) == 2
    assert "--commit" in capsys.readouterr().err


def test_sigterm_releases_the_lock_and_writes_the_result(tmp_path, monkeypatch):
    """An aborted Jenkins build: the deploy unwinds, the lease is gone, exit 130."""
    import os
    import signal

    from pysteps.clients.mail import MemoryNotifier
    from pysteps.commands import deploy as deploy_command
    from pysteps.deploy import Services
    from tests.unit.fakes import FakeCode, FakeImages, FakeKube, MemoryRouteRegistry

    kube = FakeKube()
    images = FakeImages()

    def build_then_get_killed(**kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not interrupt the deploy")

    monkeypatch.setattr(images, "ensure_commit_image", build_then_get_killed)
    services = Services(kube, MemoryRouteRegistry(), MemoryNotifier(), lambda: images, FakeCode)
    monkeypatch.setattr(deploy_command, "make_services", lambda args, console: services)
    (tmp_path / "deploy.yaml").write_text("name: hello\nnamespace: team-a\nimage: r/t/hello\n")
    result = tmp_path / "result.json"
    previous = signal.getsignal(signal.SIGTERM)
    try:
        code = main(
            ["deploy", "--repo", str(tmp_path), "--commit", "a" * 40, "--result", str(result)]
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    data = json.loads(result.read_text())
    assert code == 130
    assert data["exit_code"] == 130 and "interrupted" in data["error"]
    assert kube.get("Lease", "team-a", "pysteps-deploy-hello") is None
    assert data["failed"] == "build r/t/hello:" + "a" * 40 + " from ./Dockerfile and push it"


class _BuggyEngine:
    """Stands in for the deploy engine with a bug: an exception pysteps never expected."""

    last_result = None

    def __init__(self, *args: object) -> None:
        pass

    def deploy(self, *args: object) -> None:
        raise ZeroDivisionError("division by zero in a rollout step")


@pytest.mark.parametrize("verbose", [False, True])
def test_an_unexpected_exception_is_exit_99_with_a_result_file(
    tmp_path, capsys, monkeypatch, verbose
):
    import pysteps.commands.deploy as deploy_command
    import pysteps.deploy

    monkeypatch.setattr(pysteps.deploy, "DeployEngine", _BuggyEngine)
    monkeypatch.setattr(deploy_command, "make_services", lambda args, console: None)
    (tmp_path / "deploy.yaml").write_text("name: a\nimage: r/a\n")
    result = tmp_path / "result.json"
    argv = ["deploy", "--repo", str(tmp_path), "--commit", "a" * 40, "--result", str(result)]
    code = main((["-v"] if verbose else []) + argv)
    err = capsys.readouterr().err
    assert code == 99
    data = json.loads(result.read_text())
    assert data["ok"] is False and data["exit_code"] == 99
    assert "unexpected ZeroDivisionError" in data["error"]
    assert ("Traceback (most recent call last)" in err) is verbose
    assert "pysteps deploy: unexpected ZeroDivisionError" in err


def test_history_is_a_command_and_checks_its_name(capsys):
    from pysteps.cli import COMMANDS

    assert "history" in COMMANDS
    with pytest.raises(SystemExit) as exit_:
        main(["history", "Bad_Name"])
    assert exit_.value.code == 2
