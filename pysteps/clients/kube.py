"""The one seam for all Kubernetes I/O: plain dicts in, plain dicts out (through pykube-ng).

Unit tests replace `KubeApi` with an in-memory fake of this same interface; integration tests
use the real control plane of the test bed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pysteps.errors import InputError, PreconditionError, ServiceError


@dataclass(frozen=True)
class KindInfo:
    api_version: str
    plural: str
    namespaced: bool = True


KINDS: dict[str, KindInfo] = {
    "Deployment": KindInfo("apps/v1", "deployments"),
    "ReplicaSet": KindInfo("apps/v1", "replicasets"),
    "ReplicationController": KindInfo("v1", "replicationcontrollers"),
    "Service": KindInfo("v1", "services"),
    "ConfigMap": KindInfo("v1", "configmaps"),
    "Pod": KindInfo("v1", "pods"),
    "Event": KindInfo("v1", "events"),
    "Lease": KindInfo("coordination.k8s.io/v1", "leases"),
    "Namespace": KindInfo("v1", "namespaces", namespaced=False),
    "Node": KindInfo("v1", "nodes", namespaced=False),
}


class Conflict(ServiceError):
    """The object changed under us (409): read it again and retry."""


class AlreadyExists(Conflict):
    """Create found the object already there (409 AlreadyExists)."""


class KubeApi(Protocol):
    """What pysteps needs of a Kubernetes API server."""

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None: ...

    def list(
        self, kind: str, namespace: str | None, selector: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]: ...

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]: ...

    def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]: ...

    def patch(
        self, kind: str, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    def delete(self, kind: str, namespace: str | None, name: str) -> bool: ...

    def pod_logs(
        self, namespace: str, pod: str, container: str, tail_lines: int, previous: bool
    ) -> str: ...


def selector_string(selector: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


class KubeClient:
    """KubeApi over HTTP with pykube-ng's kubeconfig handling (certs, tokens, contexts)."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        import pykube  # lazy: keeps `pysteps --help` instant

        path = kubeconfig or os.environ.get("PYSTEPS_KUBECONFIG") or os.environ.get("KUBECONFIG")
        try:
            config = pykube.KubeConfig.from_file(path) if path else pykube.KubeConfig.from_env()
        except FileNotFoundError:
            where = path or "~/.kube/config"
            raise InputError(
                f"kubeconfig {where} not found; set KUBECONFIG or pass --kubeconfig"
            ) from None
        except Exception as exc:
            raise InputError(f"kubeconfig {path or '(default)'} is not usable: {exc}") from None
        if context:
            config.set_current_context(context)
        self.server = str(config.cluster["server"])
        self.user = str(config.contexts[config.current_context].get("user", "?"))
        self._api = pykube.HTTPClient(config, timeout=30)

    # One request, with the error handling every call shares -------------------------

    def _request(
        self,
        method: str,
        kind: str,
        namespace: str | None,
        name: str = "",
        sub: str = "",
        **kwargs: Any,
    ) -> Any:
        import requests

        info = KINDS[kind]
        url = info.plural + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")
        ns_kw: dict[str, Any] = {}
        if info.namespaced and namespace:
            ns_kw["namespace"] = namespace
        try:
            resp = self._api.request(method, version=info.api_version, url=url, **ns_kw, **kwargs)
        except requests.RequestException as exc:
            raise ServiceError(
                f"cannot reach the Kubernetes API at {self.server}: {type(exc).__name__}; "
                "check the cluster and KUBECONFIG"
            ) from None
        if resp.status_code < 400:
            return resp
        where = f"{kind} {namespace + '/' if namespace and info.namespaced else ''}{name}".strip()
        message = _status_message(resp)
        if resp.status_code == 404:
            return None
        if resp.status_code == 403:
            raise PreconditionError(
                f"user {self.user} may not {method.lower()} {where}: {message}; "
                "ask for a Role with that right"
            )
        if resp.status_code == 401:
            raise PreconditionError(
                f"the cluster at {self.server} rejected the credentials of {self.user}"
            )
        if resp.status_code == 409:
            cls = AlreadyExists if "already exists" in message else Conflict
            raise cls(f"{where}: {message}")
        if resp.status_code in (400, 422):
            raise InputError(f"the cluster refused {where}: {message}")
        raise ServiceError(f"Kubernetes API {resp.status_code} on {where}: {message}")

    # KubeApi ------------------------------------------------------------------------

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        resp = self._request("GET", kind, namespace, name)
        return None if resp is None else dict(resp.json())

    def list(
        self, kind: str, namespace: str | None, selector: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        params = {"labelSelector": selector_string(selector)} if selector else {}
        resp = self._request("GET", kind, namespace, params=params)
        if resp is None:
            return []
        items = resp.json().get("items") or []
        info = KINDS[kind]
        for item in items:  # list responses omit kind/apiVersion on items
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", info.api_version)
        return list(items)

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        resp = self._request("POST", obj["kind"], meta.get("namespace"), json=obj)
        return dict(resp.json())

    def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        resp = self._request("PUT", obj["kind"], meta.get("namespace"), meta["name"], json=obj)
        if resp is None:
            raise Conflict(f"{obj['kind']} {meta['name']} disappeared while being updated")
        return dict(resp.json())

    def patch(
        self, kind: str, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        resp = self._request(
            "PATCH",
            kind,
            namespace,
            name,
            json=patch,
            headers={"Content-Type": "application/merge-patch+json"},
        )
        if resp is None:
            raise PreconditionError(f"{kind} {namespace}/{name} does not exist")
        return dict(resp.json())

    def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        return self._request("DELETE", kind, namespace, name, json=body) is not None

    def pod_logs(
        self, namespace: str, pod: str, container: str, tail_lines: int, previous: bool
    ) -> str:
        params = {"container": container, "tailLines": str(tail_lines)}
        if previous:
            params["previous"] = "true"
        try:
            resp = self._request("GET", "Pod", namespace, pod, sub="log", params=params)
        except (ServiceError, InputError) as exc:
            return f"(logs unavailable: {exc})"
        return "" if resp is None else str(resp.text)

    def server_version(self) -> str:
        resp = self._api.get(version="", base="/version")
        return str(resp.json().get("gitVersion", "?"))


def _status_message(resp: Any) -> str:
    try:
        payload = resp.json()
    except ValueError:
        return (resp.text or "").strip().splitlines()[0][:300] if resp.text else resp.reason
    return str(payload.get("message") or payload.get("reason") or resp.reason)
