"""The app's NodePort Service: observe it, create it, or update its ports in place."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pysteps import manifests
from pysteps.clients.kube import KubeApi
from pysteps.spec import AppSpec
from pysteps.state import ObservedService


def service_from_object(svc: dict[str, Any]) -> ObservedService:
    return ObservedService(
        ports=tuple(
            (str(p.get("name", "")), int(p["port"]), int(p.get("nodePort", 0)))
            for p in svc["spec"].get("ports") or []
        )
    )


def observe_service(kube: KubeApi, namespace: str, name: str) -> ObservedService | None:
    svc = kube.get("Service", namespace, name)
    return service_from_object(svc) if svc else None


def ensure_service(kube: KubeApi, spec: AppSpec, log: Callable[[str], None]) -> ObservedService:
    """Create the NodePort Service, or update its ports keeping the NodePorts it has."""
    live = kube.get("Service", spec.namespace, spec.name)
    if live is None:
        created = kube.create(manifests.service(spec))
        log(f"created Service {spec.namespace}/{spec.name}")
        return service_from_object(created)
    desired = manifests.service(spec, service_from_object(live).node_ports())
    merged = copy.deepcopy(live)
    merged["spec"]["ports"] = desired["spec"]["ports"]
    merged["spec"]["selector"] = desired["spec"]["selector"]
    merged.pop("status", None)
    updated = kube.replace(merged)
    log(f"updated Service {spec.namespace}/{spec.name}")
    return service_from_object(updated)
