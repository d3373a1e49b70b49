"""A route: which host names the nginx edge serves for an app, and where it sends them.

One etcd key per app, ``/devnginx/<namespace>/<name>``, holds one JSON object (the format that
confd templates read; README "Routes in etcd" documents it for teams writing their own):

    {"name": "hello", "namespace": "team-a",
     "domains": ["hello.ctest.example.com"],
     "upstreams": ["10.0.0.11:30080", "10.0.0.12:30080"],
     "http_port": 30080, "https_port": 30443, "ssh_port": 30022,
     "revision": 4, "canary": {...}}

``upstreams`` are node InternalIP:NodePort of the app's http port (its first port when it has no
http port). ``*_port`` are the app's NodePorts, present only when the app has that port.
``revision`` is the workload revision the route belongs to. ``canary``, only while one runs:
``{"name": "hello-canary", "weight": 10, "servers": ["10.0.0.11:31500"], "http_port": 31500,
"commit": "..."}``, the share of requests (percent) that goes to the canary's servers. Its list
is not called "upstreams", so that a template finds exactly one member of that name.
Every value is checked here before it is written: nothing unchecked reaches an nginx config.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pysteps.errors import InputError, PreconditionError
from pysteps.names import is_commit, is_dns_label, is_domain

ROUTE_PREFIX = "/devnginx"
PORT_NAMES = ("http", "https", "ssh")


class RouteConflict(PreconditionError):
    """The key changed between our read and our write (another writer won): nothing written."""


def route_key(namespace: str, name: str) -> str:
    return f"{ROUTE_PREFIX}/{namespace}/{name}"


def split_route_key(key: str) -> tuple[str, str] | None:
    """(namespace, name) of a key `/devnginx/<ns>/<name>`; None for any other key."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] or "/" + parts[1] != ROUTE_PREFIX:
        return None
    if not (is_dns_label(parts[2]) and is_dns_label(parts[3])):
        return None
    return parts[2], parts[3]


def check_upstream(upstream: str) -> bool:
    """IPv4:port, nothing else: nginx resolves host names at load time and fails on one."""
    host, _, port = upstream.rpartition(":")
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return port.isdigit() and len(port) <= 5 and 0 < int(port) < 65536 and host.count(".") == 3


@dataclass(frozen=True)
class Canary:
    """A second, smaller workload of the app that takes WEIGHT percent of its requests."""

    name: str
    weight: int
    servers: tuple[str, ...] = ()
    http_port: int | None = None
    commit: str | None = None

    def validate(self) -> None:
        if not is_dns_label(self.name):
            raise InputError(f"canary name {self.name!r}: must be a DNS-1123 label")
        if not 1 <= self.weight <= 99:
            raise InputError(f"canary weight {self.weight}: give a percentage from 1 to 99")
        for server in self.servers:
            if not check_upstream(server):
                raise InputError(f"canary server {server!r}: must be an IPv4 address and port")
        if self.http_port is not None and not 0 < self.http_port < 65536:
            raise InputError(f"canary http_port {self.http_port}: must be 1-65535")
        if self.commit is not None and not is_commit(self.commit):
            raise InputError(f"canary commit {self.commit!r}: must be a hex commit id")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "weight": self.weight,
            "servers": list(self.servers),
        }
        if self.http_port is not None:
            data["http_port"] = self.http_port
        if self.commit is not None:
            data["commit"] = self.commit
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Canary:
        if not isinstance(data, Mapping):
            raise ValueError("canary is not a JSON object")
        port = data.get("http_port")
        return cls(
            str(data["name"]),
            int(data["weight"]),
            tuple(str(s) for s in data.get("servers") or ()),
            int(port) if port else None,
            str(data["commit"]) if data.get("commit") else None,
        )


@dataclass(frozen=True)
class Route:
    namespace: str
    name: str
    domains: tuple[str, ...]
    upstreams: tuple[str, ...] = ()
    node_ports: Mapping[str, int] = field(default_factory=dict)
    revision: int = 0
    canary: Canary | None = None

    @property
    def key(self) -> str:
        return route_key(self.namespace, self.name)

    def validate(self) -> None:
        """Refuse anything nginx must never see: the edge's config is rendered from these values."""
        for field_name, value in (("namespace", self.namespace), ("name", self.name)):
            if not is_dns_label(value):
                raise InputError(f"route {field_name} {value!r}: must be a DNS-1123 label")
        if not self.domains:
            raise InputError(f"route {self.key}: domains is empty; give the app at least one")
        for domain in self.domains:
            if not is_domain(domain):
                raise InputError(
                    f"route domain {domain!r}: must be a lowercase host name "
                    "(letters, digits, '-', '.')"
                )
        for upstream in self.upstreams:
            if not check_upstream(upstream):
                raise InputError(f"route upstream {upstream!r}: must be an IPv4 address and port")
        for port_name, port in self.node_ports.items():
            if port_name not in PORT_NAMES or not 0 < int(port) < 65536:
                raise InputError(f"route port {port_name}={port}: must be http/https/ssh, 1-65535")
        if self.revision < 0:
            raise InputError(f"route revision {self.revision}: must be 0 or more")
        if self.canary is not None:
            self.canary.validate()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "domains": list(self.domains),
            "upstreams": list(self.upstreams),
            "revision": self.revision,
        }
        for port_name in PORT_NAMES:
            if port_name in self.node_ports:
                data[f"{port_name}_port"] = int(self.node_ports[port_name])
        if self.canary is not None:
            data["canary"] = self.canary.to_dict()
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, key: str, raw: str) -> Route:
        """Parse a stored value; the key decides namespace and name. ValueError if unreadable."""
        where = split_route_key(key)
        if where is None:
            raise ValueError(f"{key} is not /devnginx/<namespace>/<name>")
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError(f"{key}: the value is not a JSON object")
        ports = {p: int(data[f"{p}_port"]) for p in PORT_NAMES if data.get(f"{p}_port")}
        # Routes written before 0.2 kept the NodePorts in one "ports" map.
        for p, v in (data.get("ports") or {}).items():
            if p in PORT_NAMES:
                ports.setdefault(p, int(v))
        canary = Canary.from_dict(data["canary"]) if data.get("canary") else None
        return cls(
            where[0],
            where[1],
            tuple(str(d) for d in data.get("domains") or ()),
            tuple(str(u) for u in data.get("upstreams") or ()),
            ports,
            int(data.get("revision") or 0),
            canary,
        )

    def with_upstreams(self, upstreams: tuple[str, ...], node_ports: Mapping[str, int]) -> Route:
        return replace(self, upstreams=upstreams, node_ports=dict(node_ports))

    def same_as(self, other: Route) -> bool:
        return self.to_dict() == other.to_dict()


@dataclass(frozen=True)
class StoredRoute:
    """A route as read from the registry, with the version a compare-and-swap write needs
    (etcd v3: the key's mod_revision; v2: its modifiedIndex)."""

    route: Route
    version: int
