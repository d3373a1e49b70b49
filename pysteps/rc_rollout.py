"""ReplicationControllers: rolled out client-side, as `kubectl rolling-update` did.

One controller per revision (`NAME-rN`). The new one is scaled up a step at a time
(`rollout.max_surge`: a percentage of the replicas, or a number of pods) and, once each step's
pods are ready, the old ones are scaled down by as much, the oldest first. Every step is
visible on the cluster, so a run that is killed half-way leaves a state the next run reads
and continues from (`resume`). On failure the newest revision that rolled out is scaled back
to the full count and the failed controller removed.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pysteps import manifests
from pysteps.clients.kube import KubeApi
from pysteps.errors import PreconditionError
from pysteps.manifests import ANN_COMMIT, ANN_SPEC_HASH, LABEL_RC_REVISION
from pysteps.revisions import (
    PYSTEPS_ANNOTATIONS,
    Revision,
    annotations_of,
    mark_failed,
    mark_rolled_out,
    pick_revision,
)
from pysteps.rollout import (
    ANN_ROLLOUT_FAILED,
    RolloutOutcome,
    controllers_status,
    wait_for_pods_ready,
)
from pysteps.state import ObservedWorkload

Log = Callable[[str], None]
ANN_DESIRED_REPLICAS = "pysteps.io/desired-replicas"
KEEP_CONTROLLERS = 3


@dataclass(frozen=True)
class ControllerTarget:
    """What a client-side ReplicationController rollout needs to know."""

    namespace: str
    name: str
    replicas: int
    timeout: float
    max_surge: str


def app_selector(name: str) -> dict[str, str]:
    return {manifests.LABEL_NAME: name, manifests.LABEL_MANAGED_BY: manifests.MANAGED_BY}


def rc_revision(rc: dict[str, Any]) -> int:
    try:
        return int(rc["metadata"].get("labels", {}).get(LABEL_RC_REVISION, "0"))
    except ValueError:
        return 0


def desired_replicas(rc: dict[str, Any]) -> int:
    return int(annotations_of(rc).get(ANN_DESIRED_REPLICAS, rc["spec"].get("replicas", 1)))


def surge_step(max_surge: str, want: int) -> int:
    """Pods added per step: a percentage of WANT (rounded up) or an absolute number; at least 1."""
    value = max_surge.strip()
    if value.endswith("%"):
        return max(1, math.ceil(want * int(value[:-1]) / 100))
    return max(1, int(value))


def workload_from_controllers(rcs: list[dict[str, Any]]) -> ObservedWorkload:
    """The app seen through its ReplicationControllers: the newest revision is the live one."""
    rcs = sorted(rcs, key=rc_revision)
    live = rcs[-1]
    ann = annotations_of(live)
    template = live["spec"]["template"]
    containers = template.get("spec", {}).get("containers") or []
    want = desired_replicas(live)
    code_commits = {manifests.template_code_commit(rc["spec"]["template"]) for rc in rcs}
    return ObservedWorkload(
        kind="ReplicationController",
        name=live["metadata"]["name"],
        spec_hash=ann.get(ANN_SPEC_HASH),
        commit=ann.get(ANN_COMMIT),
        image=str(containers[0].get("image")) if containers else None,
        replicas=want,
        ready_replicas=sum(int(rc.get("status", {}).get("readyReplicas", 0)) for rc in rcs),
        code_commit=manifests.template_code_commit(template),
        revision=rc_revision(live),
        controllers=tuple(
            (rc["metadata"]["name"], int(rc["spec"].get("replicas", 0))) for rc in rcs
        ),
        rollout=controllers_status(rcs, rc_revision, want),
        code_commits=tuple(sorted(c for c in code_commits if c)),
    )


class ControllerRollout:
    """Cluster operations on one app's ReplicationControllers."""

    def __init__(self, kube: KubeApi, log: Log, poll: float = 1.0) -> None:
        self.kube = kube
        self.log = log
        self.poll = poll

    def controllers(self, ns: str, name: str) -> list[dict[str, Any]]:
        """The app's controllers, oldest revision first."""
        return sorted(
            self.kube.list("ReplicationController", ns, app_selector(name)), key=rc_revision
        )

    def observe(self, namespace: str, name: str) -> ObservedWorkload | None:
        rcs = self.controllers(namespace, name)
        return workload_from_controllers(rcs) if rcs else None

    # Roll out -----------------------------------------------------------------------

    def roll_out(
        self,
        target: ControllerTarget,
        template: dict[str, Any],
        metadata: dict[str, Any],
        restore_on_failure: bool = True,
    ) -> RolloutOutcome:
        """Create the next revision's controller at 0 replicas and move the app onto it."""
        ns, name = target.namespace, target.name
        rcs = self.controllers(ns, name)
        revision = (rc_revision(rcs[-1]) if rcs else 0) + 1
        new = manifests.replication_controller(
            ns, name, template, revision, 0, metadata, target.replicas
        )
        self.kube.create(new)
        self.log(
            f"created ReplicationController {ns}/{new['metadata']['name']} (revision {revision})"
        )
        return self._advance(target, new["metadata"]["name"], revision, restore_on_failure)

    def resume(self, target: ControllerTarget, restore_on_failure: bool = True) -> RolloutOutcome:
        """Continue the newest revision's rollout from the replica counts found on the cluster."""
        rcs = self.controllers(target.namespace, target.name)
        if not rcs:
            return RolloutOutcome(False, f"{target.namespace}/{target.name} has no controllers")
        live = rcs[-1]
        counts = ", ".join(
            f"{rc['metadata']['name']}: {rc['spec'].get('replicas', 0)}" for rc in rcs
        )
        self.log(f"resuming the rollout of revision {rc_revision(live)} ({counts})")
        return self._advance(
            target, live["metadata"]["name"], rc_revision(live), restore_on_failure
        )

    def judge(self, target: ControllerTarget, restore_on_failure: bool = True) -> RolloutOutcome:
        """One look at a revision judged failed before: finish it if its pods are ready now."""
        rcs = self.controllers(target.namespace, target.name)
        if not rcs:
            return RolloutOutcome(False, f"{target.namespace}/{target.name} has no controllers")
        live = rcs[-1]
        revision = rc_revision(live)
        have = int(live["spec"].get("replicas", 0))
        selector = {**app_selector(target.name), LABEL_RC_REVISION: str(revision)}
        look = wait_for_pods_ready(
            self.kube, target.namespace, selector, max(1, have), time.monotonic(), self.log
        )
        if look.ok:
            return self.resume(target, restore_on_failure)
        note = annotations_of(live).get(ANN_ROLLOUT_FAILED, "judged failed earlier")
        outcome = RolloutOutcome(
            False, f"revision {revision} failed: {note} (now {look.message})", report=look.report
        )
        if restore_on_failure:
            outcome.rolled_back = self._restore(target, live["metadata"]["name"])
        return outcome

    def mark_failed(self, ns: str, name: str, message: str) -> None:
        rcs = self.controllers(ns, name)
        if rcs:
            mark_failed(
                self.kube,
                "ReplicationController",
                ns,
                rcs[-1]["metadata"]["name"],
                message,
                self.log,
            )

    def _advance(
        self, target: ControllerTarget, new_name: str, revision: int, restore_on_failure: bool
    ) -> RolloutOutcome:
        ns, want = target.namespace, target.replicas
        deadline = time.monotonic() + target.timeout
        step = surge_step(target.max_surge, want)
        selector = {**app_selector(target.name), LABEL_RC_REVISION: str(revision)}
        live = self.kube.get("ReplicationController", ns, new_name)
        current = int(live["spec"].get("replicas", 0)) if live else 0
        if live is not None and desired_replicas(live) != want:
            self.kube.patch(
                "ReplicationController",
                ns,
                new_name,
                {"metadata": {"annotations": {ANN_DESIRED_REPLICAS: str(want)}}},
            )
        current = min(current, want)
        # Resuming: the replicas already asked for must be ready before the next step.
        steps = [current] if current > 0 else []
        while current < want:
            current = min(want, current + step)
            steps.append(current)
        for count in steps:
            self._scale(ns, new_name, count)
            outcome = wait_for_pods_ready(
                self.kube, ns, selector, count, deadline, self.log, self.poll
            )
            if not outcome.ok:
                if restore_on_failure:
                    outcome.rolled_back = self._restore(target, new_name)
                return outcome
            self._scale_down_old(ns, target.name, new_name, want - count)
        self._scale_down_old(ns, target.name, new_name, 0)
        mark_rolled_out(self.kube, "ReplicationController", ns, new_name, self.log)
        self._prune(ns, target.name)
        return RolloutOutcome(True, f"{want} of {want} pods ready on revision {revision}")

    def _scale(self, ns: str, name: str, replicas: int) -> None:
        live = self.kube.get("ReplicationController", ns, name)
        if live is not None and int(live["spec"].get("replicas", 0)) == replicas:
            return
        self.kube.patch("ReplicationController", ns, name, {"spec": {"replicas": replicas}})
        self.log(f"  scaled ReplicationController {name} to {replicas}")

    def _scale_down_old(self, ns: str, app: str, new_name: str, remaining: int) -> None:
        """Leave at most REMAINING replicas on older controllers; the newest of them keeps its
        replicas longest (the oldest are scaled down first)."""
        old = [rc for rc in self.controllers(ns, app) if rc["metadata"]["name"] != new_name]
        for rc in reversed(old):
            have = int(rc["spec"].get("replicas", 0))
            keep = min(have, remaining)
            remaining -= keep
            if keep != have:
                self._scale(ns, rc["metadata"]["name"], keep)

    def _restore(self, target: ControllerTarget, failed_name: str) -> bool:
        """Scale the newest older revision that rolled out back to the full count and remove
        the failed controller. False when there is nothing to go back to (a first deploy)."""
        ns = target.namespace
        rcs = self.controllers(ns, target.name)
        older = [rc for rc in rcs if rc["metadata"]["name"] != failed_name]
        good = [rc for rc in older if Revision("ReplicationController", 0, rc).rolled_out]
        scaled = [rc for rc in older if int(rc["spec"].get("replicas", 0)) > 0]
        candidates = good or scaled or older
        if not candidates:
            self.log(f"no earlier revision: {failed_name} is left for inspection")
            return False
        back = candidates[-1]
        back_name = back["metadata"]["name"]
        self.log(f"rolling back: {back_name} scaled to {target.replicas}, {failed_name} removed")
        self._scale(ns, back_name, target.replicas)
        for rc in older:
            if rc["metadata"]["name"] != back_name:
                self._scale(ns, rc["metadata"]["name"], 0)
        self._scale(ns, failed_name, 0)
        self.kube.delete("ReplicationController", ns, failed_name)
        selector = {**app_selector(target.name), LABEL_RC_REVISION: str(rc_revision(back))}
        ready = wait_for_pods_ready(
            self.kube,
            ns,
            selector,
            target.replicas,
            time.monotonic() + target.timeout,
            self.log,
            self.poll,
        )
        if not ready.ok:
            self.log(f"the restored revision is not ready either: {ready.message}")
        return ready.ok

    def _prune(self, ns: str, name: str) -> None:
        rcs = self.controllers(ns, name)
        for rc in rcs[:-KEEP_CONTROLLERS]:
            if int(rc["spec"].get("replicas", 0)) == 0:
                self.kube.delete("ReplicationController", ns, rc["metadata"]["name"])

    # Roll back ----------------------------------------------------------------------

    def rollback_target(self, ns: str, name: str, to_revision: int | None) -> Revision:
        rcs = self.controllers(ns, name)
        if not rcs:
            raise PreconditionError(f"{ns}/{name} has no workload to roll back")
        history = [Revision("ReplicationController", rc_revision(rc), rc) for rc in rcs]
        return pick_revision(history, rc_revision(rcs[-1]), to_revision, f"{ns}/{name}")

    def rollback(
        self, ns: str, name: str, target: Revision, timeout: float, max_surge: str = "25%"
    ) -> RolloutOutcome:
        """TARGET's template comes back as a new revision, rolled out as any other."""
        rcs = self.controllers(ns, name)
        template = copy.deepcopy(target.template)
        template["metadata"].get("labels", {}).pop(LABEL_RC_REVISION, None)
        live_meta = rcs[-1]["metadata"]
        held = annotations_of(target.holder)
        metadata = {
            "labels": {
                k: v for k, v in (live_meta.get("labels") or {}).items() if k != LABEL_RC_REVISION
            },
            "annotations": {k: v for k, v in held.items() if k in PYSTEPS_ANNOTATIONS},
        }
        replicas = desired_replicas(rcs[-1])
        self.log(f"rolling {ns}/{name} back to the template of revision {target.number}")
        return self.roll_out(
            ControllerTarget(ns, name, replicas, timeout, max_surge), template, metadata
        )
