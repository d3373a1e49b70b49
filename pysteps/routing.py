"""Routes that follow the cluster: which nodes serve as the edge's upstreams, the route an app
should have, registering it (domain ownership, compare-and-swap), and `routes sync`.

A NodePort answers on every node, so an app's upstreams are every Ready, schedulable node's
InternalIP with the app's NodePort, not the nodes that happen to hold its pods. An optional
node label selector (PYSTEPS_EDGE_NODE_SELECTOR, e.g. `edge=true`) narrows the set.

Deciding is pure (`edge_addresses`, `desired_route`, `plan_route_sync`); `register_route`,
`sync_routes` and `restore_route` read first and then write through the registry.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pysteps.clients.kube import KubeApi
from pysteps.clients.routes import RouteRegistry
from pysteps.errors import InputError, PreconditionError
from pysteps.manifests import LABEL_MANAGED_BY, LABEL_NAME, MANAGED_BY
from pysteps.routes import Canary, Route, RouteConflict, StoredRoute

EDGE_SELECTOR_ENV = "PYSTEPS_EDGE_NODE_SELECTOR"
_LABEL_KEY_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./")


def parse_node_selector(text: str | None) -> dict[str, str]:
    """`key=value,key2=value2` (equality only) into a map; a malformed one is InputError."""
    selector: dict[str, str] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not set(key + value) <= _LABEL_KEY_CHARS or len(value) > 63:
            raise InputError(
                f"{EDGE_SELECTOR_ENV}: {part!r} is not label=value; "
                "give comma-separated label=value pairs, e.g. edge=true"
            )
        selector[key] = value
    return selector


def edge_selector_from_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    return parse_node_selector((os.environ if env is None else env).get(EDGE_SELECTOR_ENV))


def node_serves(node: Mapping[str, Any]) -> bool:
    """Ready and schedulable: a cordoned (drained) node stops being an upstream."""
    if node.get("spec", {}).get("unschedulable"):
        return False
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def node_address(node: Mapping[str, Any]) -> str | None:
    """The node's IPv4 InternalIP, or None."""
    for addr in node.get("status", {}).get("addresses") or []:
        if addr.get("type") == "InternalIP":
            try:
                return str(ipaddress.IPv4Address(str(addr.get("address", ""))))
            except ValueError:
                continue
    return None


def edge_addresses(nodes: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The InternalIPs of the nodes that serve as upstreams, sorted and unique."""
    found = {node_address(n) for n in nodes if node_serves(n)}
    return tuple(sorted((a for a in found if a), key=ipaddress.IPv4Address))


def upstream_port(node_ports: Mapping[str, int]) -> int | None:
    """The NodePort nginx proxies to: the app's http port, else its first one."""
    if node_ports.get("http"):
        return int(node_ports["http"])
    return next((int(p) for p in node_ports.values() if p), None)


def desired_route(
    namespace: str,
    name: str,
    domains: Sequence[str],
    node_ports: Mapping[str, int],
    addresses: Sequence[str],
    revision: int = 0,
    canary: Canary | None = None,
) -> Route:
    port = upstream_port(node_ports)
    upstreams = tuple(f"{a}:{port}" for a in addresses) if port else ()
    ports = {k: int(v) for k, v in node_ports.items() if v}
    return Route(namespace, name, tuple(domains), upstreams, ports, revision, canary)


def canary_on_nodes(
    canary: Canary, node_ports: Mapping[str, int], addresses: Sequence[str]
) -> Canary:
    """The canary's servers on ADDRESSES with its own NodePort."""
    port = upstream_port(node_ports)
    servers = tuple(f"{a}:{port}" for a in addresses) if port else ()
    return replace(canary, servers=servers, http_port=port)


def list_edge_nodes(kube: KubeApi, selector: Mapping[str, str] | None = None) -> list[Any]:
    return kube.list("Node", None, dict(selector) if selector else None)


def app_edge_addresses(
    kube: KubeApi, namespace: str, name: str, log: Callable[[str], None] = print
) -> tuple[str, ...]:
    """The edge addresses for a deploy or rollback of one app.

    A namespace-scoped user may not list Nodes: then the nodes of the app's ready pods stand
    in, said in one line, until `routes sync` (run with a cluster-wide reader) follows the nodes.
    """
    try:
        return edge_addresses(list_edge_nodes(kube, edge_selector_from_env()))
    except PreconditionError:
        from pysteps.rollout import pod_ready

        pods = kube.list("Pod", namespace, {LABEL_NAME: name, LABEL_MANAGED_BY: MANAGED_BY})
        hosts = {str(p.get("status", {}).get("hostIP") or "") for p in pods if pod_ready(p)}
        log(
            "  may not list Nodes: upstreams are the nodes of the app's ready pods until "
            "`pysteps routes sync` runs with a user that may"
        )
        return tuple(sorted((h for h in hosts if h.count(".") == 3), key=ipaddress.IPv4Address))


# Registering ------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainTransfer:
    """A domain taken from another app's route (--take-domains)."""

    domain: str
    owner: StoredRoute


def domain_owners(route: Route, others: Sequence[StoredRoute]) -> list[DomainTransfer]:
    """Domains of ROUTE that another app's route already claims. Pure."""
    claimed: list[DomainTransfer] = []
    for other in others:
        if (other.route.namespace, other.route.name) == (route.namespace, route.name):
            continue
        for domain in route.domains:
            if domain in other.route.domains:
                claimed.append(DomainTransfer(domain, other))
    return claimed


AppAlive = Callable[[Route], bool]


def app_alive_on(kube: KubeApi) -> AppAlive:
    """Whether a route's app still runs: its Service exists and its namespace is not being
    deleted. A route whose app is gone claims nothing (`routes sync` removes it). What the
    user may not read counts as alive: never take a domain on a guess."""

    def alive(route: Route) -> bool:
        try:
            ns = kube.get("Namespace", None, route.namespace)
            if ns is None or ns.get("metadata", {}).get("deletionTimestamp"):
                return False
            return kube.get("Service", route.namespace, route.name) is not None
        except PreconditionError:
            return True

    return alive


def _live_claims(
    route: Route, every: Sequence[StoredRoute], alive: AppAlive | None
) -> tuple[list[DomainTransfer], list[DomainTransfer]]:
    """(claims of apps that run, claims of apps that are gone) on ROUTE's domains."""
    taken = domain_owners(route, every)
    if alive is None:
        return taken, []
    verdict: dict[str, bool] = {}
    for t in taken:
        if t.owner.route.key not in verdict:
            verdict[t.owner.route.key] = alive(t.owner.route)
    return (
        [t for t in taken if verdict[t.owner.route.key]],
        [t for t in taken if not verdict[t.owner.route.key]],
    )


def refuse_claimed_domains(
    registry: RouteRegistry,
    namespace: str,
    name: str,
    domains: Sequence[str],
    alive: AppAlive | None = None,
) -> None:
    """PreconditionError (exit 3) when another running app's route claims one of DOMAINS."""
    if not domains or not registry.observable:
        return
    live, _gone = _live_claims(Route(namespace, name, tuple(domains)), registry.list(), alive)
    if live:
        raise PreconditionError(_claimed_message(live[0], namespace, name))


def _claimed_message(taken: DomainTransfer, namespace: str, name: str) -> str:
    return (
        f"domain {taken.domain} belongs to {taken.owner.route.key}; deploy with "
        f"--take-domains to move it to {namespace}/{name}, or remove it from that app's domains"
    )


def register_route(
    registry: RouteRegistry,
    route: Route,
    take_domains: bool = False,
    log: Callable[[str], None] = print,
    alive: AppAlive | None = None,
) -> bool:
    """Write ROUTE (compare-and-swap on what was read); False when it was already so.

    A domain that another app's route claims is refused (PreconditionError, exit 3) unless
    TAKE_DOMAINS: then it is removed from that route first, also by compare-and-swap. With
    ALIVE, a claim of an app that is gone lapses and is taken without asking.
    """
    route.validate()
    every = registry.list()
    live, gone = _live_claims(route, every, alive)
    if live and not take_domains:
        raise PreconditionError(_claimed_message(live[0], route.namespace, route.name))
    taken = live + gone
    by_owner: dict[str, tuple[StoredRoute, set[str]]] = {}
    for t in taken:
        by_owner.setdefault(t.owner.route.key, (t.owner, set()))[1].add(t.domain)
    for owner, domains in by_owner.values():
        left = tuple(d for d in owner.route.domains if d not in domains)
        if left:
            registry.put(replace(owner.route, domains=left), owner.version)
        else:
            registry.delete(owner.route.namespace, owner.route.name, owner.version)
        why = "" if any(t.owner is owner for t in live) else " (its app is gone)"
        log(f"took {', '.join(sorted(domains))} from {owner.route.key}{why}")
    current = next(
        (s for s in every if (s.route.namespace, s.route.name) == (route.namespace, route.name)),
        None,
    )
    if current is not None and current.route.same_as(route):
        return False
    registry.put(route, current.version if current else None)
    return True


# Sync -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteChange:
    """One change `routes sync` makes: update a route's upstreams/ports, or remove it."""

    stored: StoredRoute
    new: Route | None  # None: remove
    reason: str

    def describe(self) -> str:
        key = self.stored.route.key
        if self.new is None:
            return f"remove {key}: {self.reason}"
        return f"update {key}: {self.reason}"


def _diff(old: Route, new: Route) -> str:
    parts = []
    gone = sorted(set(old.upstreams) - set(new.upstreams))
    added = sorted(set(new.upstreams) - set(old.upstreams))
    if added:
        parts.append("+" + " +".join(added))
    if gone:
        parts.append("-" + " -".join(gone))
    if dict(old.node_ports) != dict(new.node_ports):
        before = ",".join(f"{k}={v}" for k, v in sorted(old.node_ports.items())) or "none"
        after = ",".join(f"{k}={v}" for k, v in sorted(new.node_ports.items())) or "none"
        parts.append(f"ports {before} -> {after}")
    if old.canary is not None and new.canary is None:
        parts.append(f"canary {old.canary.name} dropped (its Service is gone)")
    elif old.canary is not None and new.canary is not None and old.canary != new.canary:
        gone = sorted(set(old.canary.servers) - set(new.canary.servers))
        added = sorted(set(new.canary.servers) - set(old.canary.servers))
        parts.append("canary " + " ".join([*(f"+{s}" for s in added), *(f"-{s}" for s in gone)]))
    return " ".join(parts) or "value rewritten in the current format"


def plan_route_sync(
    stored: Sequence[StoredRoute],
    service_ports: Mapping[tuple[str, str], Mapping[str, int]],
    addresses: Sequence[str],
) -> list[RouteChange]:
    """What makes every route match the cluster. Pure.

    SERVICE_PORTS: the NodePorts of every app's Service, by (namespace, name); an app without
    one is gone and its route removed. A canary follows the nodes with its own Service's
    NodePort, and is dropped when that Service is gone. Domains and revision are kept.
    """
    changes = []
    for s in stored:
        r = s.route
        ports = service_ports.get((r.namespace, r.name))
        if ports is None:
            changes.append(RouteChange(s, None, "the app's Service is gone"))
            continue
        canary = r.canary
        if canary is not None:
            canary_ports = service_ports.get((r.namespace, canary.name))
            canary = (
                None if canary_ports is None else canary_on_nodes(canary, canary_ports, addresses)
            )
        wanted = desired_route(r.namespace, r.name, r.domains, ports, addresses, r.revision, canary)
        if not wanted.same_as(r):
            changes.append(RouteChange(s, wanted, _diff(r, wanted)))
    return changes


@dataclass
class SyncReport:
    """What `routes sync` did: routes checked, changes made (or, in a dry run, planned), and
    routes left to the next run because another writer changed them meanwhile."""

    checked: int = 0
    changed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def managed_service_ports(
    kube: KubeApi, namespace: str | None
) -> dict[tuple[str, str], dict[str, int]]:
    """NodePorts of every pysteps-managed Service, in one list request."""
    ports: dict[tuple[str, str], dict[str, int]] = {}
    for svc in kube.list("Service", namespace, {LABEL_MANAGED_BY: MANAGED_BY}):
        meta = svc["metadata"]
        ports[(meta["namespace"], meta["name"])] = {
            str(p.get("name", "")): int(p["nodePort"])
            for p in svc.get("spec", {}).get("ports") or []
            if p.get("nodePort")
        }
    return ports


def sync_routes(
    kube: KubeApi,
    registry: RouteRegistry,
    namespace: str | None,
    selector: Mapping[str, str],
    log: Callable[[str], None] = print,
    dry_run: bool = False,
) -> SyncReport:
    """Reconcile every route (in NAMESPACE) with the cluster: three reads, writes only for changes.

    A route changed by someone else meanwhile is left for the next run (reported as a conflict).
    """
    stored = registry.list(namespace)
    services = managed_service_ports(kube, namespace)
    addresses = edge_addresses(list_edge_nodes(kube, selector))
    report = SyncReport(checked=len(stored))
    for change in plan_route_sync(stored, services, addresses):
        log(("would " if dry_run else "") + change.describe())
        if dry_run:
            report.changed.append(change.describe())
            continue
        r = change.stored.route
        try:
            if change.new is None:
                registry.delete(r.namespace, r.name, change.stored.version)
            else:
                registry.put(change.new, change.stored.version)
        except RouteConflict:
            log(f"  {r.key} changed meanwhile; the next sync takes it")
            report.conflicts.append(r.key)
            continue
        report.changed.append(change.describe())
    return report


def restore_route(
    kube: KubeApi,
    registry: RouteRegistry,
    namespace: str,
    name: str,
    domains: Sequence[str],
    revision: int,
    log: Callable[[str], None] = print,
) -> Route | None:
    """After a rollback: the route of the restored revision (its domains), on today's nodes."""
    if not domains:
        return None
    services = managed_service_ports(kube, namespace)
    ports = services.get((namespace, name), {})
    addresses = app_edge_addresses(kube, namespace, name, log)
    current = registry.get(namespace, name)
    canary = current.route.canary if current else None
    route = desired_route(namespace, name, domains, ports, addresses, revision, canary)
    if register_route(registry, route, log=log, alive=app_alive_on(kube)):
        log(f"route {route.key} restored: {', '.join(route.domains)} (revision {revision})")
    return route
