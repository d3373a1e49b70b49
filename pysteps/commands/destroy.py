"""pysteps destroy: remove everything an app owns (workload, pods, service, route, lock;
its code directory too with --purge-code)."""

from __future__ import annotations

import argparse
import sys

from pysteps.console import Console
from pysteps.environment import CommandParser, add_app_arguments, add_cluster_flags, make_services
from pysteps.errors import InputError


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="pysteps destroy", description=__doc__)
    add_app_arguments(p)
    p.add_argument("--purge-code", action="store_true", help="also delete its code directory")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_cluster_flags(p)
    return p


def run(argv: list[str], verbose: bool = False) -> int:
    args = build_parser().parse_args(argv)
    target = f"{args.namespace}/{args.name}"
    if not args.yes:
        if not sys.stdin.isatty():
            raise InputError(f"destroy {target}: no terminal to confirm on; pass --yes")
        answer = input(f"Remove everything {target} owns? Type its name to confirm: ")
        if answer.strip() != args.name:
            print("not confirmed; nothing removed", file=sys.stderr)
            return 3
    console = Console(verbose=verbose or args.verbose)
    from pysteps.teardown import destroy_app

    removed = destroy_app(make_services(args, console), args.namespace, args.name, args.purge_code)
    console.heading(f"Destroyed {target}")
    for item in removed or ["nothing: the app had nothing left"]:
        console(f"- {item}")
    return 0
