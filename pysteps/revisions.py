"""A workload's revision history: ReplicaSets of a Deployment, or one ReplicationController per
revision. Which revision a rollback returns to, which code release each one names, and the
marks pysteps leaves on them (rolled out, or judged failed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pysteps import manifests
from pysteps.clients.kube import KubeApi
from pysteps.errors import PreconditionError, PystepsError
from pysteps.manifests import template_code_commit
from pysteps.rollout import ANN_ROLLED_OUT, ANN_ROLLOUT_FAILED

Log = Callable[[str], None]

# The annotations a rollback copies from the revision it returns to.
PYSTEPS_ANNOTATIONS = (
    manifests.ANN_SPEC_HASH,
    manifests.ANN_COMMIT,
    manifests.ANN_MODE,
    manifests.ANN_CHANGE_CAUSE,
    manifests.ANN_DOMAINS,
    manifests.ANN_CODE_PATH,
)


@dataclass(frozen=True)
class Revision:
    """One kept revision: its number, the object that holds it, and its pod template."""

    kind: str  # the holder's kind: ReplicaSet or ReplicationController
    number: int
    holder: dict[str, Any]

    @property
    def template(self) -> dict[str, Any]:
        return dict(self.holder["spec"]["template"])

    @property
    def code_commit(self) -> str | None:
        """The code release the revision's pods run (code mode, restart: rolling); else None."""
        return template_code_commit(self.template)

    @property
    def rolled_out(self) -> bool:
        return ANN_ROLLED_OUT in annotations_of(self.holder)


def annotations_of(obj: dict[str, Any] | None) -> dict[str, str]:
    if not obj:
        return {}
    return dict(obj.get("metadata", {}).get("annotations") or {})


def pick_revision(
    revisions: list[Revision], current: int, wanted: int | None, app: str
) -> Revision:
    """The revision a rollback returns to: WANTED, else the newest earlier one that rolled out.

    REVISIONS oldest first; CURRENT is the live revision's number.
    """
    if wanted is not None:
        for rev in revisions:
            if rev.number == wanted:
                return rev
        known = ", ".join(str(r.number) for r in revisions) or "none"
        raise PreconditionError(f"--to-revision {wanted}: {app} has revisions {known}")
    older = [rev for rev in revisions if rev.number < current]
    if not older:
        raise PreconditionError(f"{app} has no earlier revision to roll back to")
    # Go back to the newest earlier revision that once became available. Revisions made
    # before pysteps kept that note carry none: then, as kubectl does, the previous one.
    good = [rev for rev in older if rev.rolled_out]
    if good:
        return good[-1]
    if any(rev.rolled_out for rev in revisions):
        raise PreconditionError(
            f"{app}: no earlier revision ever became available; left as it is "
            "(pysteps rollback --to-revision N to force one)"
        )
    return older[-1]


def now_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def mark_rolled_out(kube: KubeApi, kind: str, ns: str, name: str, log: Log) -> None:
    """Remember that this revision became available: rollbacks go back to such revisions."""
    stamp = {"metadata": {"annotations": {ANN_ROLLED_OUT: now_stamp(), ANN_ROLLOUT_FAILED: None}}}
    try:
        kube.patch(kind, ns, name, stamp)
    except PystepsError as exc:  # the rollout is done; only the history note is missing
        log(f"warning: could not mark {kind} {name} as rolled out: {exc}")


def mark_failed(kube: KubeApi, kind: str, ns: str, name: str, message: str, log: Log) -> None:
    """Remember that this revision was judged failed and left (--no-rollback): a rerun says so."""
    stamp = {"metadata": {"annotations": {ANN_ROLLOUT_FAILED: message[:500]}}}
    try:
        kube.patch(kind, ns, name, stamp)
    except PystepsError as exc:
        log(f"warning: could not mark {kind} {name} as failed: {exc}")
