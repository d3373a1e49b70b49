"""pysteps rollback: put an app's previous revision (or --to-revision N) back, in one step."""

from __future__ import annotations

import argparse
from pathlib import Path

from pysteps.console import Console
from pysteps.environment import (
    CommandParser,
    add_app_arguments,
    add_cluster_flags,
    add_lock_wait,
    make_services,
)
from pysteps.errors import RolloutFailed, RolloutTimeout


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="pysteps rollback", description=__doc__)
    add_app_arguments(p)
    p.add_argument("--to-revision", type=int, help="the revision to return to")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for the rollout")
    add_lock_wait(p)
    p.add_argument(
        "--repo",
        type=Path,
        help="code mode: a git checkout to rebuild the revision's release from, if it is gone",
    )
    add_cluster_flags(p)
    return p


def run(argv: list[str], verbose: bool = False) -> int:
    args = build_parser().parse_args(argv)
    from pysteps.lock import DeployLock, LockedKube
    from pysteps.teardown import rollback_app

    console = Console(verbose=verbose or args.verbose)
    services = make_services(args, console)
    console.heading(f"Rolling back {args.namespace}/{args.name}")
    # Held like a deploy's: no deploy or destroy of the app runs meanwhile, and every
    # cluster write stops if the lock is lost.
    lock = DeployLock(services.kube, args.namespace, args.name)
    lock.acquire(args.lock_wait, console)
    services.kube = LockedKube(services.kube, lock)
    try:
        outcome = rollback_app(
            services,
            console,
            args.namespace,
            args.name,
            args.to_revision,
            args.timeout,
            args.repo,
        )
    finally:
        lock.release()
    if not outcome.ok:
        for line in outcome.report.lines():
            console(f"  {line}")
        cls = RolloutTimeout if outcome.timed_out else RolloutFailed
        raise cls(f"{args.namespace}/{args.name}: rollback did not finish: {outcome.message}")
    console(f"rolled back: {outcome.message}")
    return 0
