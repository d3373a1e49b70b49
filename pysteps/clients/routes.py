"""The route registry: where routes live (etcd), read and written through maintained clients.

etcd v3 through `etcd3gw` (its JSON gateway, the API confd's etcd backend watches) and etcd v2
through `python-etcd` (clusters like the original platform: etcd 3.x with --enable-v2). Both
keep the same keys and values (pysteps.routes). Every write is compare-and-swap on the key's
version: two writers never silently overwrite each other; the loser gets RouteConflict.

Configuration (environment):
  PYSTEPS_ETCD_URL        endpoints, comma-separated (http:// or https://); unset: routes logged
  PYSTEPS_ETCD_API        v3 (default) or v2
  PYSTEPS_ETCD_CA_CERT    CA bundle to verify an https endpoint
  PYSTEPS_ETCD_CERT, PYSTEPS_ETCD_KEY   TLS client certificate and key
  PYSTEPS_ETCD_USERNAME, PYSTEPS_ETCD_PASSWORD   etcd auth (the password is never printed)
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from pysteps.errors import InputError, ServiceError
from pysteps.routes import ROUTE_PREFIX, Route, RouteConflict, StoredRoute, route_key

API_VERSIONS = ("v3", "v2")
T = TypeVar("T")


class RouteRegistry(Protocol):
    """Where routes live. `observable` is False when reads cannot tell what is registered."""

    observable: bool

    def describe(self) -> str: ...

    def get(self, namespace: str, name: str) -> StoredRoute | None: ...

    def list(self, namespace: str | None = None) -> list[StoredRoute]:
        """Every readable route (under one namespace), in one request."""
        ...

    def put(self, route: Route, expected: int | None) -> int:
        """Write ROUTE if its key is still at version EXPECTED (None: only if absent)."""
        ...

    def delete(self, namespace: str, name: str, expected: int | None = None) -> bool:
        """Remove the key (only if still at version EXPECTED, when given); False if absent."""
        ...


def _conflict(key: str) -> RouteConflict:
    return RouteConflict(
        f"route {key} was changed by another writer (a deploy or routes sync) while pysteps "
        "wrote it; nothing was written: rerun to apply on top of the new value"
    )


@dataclass(frozen=True)
class EtcdConfig:
    """How to reach etcd, from PYSTEPS_ETCD_* variables; validated before any request."""

    endpoints: tuple[str, ...]
    api: str = "v3"
    ca_cert: str | None = None
    cert: str | None = None
    key: str | None = None
    username: str | None = None
    password: str | None = None
    timeout: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EtcdConfig | None:
        env = os.environ if env is None else env
        raw = env.get("PYSTEPS_ETCD_URL", "").strip()
        if not raw:
            return None
        endpoints = tuple(e.strip().rstrip("/") for e in raw.split(",") if e.strip())
        for endpoint in endpoints:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
                raise InputError(
                    f"PYSTEPS_ETCD_URL: {endpoint!r} is not http(s)://HOST:PORT; "
                    "give comma-separated endpoints"
                )
            try:
                parts.port  # noqa: B018 (raises ValueError on a bad port)
            except ValueError:
                raise InputError(f"PYSTEPS_ETCD_URL: {endpoint!r} has a bad port") from None
        api = env.get("PYSTEPS_ETCD_API", "v3").strip() or "v3"
        if api not in API_VERSIONS:
            raise InputError(f"PYSTEPS_ETCD_API={api!r}: must be v3 or v2")
        cert, key = env.get("PYSTEPS_ETCD_CERT") or None, env.get("PYSTEPS_ETCD_KEY") or None
        if bool(cert) != bool(key):
            raise InputError("PYSTEPS_ETCD_CERT and PYSTEPS_ETCD_KEY: set both, or neither")
        user, password = env.get("PYSTEPS_ETCD_USERNAME") or None, env.get("PYSTEPS_ETCD_PASSWORD")
        if password and not user:
            raise InputError("PYSTEPS_ETCD_PASSWORD is set without PYSTEPS_ETCD_USERNAME")
        return cls(
            endpoints, api, env.get("PYSTEPS_ETCD_CA_CERT") or None, cert, key, user, password
        )


def route_registry_from_env(log: Callable[[str], None] = print) -> RouteRegistry:
    """The configured registry; without PYSTEPS_ETCD_URL one that only logs what it would do."""
    config = EtcdConfig.from_env()
    if config is None:
        return LogRouteRegistry(log)
    if config.api == "v2":
        return EtcdV2RouteRegistry(config)
    return EtcdV3RouteRegistry(config)


class LogRouteRegistry:
    """No registry configured: say plainly what would have been registered."""

    observable = False

    def __init__(self, log: Callable[[str], None] = print) -> None:
        self.log = log

    def describe(self) -> str:
        return "no route registry (PYSTEPS_ETCD_URL unset)"

    def get(self, namespace: str, name: str) -> StoredRoute | None:
        return None

    def list(self, namespace: str | None = None) -> list[StoredRoute]:
        return []

    def put(self, route: Route, expected: int | None) -> int:
        self.log(
            f"no route registry configured (PYSTEPS_ETCD_URL): would register {route.key} = "
            f"{route.to_json()}"
        )
        return 0

    def delete(self, namespace: str, name: str, expected: int | None = None) -> bool:
        self.log(f"no route registry configured: would remove {route_key(namespace, name)}")
        return False


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _parse(key: str, raw: bytes | str, version: int) -> StoredRoute | None:
    text = raw.decode() if isinstance(raw, bytes) else raw
    try:
        return StoredRoute(Route.from_json(key, text), version)
    except (ValueError, TypeError, KeyError):
        return None  # not ours to read; routes sync and the template leave it alone


class EtcdV3RouteRegistry:
    """Routes through etcd's v3 API (JSON gateway), with etcd3gw."""

    observable = True

    def __init__(self, config: EtcdConfig) -> None:
        self.config = config
        self._clients: list[Any] | None = None

    def describe(self) -> str:
        return f"etcd v3 at {', '.join(self.config.endpoints)}"

    def _make_clients(self) -> list[Any]:
        import requests
        from etcd3gw.client import Etcd3Client

        clients = []
        for endpoint in self.config.endpoints:
            parts = urlsplit(endpoint)
            session = requests.Session()
            # Straight to etcd: no proxy from the environment, and no REQUESTS_CA_BUNDLE,
            # which requests would put above the session's own CA (its issue #3829).
            session.trust_env = False
            if self.config.ca_cert:
                session.verify = self.config.ca_cert
            if self.config.cert and self.config.key:
                session.cert = (self.config.cert, self.config.key)
            client = Etcd3Client(
                host=parts.hostname or "",
                port=parts.port or (443 if parts.scheme == "https" else 2379),
                protocol=parts.scheme,
                timeout=self.config.timeout,
                api_path="/v3/",
                session=session,
            )
            clients.append(client)
        return clients

    def _authenticate(self, client: Any) -> None:
        # etcd3gw has no auth call of its own: the gateway's /v3/auth/authenticate gives a
        # token that every later request carries in the Authorization header.
        if not self.config.username or "Authorization" in client.session.headers:
            return
        answer = client.post(
            client.get_url("/auth/authenticate"),
            json={"name": self.config.username, "password": self.config.password or ""},
        )
        client.session.headers["Authorization"] = answer["token"]

    def _run(self, op: Callable[[Any], T]) -> T:
        """OP on the first endpoint that answers (the next one when one cannot be reached);
        errors become one-line ServiceErrors."""
        from etcd3gw import exceptions as etcd_errors

        if self._clients is None:
            self._clients = self._make_clients()
        last = ""
        for endpoint, client in zip(self.config.endpoints, self._clients):
            try:
                self._authenticate(client)
                return op(client)
            except etcd_errors.ConnectionFailedError:
                last = f"cannot reach etcd at {endpoint}"
                continue
            except etcd_errors.Etcd3Exception as exc:
                detail = (exc.detail_text or "").strip()[:200]
                if "Authorization" not in client.session.headers and self.config.username:
                    raise ServiceError(
                        f"etcd at {endpoint} refused the login of PYSTEPS_ETCD_USERNAME: "
                        f"{type(exc).__name__} {detail}"
                    ) from None
                raise ServiceError(
                    f"etcd at {endpoint} failed: {type(exc).__name__} {detail}"
                ) from None
        raise ServiceError(f"{last}; check PYSTEPS_ETCD_URL")

    def get(self, namespace: str, name: str) -> StoredRoute | None:
        key = route_key(namespace, name)
        found = self._run(lambda client: client.get(key, metadata=True))
        for value, meta in found:
            return _parse(key, value, int(meta["mod_revision"]))
        return None

    def list(self, namespace: str | None = None) -> list[StoredRoute]:
        prefix = route_key(namespace, "") if namespace else f"{ROUTE_PREFIX}/"
        found = self._run(
            lambda client: client.get_prefix(prefix, sort_order="ascend", sort_target="key")
        )
        routes = []
        for value, meta in found:
            key = meta["key"].decode() if isinstance(meta["key"], bytes) else str(meta["key"])
            stored = _parse(key, value, int(meta["mod_revision"]))
            if stored is not None:
                routes.append(stored)
        return routes

    def put(self, route: Route, expected: int | None) -> int:
        route.validate()
        key = _b64(route.key)
        compare: dict[str, Any] = (
            {"key": key, "result": "EQUAL", "target": "CREATE", "create_revision": 0}
            if expected is None
            else {"key": key, "result": "EQUAL", "target": "MOD", "mod_revision": expected}
        )
        txn = {
            "compare": [compare],
            "success": [{"request_put": {"key": key, "value": _b64(route.to_json())}}],
            "failure": [],
        }
        answer = self._run(lambda client: client.transaction(txn))
        if not answer.get("succeeded"):
            raise _conflict(route.key)
        return int(answer["header"]["revision"])

    def delete(self, namespace: str, name: str, expected: int | None = None) -> bool:
        key = _b64(route_key(namespace, name))
        exists = {"key": key, "result": "GREATER", "target": "CREATE", "create_revision": 0}
        compare: list[dict[str, Any]] = [exists]
        if expected is not None:
            compare.append(
                {"key": key, "result": "EQUAL", "target": "MOD", "mod_revision": expected}
            )
        txn = {
            "compare": compare,
            "success": [{"request_delete_range": {"key": key}}],
            "failure": [{"request_range": {"key": key, "count_only": True}}],
        }
        answer = self._run(lambda client: client.transaction(txn))
        if answer.get("succeeded"):
            return True
        # Failed: either the key is gone (nothing to delete) or it changed (a conflict).
        counted = (answer.get("responses") or [{}])[0].get("response_range", {})
        if expected is not None and int(counted.get("count", 0)) > 0:
            raise _conflict(route_key(namespace, name))
        return False


class EtcdV2RouteRegistry:
    """Routes through etcd's v2 keys API, with python-etcd (etcd <= 3.5 with --enable-v2)."""

    observable = True

    def __init__(self, config: EtcdConfig) -> None:
        self.config = config
        self._client: Any = None

    def describe(self) -> str:
        return f"etcd v2 at {', '.join(self.config.endpoints)}"

    def _etcd(self) -> Any:
        if self._client is None:
            import etcd

            hosts = []
            for endpoint in self.config.endpoints:
                parts = urlsplit(endpoint)
                hosts.append((parts.hostname or "", parts.port or 2379))
            protocol = urlsplit(self.config.endpoints[0]).scheme
            cert = (self.config.cert, self.config.key) if self.config.cert else None
            self._client = etcd.Client(
                host=tuple(hosts) if len(hosts) > 1 else hosts[0][0],
                port=hosts[0][1],
                protocol=protocol,
                ca_cert=self.config.ca_cert,
                cert=cert,
                username=self.config.username,
                password=self.config.password,
                read_timeout=self.config.timeout,
                allow_reconnect=len(hosts) > 1,
            )
        return self._client

    @contextmanager
    def _errors(self) -> Iterator[None]:
        import etcd

        try:
            yield
        except etcd.EtcdConnectionFailed:
            raise ServiceError(
                f"cannot reach etcd (v2 API) at {', '.join(self.config.endpoints)}; "
                "check PYSTEPS_ETCD_URL, and that etcd runs with --enable-v2"
            ) from None
        except etcd.EtcdException as exc:
            if isinstance(exc, (etcd.EtcdKeyError, etcd.EtcdCompareFailed)):
                raise
            raise ServiceError(f"etcd v2 failed: {type(exc).__name__} {str(exc)[:200]}") from None

    def get(self, namespace: str, name: str) -> StoredRoute | None:
        import etcd

        key = route_key(namespace, name)
        try:
            with self._errors():
                node = self._etcd().read(key)
        except etcd.EtcdKeyNotFound:
            return None
        if node.dir:
            return None
        return _parse(key, node.value or "", int(node.modifiedIndex))

    def list(self, namespace: str | None = None) -> list[StoredRoute]:
        import etcd

        prefix = route_key(namespace, "").rstrip("/") if namespace else ROUTE_PREFIX
        try:
            with self._errors():
                tree = self._etcd().read(prefix, recursive=True, sorted=True)
        except etcd.EtcdKeyNotFound:
            return []
        routes = []
        for node in tree.leaves:
            if node.dir or node.value is None:
                continue
            stored = _parse(node.key, node.value, int(node.modifiedIndex))
            if stored is not None:
                routes.append(stored)
        return routes

    def put(self, route: Route, expected: int | None) -> int:
        import etcd

        route.validate()
        condition: dict[str, Any] = (
            {"prevExist": False} if expected is None else {"prevIndex": expected}
        )
        try:
            with self._errors():
                written = self._etcd().write(route.key, route.to_json(), **condition)
        except (etcd.EtcdAlreadyExist, etcd.EtcdCompareFailed, etcd.EtcdKeyNotFound):
            raise _conflict(route.key) from None
        return int(written.modifiedIndex)

    def delete(self, namespace: str, name: str, expected: int | None = None) -> bool:
        import etcd

        key = route_key(namespace, name)
        condition: dict[str, Any] = {} if expected is None else {"prevIndex": expected}
        try:
            with self._errors():
                self._etcd().delete(key, **condition)
        except etcd.EtcdKeyNotFound:
            return False
        except etcd.EtcdCompareFailed:
            raise _conflict(key) from None
        return True
