"""Shared bits of the bench scripts: the test bed's environment and a timer."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pysteps.testbed_env import read_testbed_env, testbed_env_path

REPO = Path(__file__).resolve().parent.parent


def testbed_env() -> dict[str, str]:
    """The test bed's `export KEY=value` lines (make testbed-up writes them)."""
    path = testbed_env_path()
    if not path.exists():
        raise SystemExit(f"{path} is missing: run 'make testbed-up' first")
    return read_testbed_env(path)


def git(repo: Path, *args: str) -> str:
    """Run git in REPO with a fixed identity and no user or system configuration."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@ci.test",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@ci.test",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(repo),
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def best_of(fn: Callable[[], object], runs: int) -> float:
    """The median wall time of RUNS calls of FN, in seconds."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(cmd: Sequence[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        list(cmd), capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr}")
    return out


def report(name: str, ours: float, reference: float, target: str) -> None:
    print(
        f"{name}: pysteps {ours:.3f}s, reference {reference:.3f}s, "
        f"ratio {ours / reference:.2f} (target {target})"
    )
