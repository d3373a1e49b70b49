"""The contract between the Jenkins steps and the CLI, checked with the real CLI.

The steps write the argument list as JSON and run resources/io/pysteps/run-cli.py with constant
shell text; hostile values must arrive as data and be refused by pysteps (exit 2, one line),
with nothing run by a shell and no secret in the output or the result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pysteps
from tests.conftest import REPO

RUN_CLI = REPO / "resources" / "io" / "pysteps" / "run-cli.py"
# The only shell text the steps run for pysteps (vars/pystepsCli.groovy, RUN_CLI).
SHELL = '"$PYSTEPS_PYTHON" "$PYSTEPS_WORKDIR/run-cli.py" "$PYSTEPS_WORKDIR/args.json"'

HOSTILE = [
    "$(touch CANARY)",
    "`touch CANARY`",
    "x'; touch CANARY; curl http://127.0.0.1:9/ '",
    'a"; touch CANARY; "',
    "shop\ntouch CANARY",
    "shop; touch CANARY #",
]


def run_as_the_step(tmp_path: Path, args: list[str], files: dict[str, object]) -> tuple[int, str]:
    """Do what pystepsCli does: work dir, args.json, run-cli.py, constant shell text."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    (work / "run-cli.py").write_text(RUN_CLI.read_text())
    for name, data in files.items():
        (work / name).write_text(json.dumps(data))
    args = [a.replace("@work/", f"{work}/") for a in args]
    (work / "args.json").write_text(json.dumps(args))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYSTEPS_PYTHON": sys.executable,
        "PYSTEPS_WORKDIR": str(work),
        "PYSTEPS_REGISTRY_USERNAME": "robot",
        "PYSTEPS_REGISTRY_PASSWORD": "S3cret-registry-pw",
    }
    out = subprocess.run(
        ["/bin/sh", "-c", SHELL], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    return out.returncode, out.stdout + out.stderr


@pytest.fixture
def app(tmp_path):
    (tmp_path / "deploy.yaml").write_text("name: shop\nimage: 127.0.0.1:25000/team-a/shop\n")
    return tmp_path


def deploy_args():
    return ["deploy", "--repo", ".", "--file", "deploy.yaml", "--overrides", "@work/o.json",
            "--result", "@work/result.json", "--dry-run"]  # fmt: skip


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_app_names_arrive_as_data_and_are_refused(app, value):
    code, output = run_as_the_step(app, deploy_args(), {"o.json": {"name": value}})
    result = json.loads((app / "work" / "result.json").read_text())
    assert code == 2
    assert result["exit_code"] == 2 and result["error"].startswith("spec field 'name':")
    assert not (app / "CANARY").exists()
    assert "S3cret-registry-pw" not in output + json.dumps(result)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"env": {"$(touch CANARY)": "x"}}, "spec field 'env'"),
        ({"namespace": "team-a'; touch CANARY; '"}, "spec field 'namespace'"),
        ({"domains": ["$(touch CANARY).example.com"]}, "spec field 'domains.0'"),
        ({"build": {"context": "../$(touch CANARY)"}}, "spec field 'build.context'"),
    ],
)
def test_hostile_map_keys_and_values_are_refused(app, overrides, field):
    code, output = run_as_the_step(app, deploy_args(), {"o.json": overrides})
    assert code == 2
    assert field in json.loads((app / "work" / "result.json").read_text())["error"]
    assert not (app / "CANARY").exists()
    assert "S3cret-registry-pw" not in output


def test_a_hostile_commit_is_refused(app):
    code, output = run_as_the_step(
        app, [*deploy_args(), "--commit", "main; touch CANARY"], {"o.json": {}}
    )
    assert code == 2
    assert "--commit 'main; touch CANARY': give a hex commit id" in output
    assert not (app / "CANARY").exists()


@pytest.mark.parametrize("value", HOSTILE)
def test_rollback_of_a_hostile_name_is_refused_with_the_line_the_step_quotes(app, value):
    code, output = run_as_the_step(app, ["rollback", value, "--namespace", "team-a"], {})
    stderr_log = (app / "work" / "stderr.log").read_text()
    assert code == 2
    # vars/pystepsCli.groovy quotes the last line starting with "pysteps ".
    lines = [line for line in stderr_log.splitlines() if line.startswith("pysteps ")]
    assert lines and "is not a DNS-1123 label" in lines[-1]
    assert not (app / "CANARY").exists()
    assert "S3cret-registry-pw" not in output


def test_the_version_check_sees_this_package(app):
    code, output = run_as_the_step(app, ["--version"], {})
    assert code == 0
    assert output.strip() == f"pysteps {pysteps.__version__}"


def test_the_library_pins_the_version_of_this_package():
    pinned = (REPO / "resources" / "io" / "pysteps" / "version.txt").read_text().strip()
    assert pinned == pysteps.__version__


def test_run_cli_refuses_an_argument_file_that_is_not_a_list_of_strings(tmp_path):
    (tmp_path / "args.json").write_text('"deploy --dry-run"')
    out = subprocess.run(
        [sys.executable, str(RUN_CLI), str(tmp_path / "args.json")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 2 and "JSON list of strings" in out.stderr
