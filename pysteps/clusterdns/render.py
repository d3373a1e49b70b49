"""Pure rendering: a DnsConfig in, configuration text out (no I/O here).

Two outputs say the same thing for two generations of cluster DNS (docs/adr/0010):
- a CoreDNS Corefile (the `Corefile` key of ConfigMap kube-system/coredns);
- the data of ConfigMap kube-system/kube-dns (`stubDomains`, `upstreamNameservers`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import yaml

from pysteps.clusterdns.config import CompanyZone, DnsConfig

HEADER = (
    "# Rendered by `pysteps dns render`: change the DNS config and render again, not this file."
)
MANAGED_BY = {"app.kubernetes.io/managed-by": "pysteps"}
_INDENT = "    "


def _block(head: str, lines: list[str]) -> list[str]:
    """A Corefile block: HEAD { LINES }, nested lines indented once more."""
    return [f"{head} {{", *(_INDENT + line for line in lines), "}"]


def _bind(config: DnsConfig) -> list[str]:
    addresses = config.coredns.bind
    return [f"bind {' '.join(str(ip) for ip in addresses)}"] if addresses else []


def _cache(config: DnsConfig) -> list[str]:
    return [f"cache {config.cache_ttl}"] if config.cache_ttl else []


def _metrics(config: DnsConfig) -> list[str]:
    return [f"prometheus {config.coredns.metrics}"] if config.coredns.metrics else []


def _kubernetes(config: DnsConfig) -> list[str]:
    """Cluster names (and reverse lookups of cluster IPs) answered from the Kubernetes API."""
    options = []
    if config.coredns.kubeconfig:
        context = f" {config.coredns.context}" if config.coredns.context else ""
        options.append(f"kubeconfig {config.coredns.kubeconfig}{context}")
    options += ["pods insecure", "fallthrough in-addr.arpa ip6.arpa", "ttl 30"]
    return _block(f"kubernetes {config.cluster_domain} in-addr.arpa ip6.arpa", options)


def _main_block(config: DnsConfig) -> list[str]:
    opts = config.coredns
    lines = [*_bind(config), "errors"]
    if opts.health:
        # lameduck: keep answering while a replaced CoreDNS pod drains (kubeadm does the same).
        lines += _block(f"health {opts.health}", ["lameduck 5s"])
    if opts.ready:
        lines.append(f"ready {opts.ready}")
    lines += _kubernetes(config)
    lines += _metrics(config)
    upstreams = " ".join(s.host_port() for s in config.upstreams)
    lines += _block(f"forward . {upstreams}", ["max_concurrent 1000"])
    lines += [*_cache(config), "loop", "reload", "loadbalance"]
    return _block(f".:{opts.port}", lines)


def _zone_block(config: DnsConfig, zone: CompanyZone) -> list[str]:
    servers = " ".join(s.host_port() for s in zone.servers)
    lines = [*_bind(config), "errors", *_metrics(config), f"forward . {servers}"]
    lines += [*_cache(config), "loop"]
    return _block(f"{zone.zone}:{config.coredns.port}", lines)


def render_corefile(config: DnsConfig) -> str:
    """The Corefile: one server block for everything, one more per company zone.

    CoreDNS sends a query to the server block with the longest matching zone, so a company zone's
    block wins over `.` for its names; the cluster domain is kept out of every company zone by the
    config's validation, so cluster names always reach the kubernetes plugin.
    """
    lines = [HEADER, *_main_block(config)]
    for zone in config.company_zones:
        lines += _zone_block(config, zone)
    return "\n".join(lines) + "\n"


def kube_dns_data(config: DnsConfig) -> dict[str, str]:
    """The kube-dns ConfigMap's data: both keys always present, so applying it is exact."""
    stub = {z.zone: [s.kube_dns() for s in z.servers] for z in config.company_zones}
    upstreams = [s.kube_dns() for s in config.upstreams]
    return {
        "stubDomains": json.dumps(stub, indent=None),
        "upstreamNameservers": json.dumps(upstreams, indent=None),
    }


def coredns_data(config: DnsConfig) -> dict[str, str]:
    """The CoreDNS ConfigMap's data key this project manages."""
    return {"Corefile": render_corefile(config)}


def configmap_manifest(namespace: str, name: str, data: Mapping[str, str]) -> dict[str, object]:
    """A ConfigMap object holding DATA (what `dns apply` creates when none exists)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "data": dict(data),
    }


def render_kube_dns_configmap(config: DnsConfig, namespace: str = "kube-system") -> str:
    """The kube-dns ConfigMap as YAML, ready for `kubectl apply -f`."""
    manifest = configmap_manifest(namespace, "kube-dns", kube_dns_data(config))
    header = (
        "# Rendered by `pysteps dns render --flavor kube-dns`. kube-dns takes the cluster "
        f"domain from its --domain flag: it must be {config.cluster_domain}.\n"
    )
    return header + yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False)
