"""Domain discovery: where an app's routes are registered for the nginx edge.

The production registry is etcd: one key per app, ``/devnginx/<namespace>/<name>``, holding
JSON with the app's domains and upstreams (node IP:NodePort); confd renders nginx from it.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pysteps.errors import InputError, ServiceError
from pysteps.names import is_dns_label, is_domain

ROUTE_PREFIX = "/devnginx"


@dataclass(frozen=True)
class Route:
    namespace: str
    name: str
    domains: tuple[str, ...]
    upstreams: tuple[str, ...]
    node_ports: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{ROUTE_PREFIX}/{self.namespace}/{self.name}"

    def validate(self) -> None:
        """Refuse anything nginx must never see: the edge's config is rendered from these values."""
        for field_name, value in (("namespace", self.namespace), ("name", self.name)):
            if not is_dns_label(value):
                raise InputError(f"route {field_name} {value!r}: must be a DNS-1123 label")
        for domain in self.domains:
            if not is_domain(domain):
                raise InputError(f"route domain {domain!r}: must be a lowercase host name")
        for upstream in self.upstreams:
            host, _, port = upstream.rpartition(":")
            try:
                ipaddress.IPv4Address(host)
                ok = port.isdigit() and 0 < int(port) < 65536
            except ValueError:
                ok = False
            if not ok:
                raise InputError(f"route upstream {upstream!r}: must be an IPv4 address and port")

    def to_json(self) -> str:
        return json.dumps(
            {
                "namespace": self.namespace,
                "name": self.name,
                "domains": list(self.domains),
                "upstreams": list(self.upstreams),
                "ports": self.node_ports,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, raw: str) -> Route:
        data = json.loads(raw)
        return cls(
            data["namespace"],
            data["name"],
            tuple(data.get("domains") or ()),
            tuple(data.get("upstreams") or ()),
            dict(data.get("ports") or {}),
        )


class RouteRegistry(Protocol):
    """Where routes live. `observable` is False when `get` cannot tell what is registered."""

    observable: bool

    def get(self, namespace: str, name: str) -> Route | None: ...

    def register(self, route: Route) -> None: ...

    def unregister(self, namespace: str, name: str) -> bool: ...


class LogRouteRegistry:
    """No registry configured: say plainly what would have been registered."""

    observable = False

    def __init__(self, log: Callable[[str], None] = print) -> None:
        self.log = log

    def get(self, namespace: str, name: str) -> Route | None:
        return None

    def register(self, route: Route) -> None:
        self.log(
            f"no route registry configured (PYSTEPS_ETCD_URL): would register {route.key} = "
            f"{route.to_json()}"
        )

    def unregister(self, namespace: str, name: str) -> bool:
        self.log(f"no route registry configured: would remove {ROUTE_PREFIX}/{namespace}/{name}")
        return False


class EtcdRouteRegistry:
    """Routes in etcd through its v3 JSON gateway (no gRPC stack needed)."""

    observable = True

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    @classmethod
    def from_env(cls) -> EtcdRouteRegistry | None:
        url = os.environ.get("PYSTEPS_ETCD_URL")
        return cls(url) if url else None

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import requests

        try:
            resp = requests.post(f"{self.url}/v3/{path}", json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ServiceError(
                f"cannot reach etcd at {self.url}: {type(exc).__name__}; check PYSTEPS_ETCD_URL"
            ) from None
        if resp.status_code != 200:
            raise ServiceError(f"etcd at {self.url} answered {resp.status_code} to {path}")
        return dict(resp.json())

    @staticmethod
    def _b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    def get(self, namespace: str, name: str) -> Route | None:
        key = f"{ROUTE_PREFIX}/{namespace}/{name}"
        data = self._call("kv/range", {"key": self._b64(key)})
        for kv in data.get("kvs") or []:
            try:
                return Route.from_json(base64.b64decode(kv["value"]).decode())
            except (ValueError, KeyError):
                return None  # unreadable: treat as missing so the next deploy rewrites it
        return None

    def register(self, route: Route) -> None:
        route.validate()
        self._call("kv/put", {"key": self._b64(route.key), "value": self._b64(route.to_json())})

    def unregister(self, namespace: str, name: str) -> bool:
        key = f"{ROUTE_PREFIX}/{namespace}/{name}"
        data = self._call("kv/deleterange", {"key": self._b64(key)})
        return int(data.get("deleted", 0)) > 0
