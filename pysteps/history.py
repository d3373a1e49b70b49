"""Every deploy attempt of an app, failed ones included, kept in the cluster beside the app.

kubectl's rollout history only knows pod template changes; this one tells the whole story:
when, who (the build), which commit, which image digest or code release, the result and
whether the app was rolled back. One v1 ConfigMap per app (``pysteps-history-<name>``, in
the app's namespace, labelled with the app's selector labels), so a user with rights in that
namespace only can read and write it. The newest ``CAP`` attempts are kept.

Writes are read-modify-write with the ConfigMap's resourceVersion as the precondition, so
two concurrent deploys never drop each other's record.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from typing import Any

from pysteps.clients.kube import AlreadyExists, Conflict, KubeApi
from pysteps.errors import ServiceError
from pysteps.manifests import LABEL_MANAGED_BY, LABEL_NAME, MANAGED_BY

PREFIX = "pysteps-history-"
DATA_KEY = "attempts.json"
CAP = 50
LABEL_HISTORY = "pysteps.io/history"
_MAX_TEXT = 500  # an error message is cut here: 50 attempts must fit a ConfigMap with room

# Results, as the history and the mail triggers name them.
OK = "ok"
FAILED = "failed"
TIMED_OUT = "timed-out"
INTERRUPTED = "interrupted"
FAILURES = frozenset({FAILED, TIMED_OUT, INTERRUPTED})


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class DeployAttempt:
    """One deploy attempt: what was shipped, by whom, and how it ended."""

    started_at: str
    finished_at: str
    commit: str
    result: str  # ok | failed | timed-out | interrupted
    exit_code: int = 0
    build_url: str | None = None
    started_by: str | None = None
    image: str | None = None  # image mode: the reference by digest
    code_release: str | None = None  # code mode: the release (commit) on the volume
    changed: bool = True  # False: nothing to do, the app already ran this release
    rolled_back: bool = False
    rollback_error: str | None = None  # the rollback was tried and did not finish
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.result in FAILURES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeployAttempt:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def shortened(self) -> DeployAttempt:
        """The record as stored: long messages cut, so the cap always fits."""

        def cut(text: str | None) -> str | None:
            return text if text is None or len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"

        return replace(self, error=cut(self.error), rollback_error=cut(self.rollback_error))


def configmap_name(app: str) -> str:
    return PREFIX + app


def parse_attempts(configmap: dict[str, Any] | None) -> list[DeployAttempt]:
    """The attempts a history ConfigMap holds, oldest first; unreadable entries are skipped."""
    if not configmap:
        return []
    raw = (configmap.get("data") or {}).get(DATA_KEY) or "[]"
    try:
        items = json.loads(raw)
    except json.JSONDecodeError:
        return []
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        try:
            out.append(DeployAttempt.from_dict(item))
        except TypeError:
            continue
    return out


def appended(attempts: Sequence[DeployAttempt], attempt: DeployAttempt) -> list[DeployAttempt]:
    """ATTEMPTS with ATTEMPT added, the oldest dropped beyond the cap (pure)."""
    return [*attempts, attempt.shortened()][-CAP:]


class DeployHistory:
    """An app's deploy history in its namespace."""

    def __init__(self, kube: KubeApi, namespace: str, app: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.app = app
        self.name = configmap_name(app)

    def read(self) -> list[DeployAttempt]:
        """Every kept attempt, oldest first ([] before the first deploy)."""
        return parse_attempts(self.kube.get("ConfigMap", self.namespace, self.name))

    def record(self, attempt: DeployAttempt, retries: int = 20) -> list[DeployAttempt]:
        """Append ATTEMPT; returns the history as written. Retries on a concurrent write."""
        for n in range(retries):
            if n:
                # Writers that collided back off by different amounts, so one of them wins.
                time.sleep(random.uniform(0, min(1.0, 0.05 * 2**n)))
            live = self.kube.get("ConfigMap", self.namespace, self.name)
            attempts = appended(parse_attempts(live), attempt)
            body = self._body(attempts, live)
            try:
                if live is None:
                    self.kube.create(body)
                else:
                    self.kube.replace(body)
                return attempts
            except (AlreadyExists, Conflict):
                continue  # another deploy wrote first: read again and append to its version
        raise ServiceError(
            f"cannot record the deploy in ConfigMap {self.namespace}/{self.name}: "
            f"it kept changing under {retries} attempts"
        )

    def _body(
        self, attempts: Sequence[DeployAttempt], live: dict[str, Any] | None
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "labels": {LABEL_NAME: self.app, LABEL_MANAGED_BY: MANAGED_BY, LABEL_HISTORY: "true"},
        }
        if live is not None:
            meta["resourceVersion"] = live["metadata"]["resourceVersion"]
        data = json.dumps([a.to_dict() for a in attempts], indent=None, sort_keys=True)
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {DATA_KEY: data}}


def describe(attempts: Sequence[DeployAttempt]) -> list[str]:
    """A table of ATTEMPTS, newest first, as `pysteps history` prints it."""
    header = ("WHEN", "RESULT", "COMMIT", "VERSION", "ROLLED BACK", "BY")
    rows = [header]
    for a in reversed(attempts):
        result = a.result + ("" if a.changed else " (no change)")
        rolled = "tried, failed" if a.rollback_error else "yes" if a.rolled_back else "no"
        who = a.build_url or a.started_by or ""
        rows.append((a.started_at, result, a.commit[:12], _version(a), rolled, who))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def _version(a: DeployAttempt) -> str:
    if a.image and "@sha256:" in a.image:
        return "sha256:" + a.image.partition("@sha256:")[2][:12]
    if a.image:
        return a.image.rsplit("/", 1)[-1]
    if a.code_release:
        return f"release {a.code_release[:12]}"
    return "-"
