"""Management operations on a live app: destroying it, rolling it back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pysteps.deploy import Services
from pysteps.errors import PreconditionError
from pysteps.lock import LEASE_PREFIX
from pysteps.manifests import ANN_CODE_PATH, ANN_DOMAINS, ANN_MODE
from pysteps.rollout import RolloutOutcome
from pysteps.routing import restore_route
from pysteps.workloads import Workloads, app_selector, rc_revision


def destroy_app(services: Services, namespace: str, name: str, purge_code: bool) -> list[str]:
    """Delete the workload, its pods, the Service, the route, the lock and (optionally) the code."""
    kube = services.kube
    code_path = name
    candidates = [
        kube.get("Deployment", namespace, name),
        *kube.list("ReplicationController", namespace, app_selector(name)),
    ]
    for obj in candidates:
        if obj:
            code_path = (obj["metadata"].get("annotations") or {}).get(ANN_CODE_PATH, code_path)
    removed = Workloads(kube, log=lambda _line: None).destroy(namespace, name)
    if services.routes.delete(namespace, name):
        removed.append(f"route devnginx/{namespace}/{name}")
    if kube.delete("Lease", namespace, LEASE_PREFIX + name):
        removed.append(f"Lease {namespace}/{LEASE_PREFIX}{name}")
    if purge_code and services.code.purge(code_path):
        removed.append(f"code directory {code_path} on volume {services.code.volume}")
    # The app's canary (pysteps.canary) is the app's too; a namesake app is not.
    from pysteps.canary import LABEL_CANARY_OF, canary_name

    canary_svc = kube.get("Service", namespace, canary_name(name))
    if canary_svc and (canary_svc["metadata"].get("labels") or {}).get(LABEL_CANARY_OF) == name:
        removed += destroy_app(services, namespace, canary_name(name), purge_code)
    return removed


def rollback_app(
    services: Services,
    log: Callable[[str], None],
    namespace: str,
    name: str,
    to_revision: int | None,
    timeout: float,
) -> RolloutOutcome:
    """Roll the workload back; in code mode switch the code to the matching release too."""
    workloads = Workloads(services.kube, log)
    before = workloads.observe(namespace, name)
    if before is None:
        raise PreconditionError(f"{namespace}/{name}: no such app")
    dep_or_rc = _workload_object(services, namespace, name)
    ann = dep_or_rc["metadata"].get("annotations") or {}
    code_mode = ann.get(ANN_MODE) == "code"
    outcome = workloads.rollback(namespace, name, timeout, to_revision)
    if code_mode and outcome.ok:
        after = workloads.observe(namespace, name)
        code_path = ann.get(ANN_CODE_PATH, name)
        target = after.code_commit if after else None
        if target is None:
            # Apps that reload themselves carry no code commit in the pod template:
            # go back one release on the volume.
            releases = services.code.releases(code_path)
            current = services.code.deployed_commit(code_path)
            older = releases[: releases.index(current)] if current in releases else []
            if not older:
                raise PreconditionError(f"{namespace}/{name}: no earlier code release to return to")
            target = older[-1]
        services.code.switch(code_path, target)
        log(f"code of {name} switched to {target[:12]}")
    if outcome.ok:
        # Routes are versioned with the release: the restored revision's domains come back
        # with it (its workload annotation), on today's edge nodes and NodePorts.
        restored = _workload_object(services, namespace, name)
        domains = [d for d in _annotations(restored).get(ANN_DOMAINS, "").split(",") if d]
        after = workloads.observe(namespace, name)
        restore_route(
            services.kube,
            services.routes,
            namespace,
            name,
            domains,
            after.revision if after else 0,
            log,
        )
    return outcome


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj["metadata"].get("annotations") or {})


def _workload_object(services: Services, namespace: str, name: str) -> dict[str, Any]:
    dep = services.kube.get("Deployment", namespace, name)
    if dep is not None:
        return dep
    rcs = sorted(
        services.kube.list("ReplicationController", namespace, app_selector(name)), key=rc_revision
    )
    return rcs[-1]
