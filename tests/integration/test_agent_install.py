"""resources/io/pysteps/install-pysteps.sh, run for real: a pinned pysteps in a virtualenv cached
per version on the agent; a rerun reuses it; concurrent runs agree; a bad version is refused.

Installs this checkout (PYSTEPS_PIP_SPEC) without dependencies (PIP_NO_DEPS), so only pip and
the build backend are fetched from PyPI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

import pysteps
from tests.conftest import REPO

pytestmark = pytest.mark.integration

SCRIPT = REPO / "resources" / "io" / "pysteps" / "install-pysteps.sh"


def install(home, version=pysteps.__version__):
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "PYSTEPS_VERSION": version,
        "PYSTEPS_HOME": str(home / "agent"),
        "PYSTEPS_PIP_SPEC": str(REPO),
        "PYSTEPS_PYTHON3": sys.executable,
        "PIP_NO_DEPS": "1",
    }
    return subprocess.run(
        ["sh", str(SCRIPT)], env=env, capture_output=True, text=True, check=False, timeout=600
    )


def test_install_is_pinned_cached_per_version_and_safe_to_run_concurrently(tmp_path):
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: install(tmp_path), range(2))
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    python = first.stdout.strip().splitlines()[-1]
    assert python == str(tmp_path / "agent" / f"venv-{pysteps.__version__}" / "bin" / "python")
    assert second.stdout.strip().splitlines()[-1] == python
    version = subprocess.run(
        [python, "-m", "pysteps", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip() == f"pysteps {pysteps.__version__}"
    # No half-built virtualenv is left beside the finished one.
    assert sorted(p.name for p in (tmp_path / "agent").iterdir()) == [f"venv-{pysteps.__version__}"]
    again = install(tmp_path)
    assert again.returncode == 0 and "installing" not in again.stderr
    assert again.stdout.strip() == python


def test_a_version_with_shell_characters_is_refused(tmp_path):
    out = install(tmp_path, "1.0; touch CANARY")
    assert out.returncode == 2 and "bad version" in out.stderr
    assert not (tmp_path / "agent").exists()
