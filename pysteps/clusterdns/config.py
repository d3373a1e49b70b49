"""The cluster DNS configuration: a typed, validated model read from a YAML/JSON file and flags.

What it says, whatever server renders it: names under the cluster domain are answered in-cluster,
each company zone goes to that zone's company servers, and everything else goes to at most three
upstream servers. There is no implicit default upstream (such as the node's /etc/resolv.conf):
upstreams are always named, so the rendered configuration sends queries only where it says.

Every error is one line naming the field and the fix (InputError, exit 2).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from pysteps.errors import InputError
from pysteps.names import is_dns_label

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

MAX_UPSTREAMS = 3  # kube-dns refuses more, and a pod's resolv.conf holds only three
MAX_ZONE_SERVERS = 15  # CoreDNS's forward plugin takes at most 15 servers
MAX_CACHE_TTL = 3600  # CoreDNS's cache plugin caps success TTLs at one hour by default
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
DEFAULT_CACHE_TTL = 30  # what kubeadm's Corefile uses

_ADDRESS_EXAMPLE = (
    "write an IP with an optional port, e.g. 10.0.0.53, 10.0.0.53:5353 or [fd00::53]:53"
)
_LISTEN_EXAMPLE = "write [HOST]:PORT, e.g. :8080 or 127.0.0.1:8080"
# A path or kubeconfig context that lands in the Corefile: no spaces, quotes, braces or '#'.
_COREFILE_PATH_RE = re.compile(r"/[A-Za-z0-9._@+/-]+")
_CONTEXT_RE = re.compile(r"[A-Za-z0-9._@:-]+")


def _fail(where: str, problem: str) -> InputError:
    return InputError(f"dns config field {where!r}: {problem}")


@dataclass(frozen=True)
class ServerAddress:
    """A DNS server to forward to: an IP address and a port (53 unless given)."""

    ip: IPAddress
    port: int = 53

    @classmethod
    def parse(cls, value: object, where: str) -> ServerAddress:
        """'1.2.3.4', '1.2.3.4:5353', 'fd00::1', '[fd00::1]' or '[fd00::1]:5353'."""
        if not isinstance(value, str):
            raise _fail(where, f"{value!r} is not a string; {_ADDRESS_EXAMPLE}")
        host, port = _split_host_port(value, where, _ADDRESS_EXAMPLE, port_required=False)
        if host is None:
            raise _fail(where, f"{value!r} has no address; {_ADDRESS_EXAMPLE}")
        if host.is_unspecified:
            raise _fail(where, f"{value!r} is the unspecified address, not a server; name one")
        return cls(host, 53 if port is None else port)

    def host_port(self) -> str:
        """The form CoreDNS's forward plugin takes: 10.0.0.53:53, [fd00::53]:53."""
        host = f"[{self.ip}]" if self.ip.version == 6 else str(self.ip)
        return f"{host}:{self.port}"

    def kube_dns(self) -> str:
        """The form kube-dns's ConfigMap takes: the bare IP for port 53, else HOST:PORT."""
        return str(self.ip) if self.port == 53 else self.host_port()


@dataclass(frozen=True)
class ListenAddress:
    """Where a CoreDNS endpoint (health, readiness, metrics) listens: all addresses or one IP."""

    port: int
    ip: IPAddress | None = None

    @classmethod
    def parse(cls, value: object, where: str) -> ListenAddress:
        if not isinstance(value, str):
            raise _fail(where, f"{value!r} is not a string; {_LISTEN_EXAMPLE}")
        host, port = _split_host_port(value, where, _LISTEN_EXAMPLE, port_required=True)
        assert port is not None
        return cls(port, host)

    def __str__(self) -> str:
        if self.ip is None:
            return f":{self.port}"
        host = f"[{self.ip}]" if self.ip.version == 6 else str(self.ip)
        return f"{host}:{self.port}"


def _split_host_port(
    text: str, where: str, example: str, port_required: bool
) -> tuple[IPAddress | None, int | None]:
    """Split HOST[:PORT] / [V6][:PORT] / :PORT; the host must be an IP literal, not a name."""
    bad = _fail(where, f"{text!r} is not an address; {example}")
    if not text or text != text.strip() or "%" in text:
        raise bad
    port_text: str | None = None
    if text.startswith("["):
        match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::([0-9]+))?", text)
        if not match:
            raise bad
        host_text, port_text = match.group(1), match.group(2)
        if ":" not in host_text:  # brackets are for IPv6 only
            raise bad
    elif text.count(":") == 1:
        host_text, port_text = text.split(":")
    else:
        host_text = text  # an IPv4 address, or an IPv6 address without a port
    host: IPAddress | None = None
    if host_text:
        try:
            host = ipaddress.ip_address(host_text)
        except ValueError:
            raise bad from None
    elif not port_required:
        raise bad
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise _fail(where, f"{text!r} has a bad port; ports are 1 to 65535; {example}")
        port = int(port_text)
    elif port_required:
        raise bad
    return host, port


def parse_zone(value: object, where: str) -> str:
    """A DNS zone name, lower-cased, without the trailing dot; the root zone is refused."""
    fix = "write a domain name such as corp.example (letters, digits, '-' and dots)"
    if not isinstance(value, str):
        raise _fail(where, f"{value!r} is not a domain name; {fix}")
    name = value.lower()
    name = name[:-1] if name.endswith(".") else name
    if not name:
        raise _fail(where, f"{value!r} is the root zone; upstream servers answer it, use upstreams")
    if len(name) > 253 or not all(is_dns_label(label) for label in name.split(".")):
        raise _fail(where, f"{value!r} is not a domain name; {fix}")
    return name


def _is_within(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


@dataclass(frozen=True)
class CompanyZone:
    """A zone the company's own DNS servers answer (a kube-dns "stub domain")."""

    zone: str
    servers: tuple[ServerAddress, ...]


@dataclass(frozen=True)
class CoreDnsOptions:
    """CoreDNS-only settings; the defaults fit kubeadm's CoreDNS Deployment and its probes."""

    port: int = 53
    bind: tuple[IPAddress, ...] = ()
    health: ListenAddress | None = ListenAddress(8080)
    ready: ListenAddress | None = ListenAddress(8181)
    metrics: ListenAddress | None = ListenAddress(9153)
    # Out of the cluster only (CoreDNS in a Pod uses its service account): a kubeconfig file.
    kubeconfig: str | None = None
    context: str | None = None


@dataclass(frozen=True)
class DnsConfig:
    """The whole cluster DNS configuration, validated."""

    upstreams: tuple[ServerAddress, ...]
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    company_zones: tuple[CompanyZone, ...] = ()
    cache_ttl: int = DEFAULT_CACHE_TTL
    coredns: CoreDnsOptions = field(default_factory=CoreDnsOptions)


# ------------------------------------------------------------------------- parsing

_TOP_FIELDS = ("cluster_domain", "company_zones", "upstreams", "cache_ttl", "coredns")
_COREDNS_FIELDS = ("port", "bind", "health", "ready", "metrics", "kubeconfig", "context")


def _int_field(value: object, where: str, low: int, high: int, meaning: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(where, f"{value!r} is not {meaning} ({low} to {high})")
    return value


def _unknown_fields(raw: Mapping[str, Any], known: Sequence[str], prefix: str) -> None:
    for key in raw:
        if key not in known:
            where = f"{prefix}{key}"
            raise _fail(where, f"unknown field; remove it or use one of {', '.join(known)}")


def _server_list(value: object, where: str, most: int) -> tuple[ServerAddress, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _fail(where, f"give a list of 1 to {most} server addresses; {_ADDRESS_EXAMPLE}")
    if len(value) > most:
        raise _fail(where, f"{len(value)} servers given, at most {most} allowed; drop some")
    servers = tuple(ServerAddress.parse(v, f"{where}[{i}]") for i, v in enumerate(value))
    for i, server in enumerate(servers):
        if server in servers[:i]:
            raise _fail(f"{where}[{i}]", f"{server.host_port()} is listed twice; drop one")
    return servers


def _parse_upstreams(value: object) -> tuple[ServerAddress, ...]:
    if value is None or value == []:
        raise _fail(
            "upstreams",
            f"required: name 1 to {MAX_UPSTREAMS} upstream servers (--upstream ADDR); "
            "no default is taken from /etc/resolv.conf",
        )
    if isinstance(value, list) and len(value) > MAX_UPSTREAMS:
        raise _fail(
            "upstreams",
            f"{len(value)} servers given, at most {MAX_UPSTREAMS} allowed "
            "(kube-dns and a pod's resolv.conf use only three); drop some",
        )
    return _server_list(value, "upstreams", MAX_UPSTREAMS)


def _parse_zones(value: object, cluster_domain: str) -> tuple[CompanyZone, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise _fail(
            "company_zones", "must map each zone to its servers, e.g. {corp.example: [10.0.0.53]}"
        )
    zones: list[CompanyZone] = []
    for key, servers in value.items():
        zone = parse_zone(key, f"company_zones[{key}]")
        where = f"company_zones[{zone}]"
        if any(z.zone == zone for z in zones):
            raise _fail(where, "the zone is listed twice (names are case-insensitive); merge them")
        if _is_within(zone, cluster_domain) or _is_within(cluster_domain, zone):
            raise _fail(
                where,
                f"overlaps the cluster domain {cluster_domain}, whose names the cluster answers; "
                "use a zone outside it",
            )
        zones.append(CompanyZone(zone, _server_list(servers, where, MAX_ZONE_SERVERS)))
    return tuple(zones)


def _parse_listen(raw: Mapping[str, Any], key: str, default: ListenAddress) -> ListenAddress | None:
    if key not in raw:
        return default
    value = raw[key]
    if value is None or value == "":
        return None  # the endpoint is left out of the Corefile
    return ListenAddress.parse(value, f"coredns.{key}")


def _parse_coredns(value: object) -> CoreDnsOptions:
    if value is None:
        return CoreDnsOptions()
    if not isinstance(value, Mapping):
        raise _fail("coredns", "must be a mapping of CoreDNS settings (port, bind, health, ...)")
    _unknown_fields(value, _COREDNS_FIELDS, "coredns.")
    defaults = CoreDnsOptions()
    port = _int_field(value.get("port", defaults.port), "coredns.port", 1, 65535, "a port")
    bind_raw = value.get("bind") or []
    if isinstance(bind_raw, str):
        bind_raw = [bind_raw]
    if not isinstance(bind_raw, list):
        raise _fail("coredns.bind", "give a list of IP addresses to listen on, e.g. [127.0.0.1]")
    bind: list[IPAddress] = []
    for i, item in enumerate(bind_raw):
        try:
            bind.append(ipaddress.ip_address(item if isinstance(item, str) else "-"))
        except ValueError:
            raise _fail(
                f"coredns.bind[{i}]", f"{item!r} is not an IP address; write e.g. 127.0.0.1"
            ) from None
    kubeconfig = value.get("kubeconfig")
    if kubeconfig is not None and (
        not isinstance(kubeconfig, str) or not _COREFILE_PATH_RE.fullmatch(kubeconfig)
    ):
        raise _fail(
            "coredns.kubeconfig",
            f"{kubeconfig!r} is not an absolute path of letters, digits and ._@+-/ ; move the file",
        )
    context = value.get("context")
    if context is not None:
        if kubeconfig is None:
            raise _fail("coredns.context", "needs coredns.kubeconfig; set both or neither")
        if not isinstance(context, str) or not _CONTEXT_RE.fullmatch(context):
            raise _fail(
                "coredns.context", f"{context!r} is not a context name (letters, digits, ._@:-)"
            )
    return CoreDnsOptions(
        port=port,
        bind=tuple(bind),
        health=_parse_listen(value, "health", ListenAddress(8080)),
        ready=_parse_listen(value, "ready", ListenAddress(8181)),
        metrics=_parse_listen(value, "metrics", ListenAddress(9153)),
        kubeconfig=kubeconfig,
        context=context,
    )


def parse_dns_config(raw: Mapping[str, Any]) -> DnsConfig:
    """Validate a raw mapping (from YAML/JSON and flags) into a DnsConfig; InputError if bad."""
    _unknown_fields(raw, _TOP_FIELDS, "")
    cluster_domain = parse_zone(raw.get("cluster_domain", DEFAULT_CLUSTER_DOMAIN), "cluster_domain")
    cache_ttl = _int_field(
        raw.get("cache_ttl", DEFAULT_CACHE_TTL),
        "cache_ttl",
        0,
        MAX_CACHE_TTL,
        "a whole number of seconds, 0 for no cache",
    )
    return DnsConfig(
        upstreams=_parse_upstreams(raw.get("upstreams")),
        cluster_domain=cluster_domain,
        company_zones=_parse_zones(raw.get("company_zones"), cluster_domain),
        cache_ttl=cache_ttl,
        coredns=_parse_coredns(raw.get("coredns")),
    )


def read_config_file(path: Path) -> dict[str, Any]:
    """A YAML (or JSON, which is YAML) file holding a mapping of config fields."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check --config") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise InputError(f"{path}{where}: not valid YAML or JSON; fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: must hold a mapping of fields (upstreams: ..., ...)")
    return data


def merge_flags(
    raw: Mapping[str, Any],
    cluster_domain: str | None = None,
    zones: Sequence[str] = (),
    upstreams: Sequence[str] = (),
    cache_ttl: int | None = None,
) -> dict[str, Any]:
    """Flags over the file: --upstream replaces the file's list, --zone replaces one zone."""
    merged = dict(raw)
    if cluster_domain is not None:
        merged["cluster_domain"] = cluster_domain
    if upstreams:
        merged["upstreams"] = list(upstreams)
    if cache_ttl is not None:
        merged["cache_ttl"] = cache_ttl
    if zones:
        file_zones = merged.get("company_zones") or {}
        if not isinstance(file_zones, Mapping):
            file_zones = {}
        table: dict[str, Any] = dict(file_zones)
        for item in zones:
            zone, sep, servers = item.partition("=")
            if not sep or not zone or not servers:
                raise InputError(
                    f"--zone {item!r}: write ZONE=SERVER[,SERVER...], e.g. corp.example=10.0.0.53"
                )
            same = [k for k in table if str(k).lower().rstrip(".") == zone.lower().rstrip(".")]
            for key in same:
                del table[key]
            table[zone] = servers.split(",")
        merged["company_zones"] = table
    return merged
