"""Management operations on a live app: destroying it, rolling it back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pysteps.deploy import Services
from pysteps.errors import PreconditionError
from pysteps.lock import LEASE_PREFIX
from pysteps.manifests import ANN_CODE_PATH, ANN_MODE
from pysteps.rollout import RolloutOutcome
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
    if services.routes.unregister(namespace, name):
        removed.append(f"route devnginx/{namespace}/{name}")
    if kube.delete("Lease", namespace, LEASE_PREFIX + name):
        removed.append(f"Lease {namespace}/{LEASE_PREFIX}{name}")
    if purge_code and services.code.purge(code_path):
        removed.append(f"code directory {code_path} on volume {services.code.volume}")
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
    code_path = ann.get(ANN_CODE_PATH, name)
    target = workloads.rollback_target(namespace, name, to_revision)
    code_target = None
    if code_mode:
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
    if code_target is not None and outcome.ok:
        if services.code.deployed_commit(code_path) != code_target:
            services.code.switch(code_path, code_target)
        log(f"code of {name} switched to {code_target[:12]}")
    return outcome


def _workload_object(services: Services, namespace: str, name: str) -> dict[str, Any]:
    dep = services.kube.get("Deployment", namespace, name)
    if dep is not None:
        return dep
    rcs = sorted(
        services.kube.list("ReplicationController", namespace, app_selector(name)), key=rc_revision
    )
    return rcs[-1]
