"""pysteps create: deploy an app that must not exist yet (same flags as deploy)."""

from __future__ import annotations

from pysteps.commands import deploy


def run(argv: list[str], verbose: bool = False) -> int:
    return deploy.run(argv, verbose=verbose, must_be_new=True)
