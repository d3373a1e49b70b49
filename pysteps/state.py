"""What pysteps observed of the world before deciding anything (plain, frozen data)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RolloutStatus:
    """How far the live revision got: the truth a rerun starts from.

    state: "done" (every desired replica ready on the live revision, no old one left),
    "progressing" (unfinished: still rolling, or its deploy was interrupted), or "failed"
    (the controller gave up, ProgressDeadlineExceeded, or pysteps judged it failed and left it).
    rolled_out: the live revision carries pysteps' rolled-out mark (rollbacks return only to such).
    """

    state: str = "done"
    message: str = ""
    rolled_out: bool = True

    @property
    def finished(self) -> bool:
        return self.state == "done" and self.rolled_out


@dataclass(frozen=True)
class ObservedWorkload:
    """The app's live workload: a Deployment, or the newest of its ReplicationControllers."""

    kind: str
    name: str
    spec_hash: str | None
    commit: str | None
    image: str | None
    replicas: int
    ready_replicas: int
    code_commit: str | None = None
    revision: int = 0
    # Every ReplicationController of the app (name, replicas), newest last; empty for Deployments.
    controllers: tuple[tuple[str, int], ...] = ()
    rollout: RolloutStatus = field(default_factory=RolloutStatus)
    # Code mode: every release commit a kept revision's pod template names (pruning keeps them).
    code_commits: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObservedService:
    ports: tuple[tuple[str, int, int], ...]  # (name, port, nodePort)

    def node_ports(self) -> dict[str, int]:
        return {name: node_port for name, _port, node_port in self.ports}

    def port_pairs(self) -> tuple[tuple[str, int], ...]:
        return tuple((name, port) for name, port, _np in self.ports)


@dataclass(frozen=True)
class ObservedRoute:
    domains: tuple[str, ...]
    upstreams: tuple[str, ...]


@dataclass(frozen=True)
class Observed:
    """Everything `plan` needs to know about the world, gathered by `observe` (read-only)."""

    workload: ObservedWorkload | None = None
    service: ObservedService | None = None
    # Code mode: the commit recorded on the volume; None when the app directory is new.
    code_commit: str | None = None
    # Image mode: the registry's digest for the commit's tag; None when not built yet.
    image_digest: str | None = None
    # None when the route registry has nothing, or cannot tell (see route_known).
    route: ObservedRoute | None = None
    route_known: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Code mode: the releases complete on the volume; None when not read.
    code_releases: tuple[str, ...] | None = None
