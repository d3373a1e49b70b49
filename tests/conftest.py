"""Shared fixtures: the local test bed's endpoints come from .testbed/env, never hard-coded."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from pysteps.testbed_env import read_testbed_env, testbed_env_path

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def testbed() -> Mapping[str, str]:
    """The test bed's environment. A missing test bed fails the test, it is never skipped."""
    path = testbed_env_path()
    if not path.exists():
        pytest.fail(f"{path} is missing: run 'make testbed-up' first", pytrace=False)
    return read_testbed_env(path)


def require(env: Mapping[str, str], *keys: str) -> list[str]:
    """The values of KEYS; a key the test bed did not write fails the test with its name."""
    missing = [k for k in keys if not env.get(k)]
    if missing:
        pytest.fail(f"test bed env lacks {', '.join(missing)}: is that service up?", pytrace=False)
    return [env[k] for k in keys]


# Integration tests deploy examples/hello into namespaces of their own. The example's own
# domain, hello.ctest.example.com, belongs to whichever live app registered it first (the demo's,
# say), and pysteps refuses another app's domain: so tests give each deploy a domain of its own.
OWN_DOMAINS = ["{name}-{namespace}.ctest.example.com"]
OWN_DOMAINS_SET = 'domains=["{name}-{namespace}.ctest.example.com"]'
