"""The local test bed's endpoints, as `testbed/testbed.sh` writes them to `$TESTBED_DIR/env`.

One reader for the tests, the benches and the demo. Not used by pysteps itself: in Jenkins
the same PYSTEPS_* variables come from the job's environment.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def testbed_env_path() -> Path:
    """$TESTBED_DIR/env, or .testbed/env in the checkout when TESTBED_DIR is unset."""
    return Path(os.environ.get("TESTBED_DIR") or REPO / ".testbed") / "env"


def read_testbed_env(path: Path | None = None) -> dict[str, str]:
    """Parse the `export KEY=value` lines (values shell-quoted); FileNotFoundError if absent."""
    env: dict[str, str] = {}
    for line in (path or testbed_env_path()).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, _, value = line.partition("=")
        env[key] = (shlex.split(value) or [""])[0] if value else ""
    return env
