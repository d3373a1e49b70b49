"""pysteps routes: the apps' routes in etcd (list, show, remove) and `sync` with the cluster.

pysteps routes list [-n NS]        every route: key, domains, upstreams
pysteps routes show NAME [-n NS]   one route's stored JSON value and version
pysteps routes remove NAME [-n NS] delete that app's own key (nothing else)
pysteps routes sync [-n NS]        upstreams = every Ready, schedulable (edge) node's
                                   InternalIP : the app's NodePort; routes of apps whose
                                   Service is gone are removed. Prints each change; changes
                                   nothing when nothing changed. Cheap: three list requests.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from pysteps.console import Console
from pysteps.environment import CommandParser, add_cluster_flags
from pysteps.errors import PreconditionError
from pysteps.names import dns_label_argument

if TYPE_CHECKING:
    from pysteps.clients.routes import RouteRegistry


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(
        prog="pysteps routes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=CommandParser
    )
    for action, help_text, needs_name in (
        ("list", "every route (in a namespace)", False),
        ("show", "one app's route", True),
        ("remove", "delete one app's route key", True),
        ("sync", "reconcile every route with the cluster's nodes and Services", False),
    ):
        a = sub.add_parser(action, help=help_text, prog=f"pysteps routes {action}")
        if needs_name:
            a.add_argument("name", type=dns_label_argument, help="the app's name")
        a.add_argument(
            "-n",
            "--namespace",
            type=dns_label_argument,
            default="default" if needs_name else None,
            help="the app's namespace" if needs_name else "only this namespace (default: all)",
        )
        a.add_argument("--output", choices=("text", "json"), default="text")
        if action == "sync":
            a.add_argument("--dry-run", action="store_true", help="print changes, write none")
            add_cluster_flags(a)
        else:
            a.add_argument("-v", "--verbose", action="store_true", help="details and tracebacks")
    return p


def run(argv: list[str], verbose: bool = False) -> int:
    args = build_parser().parse_args(argv)
    from pysteps.clients.routes import route_registry_from_env

    console = Console(verbose=verbose or args.verbose)
    registry = route_registry_from_env(console)
    if not registry.observable:
        raise PreconditionError("no route registry configured: set PYSTEPS_ETCD_URL")
    console.detail(f"route registry: {registry.describe()}")
    if args.action == "list":
        routes = [s.route for s in registry.list(args.namespace)]
        if args.output == "json":
            print(json.dumps([r.to_dict() for r in routes], indent=2, sort_keys=True))
            return 0
        rows = [("KEY", "DOMAINS", "UPSTREAMS", "REVISION")]
        rows += [
            (r.key, ",".join(r.domains), ",".join(r.upstreams) or "-", str(r.revision))
            for r in routes
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        return 0
    if args.action == "show":
        stored = registry.get(args.namespace, args.name)
        if stored is None:
            raise PreconditionError(f"{args.namespace}/{args.name}: no route registered")
        if args.output == "json":
            print(json.dumps({**stored.route.to_dict(), "version": stored.version}, indent=2))
        else:
            r = stored.route
            print(f"key:       {r.key} (version {stored.version})")
            print(f"domains:   {', '.join(r.domains)}")
            print(f"upstreams: {', '.join(r.upstreams) or '-'}")
            ports = ", ".join(f"{k}={v}" for k, v in sorted(r.node_ports.items())) or "-"
            print(f"ports:     {ports}")
            print(f"revision:  {r.revision}")
            if r.canary is not None:
                c = r.canary
                print(f"canary:    {c.name} at {c.weight}% -> {', '.join(c.servers) or '-'}")
        return 0
    if args.action == "remove":
        if not registry.delete(args.namespace, args.name):
            raise PreconditionError(f"{args.namespace}/{args.name}: no route registered")
        console(f"removed route /devnginx/{args.namespace}/{args.name}")
        return 0
    return _sync(args, console, registry)


def _sync(args: argparse.Namespace, console: Console, registry: RouteRegistry) -> int:
    from pysteps.clients.kube import KubeClient
    from pysteps.routing import edge_selector_from_env, sync_routes

    selector = edge_selector_from_env()
    kube = KubeClient(args.kubeconfig, args.context)
    report = sync_routes(kube, registry, args.namespace, selector, console, args.dry_run)
    if args.output == "json":
        print(
            json.dumps(
                {
                    "checked": report.checked,
                    "changed": report.changed,
                    "conflicts": report.conflicts,
                }
            )
        )
    elif not report.changed and not report.conflicts:
        console(f"{report.checked} routes checked: nothing to change")
    else:
        console(f"{report.checked} routes checked, {len(report.changed)} changed")
    # A conflict is another writer's newer value: the next run takes it, no alarm needed.
    return 0
