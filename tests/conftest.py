"""Shared fixtures: the local test bed's endpoints come from .testbed/env, never hard-coded."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def read_testbed_env(path: Path) -> dict[str, str]:
    """Parse the `export KEY=value` lines that testbed/testbed.sh writes."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, _, value = line.partition("=")
        parts = shlex.split(value) if value else [""]
        env[key] = parts[0] if parts else ""
    return env


@pytest.fixture(scope="session")
def testbed() -> Mapping[str, str]:
    """The test bed's environment. A missing test bed fails the test, it is never skipped."""
    path = Path(os.environ.get("TESTBED_DIR", REPO / ".testbed")) / "env"
    if not path.exists():
        pytest.fail(f"{path} is missing: run 'make testbed-up' first", pytrace=False)
    return read_testbed_env(path)


def require(env: Mapping[str, str], *keys: str) -> list[str]:
    """The values of KEYS; a key the test bed did not write fails the test with its name."""
    missing = [k for k in keys if not env.get(k)]
    if missing:
        pytest.fail(f"test bed env lacks {', '.join(missing)}: is that service up?", pytrace=False)
    return [env[k] for k in keys]
