"""pysteps history: every deploy attempt of an app, newest first, failed ones included."""

from __future__ import annotations

import argparse
import json

from pysteps.console import Console
from pysteps.environment import CommandParser, add_app_arguments, add_cluster_flags
from pysteps.errors import PreconditionError


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="pysteps history", description=__doc__)
    add_app_arguments(p)
    p.add_argument("--json", action="store_true", help="print the attempts as JSON, newest first")
    add_cluster_flags(p)
    return p


def run(argv: list[str], verbose: bool = False) -> int:
    args = build_parser().parse_args(argv)
    from pysteps.clients.kube import KubeClient
    from pysteps.history import DeployHistory, describe

    console = Console(verbose=verbose or args.verbose)
    attempts = DeployHistory(
        KubeClient(args.kubeconfig, args.context), args.namespace, args.name
    ).read()
    if not attempts:
        raise PreconditionError(
            f"{args.namespace}/{args.name}: no deploy recorded (no ConfigMap "
            f"pysteps-history-{args.name}); check the name and -n NAMESPACE"
        )
    mask = console.mask
    if args.json:
        print(json.dumps(mask.deep([a.to_dict() for a in reversed(attempts)]), indent=2))
    else:
        for line in describe(attempts):
            print(mask(line))
        console.detail(f"{len(attempts)} attempts kept")
    return 0
