"""`pysteps build` (the buildImage step's command) on the test bed's real Docker Engine and
registry: the image is built and pushed once, by commit; a second build of the same commit
reuses the registry's copy and reports the same digest, which is what promoteApp ships."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.conftest import require
from tests.gitrepo import GitRepo

pytestmark = pytest.mark.integration


def run_build(repo: Path, result: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pysteps", "build", "--repo", str(repo), "--result", str(result)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_build_pushes_once_and_a_rebuild_reuses_the_same_digest(testbed, tmp_path):
    registry, docker_host, base = require(
        testbed, "PYSTEPS_REGISTRY", "DOCKER_HOST", "TESTBED_BASE_IMAGE"
    )
    env = {
        k: testbed[k]
        for k in ("PYSTEPS_REGISTRY", "PYSTEPS_REGISTRY_USERNAME", "PYSTEPS_REGISTRY_PASSWORD")
    }
    env["DOCKER_HOST"] = docker_host
    env["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
    repo = GitRepo(tmp_path / "app")
    name = f"jk-build-{secrets.token_hex(3)}"
    repo.write("deploy.yaml", f"name: {name}\nimage: {registry}/jenkins-tests/{name}\n")
    repo.write("Dockerfile", f"FROM {base}\nCOPY deploy.yaml /app/\n")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "app")
    commit = repo.git("rev-parse", "HEAD")

    first = run_build(repo.path, tmp_path / "r1.json", env)
    assert first.returncode == 0, first.stderr
    r1 = json.loads((tmp_path / "r1.json").read_text())
    assert r1["ok"] is True and r1["built"] is True and r1["commit"] == commit
    assert r1["image"].startswith(f"{registry}/jenkins-tests/{name}@sha256:")

    second = run_build(repo.path, tmp_path / "r2.json", env)
    assert second.returncode == 0, second.stderr
    r2 = json.loads((tmp_path / "r2.json").read_text())
    assert r2["built"] is False and r2["image"] == r1["image"]
    assert testbed["PYSTEPS_REGISTRY_PASSWORD"] not in first.stderr + second.stderr


def test_build_refuses_code_mode_with_exit_2(tmp_path):
    repo = GitRepo(tmp_path / "app")
    repo.write("deploy.yaml", "name: c\nmode: code\nruntime_image: r/x:1\n")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "app")
    out = run_build(repo.path, tmp_path / "r.json", {})
    assert out.returncode == 2
    assert "pysteps build needs image mode" in out.stderr
    assert json.loads((tmp_path / "r.json").read_text())["exit_code"] == 2
