"""pysteps list: every app pysteps manages, with one list request per kind (never one per app)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pysteps.console import Console
from pysteps.environment import CommandParser, add_cluster_flags
from pysteps.names import dns_label_argument


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="pysteps list", description=__doc__)
    p.add_argument(
        "-n",
        "--namespace",
        type=dns_label_argument,
        help="only this namespace (default: every namespace)",
    )
    p.add_argument("--output", choices=("text", "json"), default="text")
    add_cluster_flags(p)
    return p


def run(argv: list[str], verbose: bool = False) -> int:
    args = build_parser().parse_args(argv)
    from pysteps.clients.kube import KubeClient
    from pysteps.inventory import list_apps

    console = Console(verbose=verbose or args.verbose)
    apps = list_apps(KubeClient(args.kubeconfig, args.context), args.namespace)
    if args.output == "json":
        print(json.dumps([a.to_dict() for a in apps], indent=2))
        return 0
    print(format_table(apps))
    console.detail(f"{len(apps)} apps")
    return 0


def format_table(apps: list[Any]) -> str:
    header = ("NAMESPACE", "NAME", "MODE", "KIND", "VERSION", "READY", "NODEPORTS", "DOMAINS")
    rows = [header] + [a.row() for a in apps]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows
    )
