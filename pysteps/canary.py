"""Canary (gray) releases by weight: the last stage of the delivery flow.

`pysteps deploy --canary WEIGHT` runs the new version as a second, smaller workload of the app,
`<name>-canary`, with its own NodePort Service, and adds it to the app's route with WEIGHT
percent of the requests (the route's `canary` member; nginx weights its servers). `promote`
rolls the main workload to the canary's commit (a normal deploy: image by digest, code synced),
then removes the canary from the route and the cluster; `abort` removes it from the route first
(100 % old at once), then from the cluster.

The canary is a workload of its own name, not the app's pods with one more label: a Service
selector is equality-only, so a canary carrying the app's selector labels would also receive
the main NodePort's traffic and the weight would mean nothing. Its objects carry
`pysteps.io/track: canary` and `pysteps.io/canary-of: <name>`; `pysteps list` shows it as
`<name>-canary`, `pysteps status` and `pysteps canary status` show the weight.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pysteps.console import Console
from pysteps.deploy import DeployEngine, DeployOptions, DeployResult, Services
from pysteps.errors import InputError, PreconditionError
from pysteps.manifests import ANN_COMMIT, Release
from pysteps.routes import Canary, Route
from pysteps.routing import (
    app_alive_on,
    app_edge_addresses,
    canary_on_nodes,
    managed_service_ports,
    register_route,
)
from pysteps.spec import AppSpec
from pysteps.workloads import Workloads, app_selector, rc_revision

LABEL_TRACK = "pysteps.io/track"
LABEL_CANARY_OF = "pysteps.io/canary-of"
SUFFIX = "-canary"


def canary_name(name: str) -> str:
    """`<name>-canary`, shortened to stay a DNS-1123 label."""
    return name[: 63 - len(SUFFIX)].rstrip("-") + SUFFIX


def canary_spec(spec: AppSpec, replicas: int | None = None) -> AppSpec:
    """The canary's own spec: its own name, workload, Service and code directory; no domains."""
    name = canary_name(spec.name)
    update: dict[str, Any] = {
        "name": name,
        "domains": [],
        "replicas": replicas if replicas is not None else 1,
    }
    if spec.mode == "code":
        head, _, last = spec.code_path.rpartition("/")
        own = canary_name(last)
        update["code"] = spec.code.model_copy(update={"path": f"{head}/{own}" if head else own})
    return spec.model_copy(update=update)


def _main_route(services: Services, namespace: str, name: str) -> tuple[Route, int]:
    stored = services.routes.get(namespace, name)
    if stored is None:
        raise PreconditionError(
            f"{namespace}/{name} has no route: deploy it (with domains) before a canary"
        )
    return stored.route, stored.version


def deploy_canary(
    services: Services,
    console: Console,
    spec: AppSpec,
    release: Release,
    weight: int,
    options: DeployOptions,
) -> DeployResult:
    """Run RELEASE as the app's canary and give it WEIGHT percent of the app's requests."""
    if not 1 <= weight <= 99:
        raise InputError(f"--canary {weight}: give a percentage from 1 to 99")
    engine = DeployEngine(services, console)
    if engine.workloads.observe(spec.namespace, spec.name) is None:
        raise PreconditionError(
            f"{spec.namespace}/{spec.name} does not run yet: deploy it before a canary"
        )
    if not options.dry_run:
        _main_route(services, spec.namespace, spec.name)  # fail before building anything
    cspec = canary_spec(spec)
    result = engine.deploy(cspec, release, options)
    if options.dry_run:
        return result
    _label_canary(services, cspec, spec.name)
    route = set_canary_weight(services, console, spec.namespace, spec.name, weight, release.commit)
    assert route.canary is not None
    console(
        f"canary {cspec.name} takes {weight} % of {', '.join(route.domains)} "
        f"({', '.join(route.canary.servers) or 'no Ready edge node yet'})"
    )
    result.urls = [f"http://{d}/" for d in route.domains]
    return result


def set_canary_weight(
    services: Services,
    console: Callable[[str], None],
    namespace: str,
    name: str,
    weight: int,
    commit: str | None = None,
) -> Route:
    """Point the app's route's canary at today's nodes with WEIGHT (compare-and-swap)."""
    route, _version = _main_route(services, namespace, name)
    cname = canary_name(name)
    ports = managed_service_ports(services.kube, namespace).get((namespace, cname))
    if not ports:
        raise PreconditionError(f"{namespace}/{cname}: the canary's Service is missing")
    addresses = app_edge_addresses(services.kube, namespace, cname, console)
    previous = route.canary.commit if route.canary else None
    canary = canary_on_nodes(Canary(cname, weight, commit=commit or previous), ports, addresses)
    wanted = replace(route, canary=canary)
    register_route(services.routes, wanted, log=console, alive=app_alive_on(services.kube))
    return wanted


def _label_canary(services: Services, cspec: AppSpec, of: str) -> None:
    labels = {"metadata": {"labels": {LABEL_TRACK: "canary", LABEL_CANARY_OF: of}}}
    kube = services.kube
    kube.patch("Service", cspec.namespace, cspec.name, labels)
    if cspec.kind == "Deployment":
        kube.patch("Deployment", cspec.namespace, cspec.name, labels)
    else:
        for rc in kube.list("ReplicationController", cspec.namespace, app_selector(cspec.name)):
            kube.patch("ReplicationController", cspec.namespace, rc["metadata"]["name"], labels)


def canary_commit(services: Services, namespace: str, name: str) -> str:
    """The commit the app's canary runs (its workload's annotation)."""
    cname = canary_name(name)
    dep = services.kube.get("Deployment", namespace, cname)
    if dep is None:
        rcs = services.kube.list("ReplicationController", namespace, app_selector(cname))
        dep = max(rcs, key=rc_revision) if rcs else None
    commit = ((dep or {}).get("metadata", {}).get("annotations") or {}).get(ANN_COMMIT)
    if not commit:
        raise PreconditionError(f"{namespace}/{name} has no canary running")
    return str(commit)


def promote_canary(
    services: Services,
    console: Console,
    spec: AppSpec,
    options: DeployOptions,
    build_url: str | None = None,
) -> DeployResult:
    """Roll the main workload to the canary's commit, then remove the canary."""
    commit = canary_commit(services, spec.namespace, spec.name)
    console(f"promoting the canary of {spec.namespace}/{spec.name}: commit {commit[:12]}")
    result = DeployEngine(services, console).deploy(spec, Release(commit, build_url), options)
    if not options.dry_run:
        remove_canary(services, console, spec.namespace, spec.name, spec.mode == "code")
    return result


def remove_canary(
    services: Services,
    console: Callable[[str], None],
    namespace: str,
    name: str,
    purge_code: bool,
) -> list[str]:
    """The route without its canary first (100 % main at once), then the canary's objects."""
    from pysteps.teardown import destroy_app

    stored = services.routes.get(namespace, name)
    if stored is not None and stored.route.canary is not None:
        services.routes.put(replace(stored.route, canary=None), stored.version)
        console(f"route {stored.route.key}: canary removed, 100 % to {name}")
    cname = canary_name(name)
    if Workloads(services.kube, log=lambda _l: None).observe(namespace, cname) is None:
        if stored is None or stored.route.canary is None:
            raise PreconditionError(f"{namespace}/{name} has no canary running")
        return []
    removed = destroy_app(services, namespace, cname, purge_code)
    for line in removed:
        console(f"removed {line}")
    return removed


def canary_status(services: Services, namespace: str, name: str) -> dict[str, Any] | None:
    """The running canary: its workload, commit, weight and servers; None when there is none."""
    cname = canary_name(name)
    workload = Workloads(services.kube, log=lambda _l: None).observe(namespace, cname)
    stored = services.routes.get(namespace, name)
    canary = stored.route.canary if stored else None
    if workload is None and canary is None:
        return None
    return {
        "name": cname,
        "of": name,
        "namespace": namespace,
        "commit": workload.commit if workload else None,
        "ready": workload.ready_replicas if workload else 0,
        "desired": workload.replicas if workload else 0,
        "weight": canary.weight if canary else 0,
        "servers": list(canary.servers) if canary else [],
    }
