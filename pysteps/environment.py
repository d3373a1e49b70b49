"""Wiring: which real clients a command gets, from flags and PYSTEPS_* environment variables.

KUBECONFIG / --kubeconfig        the cluster (any kubeconfig; no cluster-admin needed)
PYSTEPS_ETCD_URL                 route registry (etcd v3 JSON gateway); unset: routes are logged
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
    from pysteps.deploy import CodeService, ImageService, Services


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


def make_services(args: argparse.Namespace, console: Console) -> Services:
    """The real clients; image and code clients are made lazily, on first use."""
    from pysteps.clients.kube import KubeClient
    from pysteps.clients.mail import LogNotifier, Notifier, YagmailNotifier
    from pysteps.clients.routes import EtcdRouteRegistry, LogRouteRegistry, RouteRegistry
    from pysteps.deploy import Services

    kube = KubeClient(args.kubeconfig, args.context)
    routes: RouteRegistry = EtcdRouteRegistry.from_env() or LogRouteRegistry(console)
    notifier: Notifier = YagmailNotifier.from_env() or LogNotifier(console)

    def images() -> ImageService:
        from pysteps.clients.images import ImageBuilder, RegistryAuth

        return ImageBuilder(RegistryAuth.from_env(), log=console)

    def code() -> CodeService:
        from pysteps.codestore import GlusterCodeStore

        return GlusterCodeStore.from_env(console)

    return Services(kube, routes, notifier, images, code)
