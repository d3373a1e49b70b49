"""pysteps jobs validate [FILE]: check the app catalog the Job DSL seed reads (jobs/apps.yaml)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pysteps.environment import CommandParser


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="pysteps jobs", description=__doc__)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    v = sub.add_parser("validate", help="check names, duplicates and repository URLs")
    v.add_argument("file", nargs="?", type=Path, default=Path("jobs/apps.yaml"))
    return p


def run(argv: list[str], verbose: bool = False) -> int:
    args = build_parser().parse_args(argv)
    from pysteps.catalog import load_catalog

    apps = load_catalog(args.file)
    teams = sorted({a.team for a in apps})
    print(f"{args.file}: {len(apps)} apps in {len(teams)} teams, valid")
    for app in apps:
        print(f"  {app.job}  {app.repository}  ({app.branch}, {app.script})")
    return 0
