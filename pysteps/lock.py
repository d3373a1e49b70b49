"""One mutating command per app at a time: a coordination.k8s.io/v1 Lease per app.

A Lease is a stable, namespaced object, so a user with rights in one namespace can take it.
Every mutating command (deploy, create, rollback, destroy) holds it while it works.

- **Expiry is judged by observation, never by comparing clocks.** The Lease's renewTime was
  written with the holder's clock, which may be far from ours. A reader that finds the lease
  held notes its resourceVersion on its own monotonic clock; only when that resourceVersion has
  not changed for the lease's whole duration is the holder taken for dead and the lease taken
  over (a replace conditioned on that resourceVersion).
- **A holder that cannot renew stops before its next write.** A background thread renews the
  lease (conditionally, on the resourceVersion it last wrote). `check()` runs before every
  write (`LockedKube` wraps the cluster client): it refuses when the lease was taken by someone
  else or when no renewal has succeeded for two thirds of the duration.
- **Release is conditional**: a delete with preconditions on uid and resourceVersion, so a
  lease someone else took in the meantime is never deleted.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from pysteps.clients.kube import AlreadyExists, Conflict, KubeApi
from pysteps.errors import PreconditionError, PystepsError

LEASE_PREFIX = "pysteps-deploy-"
_TIME_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"


def holder_identity() -> str:
    """Who holds the lock, as people read it: build URL when in Jenkins, else user@host."""
    who = os.environ.get("BUILD_URL") or f"{_user()}@{socket.gethostname()}"
    return f"{who} pid {os.getpid()}"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _stamp() -> str:
    # Informational only (kubectl shows it); expiry never compares it with our clock.
    return datetime.now(timezone.utc).strftime(_TIME_FMT)


class LockLost(PreconditionError):
    """The lock was taken by someone else, or could not be renewed: stop before writing."""


class DeployLock:
    """A held lease on one app; renewed in the background until released."""

    def __init__(
        self,
        kube: KubeApi,
        namespace: str,
        app: str,
        duration: int = 60,
        identity: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.app = app
        self.name = LEASE_PREFIX + app
        self.duration = duration
        self.identity = identity or holder_identity()
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()
        self._held: dict[str, Any] | None = None  # the lease as we last wrote it
        self._renewed_at = 0.0
        self._lost: str | None = None
        # (holder, resourceVersion, first seen on our clock) of a lease someone else holds
        self._seen: tuple[str, str, float] | None = None

    def _body(self, resource_version: str | None = None) -> dict[str, Any]:
        now = _stamp()
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if resource_version:
            meta["resourceVersion"] = resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.duration,
                "acquireTime": now,
                "renewTime": now,
            },
        }

    @property
    def held(self) -> bool:
        return self._held is not None and self._lost is None

    def try_acquire(self) -> str | None:
        """Take the lease if free or observed dead; None on success, else who holds it."""
        live = self.kube.get("Lease", self.namespace, self.name)
        if live is None:
            try:
                self._took(self.kube.create(self._body()))
                return None
            except AlreadyExists:
                return "another command (it just took the lock)"
        spec = live.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        rv = str(live["metadata"].get("resourceVersion") or "")
        if holder and holder != self.identity and not self._observed_dead(live, holder, rv):
            return holder
        try:
            self._took(self.kube.replace(self._body(rv)))
        except Conflict:
            return "another command (it just took the lock)"
        return None

    def _observed_dead(self, live: Mapping[str, Any], holder: str, rv: str) -> bool:
        """The lease has not changed for its whole duration, measured on our own clock."""
        now = self.clock()
        if self._seen is None or self._seen[:2] != (holder, rv):
            self._seen = (holder, rv, now)
            return False
        duration = int((live.get("spec") or {}).get("leaseDurationSeconds") or self.duration)
        return now - self._seen[2] >= duration

    def _took(self, lease: dict[str, Any]) -> None:
        with self._mutex:
            self._held = lease
            self._renewed_at = self.clock()
            self._lost = None
        self._seen = None

    def acquire(self, wait: float, log: Callable[[str], None] = print, poll: float = 1.0) -> None:
        """Take the lock, waiting up to WAIT seconds; PreconditionError names the holder."""
        deadline = self.clock() + wait
        told = False
        while True:
            holder = self.try_acquire()
            if holder is None:
                self._start_renewing()
                return
            if self.clock() >= deadline:
                raise PreconditionError(
                    f"{self.namespace}/{self.app} is locked by {holder}; wait for it, or raise "
                    f"--lock-wait (a holder that died is taken over once its lease has not been "
                    f"renewed for its duration, {self._holder_duration()} s)"
                )
            if not told:
                log(f"waiting for the deploy lock of {self.namespace}/{self.app} held by {holder}")
                told = True
            time.sleep(poll)

    def _holder_duration(self) -> int:
        live = self.kube.get("Lease", self.namespace, self.name)
        spec = (live or {}).get("spec") or {}
        return int(spec.get("leaseDurationSeconds") or self.duration)

    # Holding ---------------------------------------------------------------------------

    def renew(self) -> None:
        """Renew once: a replace conditioned on the resourceVersion we last wrote."""
        with self._mutex:
            if self._held is None or self._lost is not None:
                return
            lease = {**self._held, "metadata": dict(self._held["metadata"])}
            lease["spec"] = {**lease["spec"], "renewTime": _stamp()}
            lease.pop("status", None)
        try:
            renewed = self.kube.replace(lease)
        except Conflict:
            live = self.kube.get("Lease", self.namespace, self.name)
            holder = ((live or {}).get("spec") or {}).get("holderIdentity")
            with self._mutex:
                self._lost = f"the lock of {self.namespace}/{self.app} was taken by {holder}"
            return
        with self._mutex:
            self._held = renewed
            self._renewed_at = self.clock()

    def _start_renewing(self) -> None:
        def renew_loop() -> None:
            while not self._stop.wait(self.duration / 6):
                try:
                    self.renew()
                except PystepsError:  # unreachable for now: check() stops us if it lasts
                    continue
                if self._lost:
                    return

        self._thread = threading.Thread(target=renew_loop, name="lock-renewal", daemon=True)
        self._thread.start()

    def check(self) -> None:
        """Before a write: LockLost unless the lease is still ours and recently renewed."""
        with self._mutex:
            lost, renewed_at, held = self._lost, self._renewed_at, self._held
        if held is None:
            raise LockLost(f"{self.namespace}/{self.app}: the lock is not held")
        if lost is None and self.clock() - renewed_at >= self.duration * 2 / 3:
            lost = (
                f"the lock of {self.namespace}/{self.app} could not be renewed for "
                f"{self.clock() - renewed_at:.0f} s"
            )
        if lost is None:
            live = self.kube.get("Lease", self.namespace, self.name)
            holder = ((live or {}).get("spec") or {}).get("holderIdentity")
            if holder != self.identity:
                lost = f"the lock of {self.namespace}/{self.app} was taken by {holder or 'nobody'}"
        if lost is not None:
            with self._mutex:
                self._lost = lost
            raise LockLost(f"{lost}; stopped before the next change (rerun to continue)")

    def release(self) -> None:
        """Stop renewing and delete the lease only if it is still the one we wrote."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        with self._mutex:
            held, self._held = self._held, None
        if held is None:
            return
        live = self.kube.get("Lease", self.namespace, self.name)
        if live is None or (live.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        meta = live["metadata"]
        # Taken over between our read and the delete: the preconditions fail (Conflict) and
        # the lease, no longer ours, stays.
        with contextlib.suppress(Conflict):
            self.kube.delete(
                "Lease",
                self.namespace,
                self.name,
                preconditions={
                    "uid": meta.get("uid"),
                    "resourceVersion": meta.get("resourceVersion"),
                },
            )

    def __enter__(self) -> DeployLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class LockedKube:
    """A KubeApi whose every write first checks that LOCK is still held (reads pass through).

    Without a lock (None) it only passes calls on, so a client can be wrapped once, before
    the lock is taken, and every object made with it is guarded from then on.
    """

    def __init__(self, kube: KubeApi, lock: DeployLock | None = None) -> None:
        self.kube = kube
        self.lock = lock

    def _check(self) -> None:
        if self.lock is not None:
            self.lock.check()

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.kube.get(kind, namespace, name)

    def list(
        self, kind: str, namespace: str | None, selector: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        return self.kube.list(kind, namespace, selector)

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        self._check()
        return self.kube.create(obj)

    def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        self._check()
        return self.kube.replace(obj)

    def patch(
        self, kind: str, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        self._check()
        return self.kube.patch(kind, namespace, name, patch)

    def delete(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        preconditions: Mapping[str, Any] | None = None,
    ) -> bool:
        self._check()
        return self.kube.delete(kind, namespace, name, preconditions)

    def pod_logs(
        self, namespace: str, pod: str, container: str, tail_lines: int, previous: bool
    ) -> str:
        return self.kube.pod_logs(namespace, pod, container, tail_lines, previous)
