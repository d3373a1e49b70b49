"""pysteps dns: render the cluster DNS configuration, or apply it to the cluster's ConfigMap.

  pysteps dns render [CONFIG FLAGS] [--flavor coredns|kube-dns] [-o FILE]
  pysteps dns apply  [CONFIG FLAGS] [--flavor coredns|kube-dns] [--namespace NS] [--dry-run]

Cluster names resolve in-cluster, each company zone through its company servers, everything else
through at most three upstream servers. The config comes from --config FILE (YAML or JSON) and
flags; flags win. A bad value is one line naming the field and the fix (exit 2), nothing written.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from pysteps.clusterdns import render
from pysteps.clusterdns.config import (
    DEFAULT_CLUSTER_DOMAIN,
    DnsConfig,
    merge_flags,
    parse_dns_config,
    read_config_file,
)
from pysteps.console import Console
from pysteps.environment import CommandParser, add_cluster_flags
from pysteps.errors import InputError
from pysteps.names import dns_label_argument

# Where each flavor keeps its configuration in a cluster.
CONFIGMAP_NAME = {"coredns": "coredns", "kube-dns": "kube-dns"}


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="DNS config file, YAML or JSON (see README)")
    p.add_argument("--cluster-domain", help="the cluster's domain (default cluster.local)")
    p.add_argument(
        "--zone",
        action="append",
        default=[],
        metavar="ZONE=SERVER[,SERVER...]",
        help="a company zone and its DNS servers (repeatable; replaces that zone of --config)",
    )
    p.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="ADDR",
        help="an upstream server for every other name, IP[:PORT] (1 to 3; replaces the file's)",
    )
    p.add_argument("--cache-ttl", type=int, help="seconds answers are cached (0: no cache)")
    p.add_argument(
        "--flavor",
        choices=tuple(CONFIGMAP_NAME),
        default="coredns",
        help="coredns (a Corefile; current clusters) or kube-dns (its ConfigMap; older ones)",
    )


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="pysteps dns", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    render = sub.add_parser("render", help="print or write the rendered configuration")
    _add_config_flags(render)
    render.add_argument("-o", "--output", type=Path, help="write to FILE (default: stdout)")
    render.add_argument(
        "--namespace",
        type=dns_label_argument,
        default="kube-system",
        help="namespace in the kube-dns ConfigMap manifest (default kube-system)",
    )
    apply = sub.add_parser("apply", help="put the configuration into the cluster's ConfigMap")
    _add_config_flags(apply)
    apply.add_argument(
        "--namespace",
        type=dns_label_argument,
        default="kube-system",
        help="namespace of the ConfigMap (default kube-system)",
    )
    apply.add_argument(
        "--name",
        type=dns_label_argument,
        help="ConfigMap name (default: coredns, or kube-dns with --flavor kube-dns)",
    )
    apply.add_argument("--dry-run", action="store_true", help="print what would change, write none")
    add_cluster_flags(apply)
    return p


def _load_config(args: argparse.Namespace) -> DnsConfig:
    raw = read_config_file(args.config) if args.config else {}
    merged = merge_flags(raw, args.cluster_domain, args.zone, args.upstream, args.cache_ttl)
    return parse_dns_config(merged)


def _write_atomically(path: Path, text: str) -> None:
    """Write TEXT to PATH through a temporary file beside it: readers never see half a file."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as exc:
        raise InputError(f"--output {path}: cannot write there ({exc.strerror}); fix it") from None
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def run(argv: list[str], verbose: bool = False) -> int:
    args = build_parser().parse_args(argv)
    config = _load_config(args)  # validated before anything is read from or written anywhere
    console = Console(verbose=verbose or getattr(args, "verbose", False))
    if args.flavor == "kube-dns" and config.cluster_domain != DEFAULT_CLUSTER_DOMAIN:
        console.warn(
            f"kube-dns takes the cluster domain from its --domain flag: set it to "
            f"{config.cluster_domain}"
        )
    if args.action == "render":
        if args.flavor == "coredns":
            text = render.render_corefile(config)
        else:
            text = render.render_kube_dns_configmap(config, args.namespace)
        if args.output:
            _write_atomically(args.output, text)
            console(f"wrote {args.output}")
        else:
            sys.stdout.write(text)
        return 0

    from pysteps.clients.kube import KubeClient  # lazy: pykube and requests only for apply
    from pysteps.clusterdns.apply import apply_dns_data

    data = render.coredns_data(config) if args.flavor == "coredns" else render.kube_dns_data(config)
    name = args.name or CONFIGMAP_NAME[args.flavor]
    kube = KubeClient(args.kubeconfig, args.context)
    apply_dns_data(kube, args.namespace, name, data, args.dry_run, report=print)
    return 0
