"""One deploy of an app at a time: a coordination.k8s.io/v1 Lease per app in its namespace.

A Lease is a stable, namespaced object, so a user with rights in one namespace can take it.
The holder renews it while it works; a holder that died stops renewing and its lease expires.
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from pysteps.clients.kube import AlreadyExists, Conflict, KubeApi
from pysteps.errors import PreconditionError

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


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _parse(ts: str | None) -> datetime | None:
    if not ts:
        return None
    for fmt in (_TIME_FMT, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(ts, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


class DeployLock:
    """A held lease on one app; renewed in the background until released."""

    def __init__(
        self,
        kube: KubeApi,
        namespace: str,
        app: str,
        duration: int = 60,
        identity: str | None = None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = LEASE_PREFIX + app
        self.duration = duration
        self.identity = identity or holder_identity()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self, resource_version: str | None = None) -> dict[str, Any]:
        now = _now().strftime(_TIME_FMT)
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

    def try_acquire(self) -> str | None:
        """Take the lease if free or expired; None on success, else who holds it."""
        live = self.kube.get("Lease", self.namespace, self.name)
        if live is None:
            try:
                self.kube.create(self._body())
                return None
            except AlreadyExists:
                return "another deploy (it just took the lock)"
        spec = live.get("spec", {})
        holder = spec.get("holderIdentity") or ""
        renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
        duration = int(spec.get("leaseDurationSeconds") or self.duration)
        expired = renewed is None or _now() > renewed + timedelta(seconds=duration)
        if holder and holder != self.identity and not expired:
            return holder
        try:
            self.kube.replace(self._body(live["metadata"].get("resourceVersion")))
        except Conflict:
            return "another deploy (it just took the lock)"
        return None

    def acquire(self, wait: float, log: Callable[[str], None] = print, poll: float = 1.0) -> None:
        """Take the lock, waiting up to WAIT seconds; PreconditionError names the holder."""
        deadline = time.monotonic() + wait
        told = False
        while True:
            holder = self.try_acquire()
            if holder is None:
                self._start_renewing()
                return
            if time.monotonic() >= deadline:
                raise PreconditionError(
                    f"{self.namespace}/{self.name[len(LEASE_PREFIX) :]} is being deployed by "
                    f"{holder}; wait for it, or raise --lock-wait"
                )
            if not told:
                log(f"waiting for the deploy lock held by {holder}")
                told = True
            time.sleep(poll)

    def _start_renewing(self) -> None:
        def renew() -> None:
            while not self._stop.wait(self.duration / 3):
                try:
                    live = self.kube.get("Lease", self.namespace, self.name)
                    if live is None or live["spec"].get("holderIdentity") != self.identity:
                        return
                    live["spec"]["renewTime"] = _now().strftime(_TIME_FMT)
                    self.kube.replace(live)
                except Exception:  # a missed renewal is retried; the lease outlives one miss
                    continue

        self._thread = threading.Thread(target=renew, name="deploy-lock-renewal", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop renewing and delete the lease if it is still ours."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        live = self.kube.get("Lease", self.namespace, self.name)
        if live is not None and live.get("spec", {}).get("holderIdentity") == self.identity:
            self.kube.delete("Lease", self.namespace, self.name)

    def __enter__(self) -> DeployLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
