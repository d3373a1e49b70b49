"""pysteps status: one app's workload, pods, service, route and deploy lock."""

from __future__ import annotations

import argparse
import json

from pysteps.console import Console
from pysteps.environment import CommandParser, add_app_arguments, add_cluster_flags, make_services
from pysteps.errors import PreconditionError


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="pysteps status", description=__doc__)
    add_app_arguments(p)
    p.add_argument("--output", choices=("text", "json"), default="text")
    add_cluster_flags(p)
    return p


def run(argv: list[str], verbose: bool = False) -> int:
    args = build_parser().parse_args(argv)
    from pysteps.inventory import app_status

    console = Console(verbose=verbose or args.verbose)
    services = make_services(args, console)
    status = app_status(services.kube, services.routes, args.namespace, args.name)
    if status is None:
        raise PreconditionError(f"{args.namespace}/{args.name}: no such app")
    if args.output == "json":
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        for line in status["lines"]:
            print(line)
    return 0
