"""Wiring: which real clients a command gets, from flags and PYSTEPS_* environment variables.

KUBECONFIG / --kubeconfig        the cluster (any kubeconfig; no cluster-admin needed)
PYSTEPS_ETCD_URL, _API           route registry (etcd endpoints; v3 or v2); unset: routes are logged
PYSTEPS_ETCD_CA_CERT, _CERT, _KEY, _USERNAME, _PASSWORD   its TLS and auth
PYSTEPS_EDGE_NODE_SELECTOR       label=value,...: the nodes that serve as nginx upstreams
PYSTEPS_SMTP_HOST, _PORT         mail; unset: mails are logged
PYSTEPS_REGISTRY, _USERNAME, _PASSWORD   image registry login (image mode)
DOCKER_HOST                      the Docker Engine that builds images (image mode)
PYSTEPS_GLUSTER_HOST, _VOLUME    the code volume (code mode)
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, NoReturn

from pysteps.console import Console
from pysteps.names import dns_label_argument

if TYPE_CHECKING:
    from pysteps.clients.images import ImageService
    from pysteps.codestore import CodeService
    from pysteps.deploy import Services


class CommandParser(argparse.ArgumentParser):
    """argparse with bad flags reported in one line (exit 2), without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}; see {self.prog} --help\n")


def add_cluster_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    parser.add_argument("--context", help="kubeconfig context (default: its current one)")
    parser.add_argument("-v", "--verbose", action="store_true", help="details and tracebacks")


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    """NAME and -n/--namespace, for the commands that work on one live app."""
    parser.add_argument("name", type=dns_label_argument, help="the app's name")
    parser.add_argument(
        "-n", "--namespace", type=dns_label_argument, default="default", help="its namespace"
    )


def add_lock_wait(parser: argparse.ArgumentParser) -> None:
    """--lock-wait, for the commands that hold the app's lock."""
    parser.add_argument(
        "--lock-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another command on the app to finish (default: do not wait)",
    )


def make_services(args: argparse.Namespace, console: Console) -> Services:
    """The real clients; image and code clients are made lazily, on first use."""
    from pysteps.clients.kube import KubeClient
    from pysteps.clients.mail import LogNotifier, Notifier, YagmailNotifier
    from pysteps.clients.routes import route_registry_from_env
    from pysteps.deploy import Services

    kube = KubeClient(args.kubeconfig, args.context)
    routes = route_registry_from_env(console)
    notifier: Notifier = YagmailNotifier.from_env() or LogNotifier(console)

    def images() -> ImageService:
        from pysteps.clients.images import ImageBuilder, RegistryAuth

        return ImageBuilder(RegistryAuth.from_env(), log=console)

    def code() -> CodeService:
        from pysteps.codestore import GlusterCodeStore

        return GlusterCodeStore.from_env(console)

    return Services(kube, routes, notifier, images, code)
