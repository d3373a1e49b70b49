"""pysteps destroy: remove what an app's own objects record as its own (workload, pods,
Service, Secret, route, lock; with --purge-code the code directory its workload records).
An app that does not exist is exit 3, and nothing is touched."""

from __future__ import annotations

import argparse
import sys

from pysteps.console import Console
from pysteps.environment import (
    CommandParser,
    add_app_arguments,
    add_cluster_flags,
    add_lock_wait,
    make_services,
)
from pysteps.errors import InputError


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="pysteps destroy", description=__doc__)
    add_app_arguments(p)
    p.add_argument("--purge-code", action="store_true", help="also delete its code directory")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_lock_wait(p)
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

    services = make_services(args, console)
    removed = destroy_app(services, args.namespace, args.name, args.purge_code, args.lock_wait)
    console.heading(f"Destroyed {target}")
    for item in removed:
        console(f"- {item}")
    return 0
