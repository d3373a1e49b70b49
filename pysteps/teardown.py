"""Management operations on a live app: destroying it, rolling it back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pysteps.clients.kube import KubeApi
from pysteps.deploy import Services
from pysteps.errors import PreconditionError
from pysteps.lock import LEASE_PREFIX, DeployLock, LockedKube
from pysteps.manifests import ANN_CODE_PATH, ANN_DOMAINS, ANN_MODE
from pysteps.ownership import AppObjects, find_app, owned_by
from pysteps.rollout import RolloutOutcome
from pysteps.routing import restore_route
from pysteps.workloads import Workloads, app_selector, rc_revision


def destroy_app(
    services: Services, namespace: str, name: str, purge_code: bool, lock_wait: float = 0.0
) -> list[str]:
    """Delete what the app's own objects record as its own; PreconditionError if it has none.

    Holds the app's lock throughout (a deploy in progress is not destroyed under its feet);
    the lease goes with the lock's release. The code directory is purged only when the
    workload records one (a code-mode app) under the app's namespace.
    """
    app = find_app(services.kube, namespace, name)
    if not app.exists:
        raise PreconditionError(
            f"{namespace}/{name}: no such app (no workload, Service or Secret labelled as "
            "its own); nothing removed"
        )
    lock = DeployLock(services.kube, namespace, name)
    lock.acquire(lock_wait)
    try:
        kube = LockedKube(services.kube, lock)
        removed = _remove(services, kube, lock, app, purge_code)
    finally:
        lock.release()
    # The app's canary (pysteps.canary) is the app's too; a namesake app is not.
    from pysteps.canary import LABEL_CANARY_OF, canary_name

    canary_svc = services.kube.get("Service", namespace, canary_name(name))
    if canary_svc and (canary_svc["metadata"].get("labels") or {}).get(LABEL_CANARY_OF) == name:
        removed += destroy_app(services, namespace, canary_name(name), purge_code, lock_wait)
    return removed


def _remove(
    services: Services, kube: KubeApi, lock: DeployLock, app: AppObjects, purge_code: bool
) -> list[str]:
    ns, name = app.namespace, app.name
    selector = {**app_selector(name)}
    removed: list[str] = []
    if app.deployment is not None and kube.delete("Deployment", ns, name):
        removed.append(f"Deployment {ns}/{name}")
    for rc in app.controllers:
        rc_name = rc["metadata"]["name"]
        kube.patch("ReplicationController", ns, rc_name, {"spec": {"replicas": 0}})
        if kube.delete("ReplicationController", ns, rc_name):
            removed.append(f"ReplicationController {ns}/{rc_name}")
    for kind in ("ReplicaSet", "Pod"):
        for obj in kube.list(kind, ns, selector):
            if owned_by(obj, name) and kube.delete(kind, ns, obj["metadata"]["name"]):
                removed.append(f"{kind} {ns}/{obj['metadata']['name']}")
    if app.service is not None and kube.delete("Service", ns, name):
        removed.append(f"Service {ns}/{name}")
    if app.secret is not None and kube.delete("Secret", ns, app.secret["metadata"]["name"]):
        removed.append(f"Secret {ns}/{app.secret['metadata']['name']}")
    lock.check()
    if services.routes.delete(ns, name):
        removed.append(f"route devnginx/{ns}/{name}")
    if purge_code:
        path = app.code_path
        if path is None:
            removed.append(
                "no code directory purged: the app records none "
                f"({'image' if app.mode == 'image' else 'no code-mode workload'})"
            )
        else:
            lock.check()
            if services.code.purge(path):
                removed.append(f"code directory {path} on volume {services.code.volume}")
    removed.append(f"Lease {ns}/{LEASE_PREFIX}{name} (on release)")
    return removed


def rollback_app(
    services: Services,
    log: Callable[[str], None],
    namespace: str,
    name: str,
    to_revision: int | None,
    timeout: float,
    repo: Path | None = None,
) -> RolloutOutcome:
    """Roll the workload back; in code mode the code comes back with it.

    Pinned apps (code.restart: rolling) name their release in the pod template, so the
    revision brings its own code; its release must still be on the volume (or be rebuilt from
    the git checkout REPO), or nothing is changed. Apps that read `current` (restart: none)
    go back one release on the volume.
    """
    workloads = Workloads(services.kube, log)
    if workloads.observe(namespace, name) is None:
        raise PreconditionError(f"{namespace}/{name}: no such app")
    dep_or_rc = _workload_object(services, namespace, name)
    ann = dep_or_rc["metadata"].get("annotations") or {}
    code_mode = ann.get(ANN_MODE) == "code"
    code_path = ann.get(ANN_CODE_PATH)
    if code_mode and not code_path:  # never guess the directory from the name: it may be another's
        raise PreconditionError(f"{namespace}/{name}: its workload records no code path")
    target = workloads.rollback_target(namespace, name, to_revision)
    code_target = None
    if code_mode and code_path:
        releases = services.code.releases(code_path)
        code_target = target.code_commit
        if code_target is not None and code_target not in releases and repo is not None:
            wl = workloads.observe(namespace, name)
            protect = wl.code_commits if wl else ()
            # keep: the spec's value is not recorded on the cluster; releases named by kept
            # revisions stay whatever it is.
            services.code.sync(code_path, repo, code_target, 5, switch=False, protect=protect)
            log(f"release {code_target[:12]} was gone from the volume: rebuilt from {repo}")
            releases = services.code.releases(code_path)
        if code_target is not None and code_target not in releases:
            raise PreconditionError(
                f"{namespace}/{name}: revision {target.number} runs code release "
                f"{code_target[:12]}, which is no longer on volume {services.code.volume} "
                f"({code_path}); nothing was changed. Pass --repo with a checkout that has "
                "the commit to rebuild it"
            )
        if code_target is None:
            # Apps that reload themselves carry no release in the pod template:
            # go back one release on the volume.
            current = services.code.deployed_commit(code_path)
            older = releases[: releases.index(current)] if current in releases else []
            if not older:
                raise PreconditionError(f"{namespace}/{name}: no earlier code release to return to")
            code_target = older[-1]
    outcome = workloads.rollback(namespace, name, timeout, target=target)
    if code_path and code_target is not None and outcome.ok:
        if services.code.deployed_commit(code_path) != code_target:
            services.code.switch(code_path, code_target)
        log(f"code of {name} switched to {code_target[:12]}")
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
