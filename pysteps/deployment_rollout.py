"""Deployments: observed, rolled out server-side (apps/v1 RollingUpdate), resumed after an
interrupted run, judged again after a failure, and rolled back to a revision that rolled out.

apps/v1 has no rollback endpoint: as `kubectl rollout undo` does, a rollback copies a kept
ReplicaSet's pod template back into the Deployment.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from pysteps import manifests
from pysteps.clients.kube import Conflict, KubeApi
from pysteps.manifests import ANN_COMMIT, ANN_SPEC_HASH
from pysteps.revisions import (
    PYSTEPS_ANNOTATIONS,
    Revision,
    annotations_of,
    mark_failed,
    mark_rolled_out,
    pick_revision,
)
from pysteps.rollout import (
    REVISION_ANNOTATION,
    RolloutOutcome,
    collect_report,
    deployment_status,
    deployment_verdict,
    newest_replicaset,
    owned_replicasets,
    rs_revision,
    wait_for_deployment,
)
from pysteps.state import ObservedWorkload

Log = Callable[[str], None]


def container_image(template: dict[str, Any]) -> str | None:
    containers = template.get("spec", {}).get("containers") or []
    return str(containers[0].get("image")) if containers else None


def workload_from_deployment(
    dep: dict[str, Any], replicasets: list[dict[str, Any]] | None = None
) -> ObservedWorkload:
    """The app seen through its Deployment; REPLICASETS (owned, any order) when listed."""
    ann = annotations_of(dep)
    template = dep["spec"]["template"]
    status = dep.get("status", {})
    revision = ann.get(REVISION_ANNOTATION)
    newest = None
    for rs in replicasets or []:
        if annotations_of(rs).get(REVISION_ANNOTATION) == revision:
            newest = rs
    code_commits = sorted(
        {
            c
            for c in (
                manifests.template_code_commit(rs["spec"]["template"]) for rs in replicasets or []
            )
            if c
        }
    )
    return ObservedWorkload(
        kind="Deployment",
        name=dep["metadata"]["name"],
        spec_hash=ann.get(ANN_SPEC_HASH),
        commit=ann.get(ANN_COMMIT),
        image=container_image(template),
        replicas=int(dep["spec"].get("replicas", 1)),
        ready_replicas=int(status.get("readyReplicas", 0)),
        code_commit=manifests.template_code_commit(template),
        revision=int(revision or "0"),
        rollout=deployment_status(dep, newest, rs_known=replicasets is not None),
        code_commits=tuple(code_commits),
    )


class DeploymentRollout:
    """Cluster operations on one Deployment."""

    def __init__(self, kube: KubeApi, log: Log, poll: float = 1.0) -> None:
        self.kube = kube
        self.log = log
        self.poll = poll

    def observe(self, namespace: str, name: str) -> ObservedWorkload | None:
        dep = self.kube.get("Deployment", namespace, name)
        if dep is None:
            return None
        return workload_from_deployment(dep, owned_replicasets(self.kube, dep))

    def roll_out(self, desired: dict[str, Any], timeout: float) -> RolloutOutcome:
        """Create or update the Deployment to DESIRED and wait until the rollout is judged."""
        ns, name = desired["metadata"]["namespace"], desired["metadata"]["name"]
        for attempt in range(5):
            live = self.kube.get("Deployment", ns, name)
            try:
                if live is None:
                    self.kube.create(desired)
                    self.log(f"created Deployment {ns}/{name}")
                else:
                    merged = copy.deepcopy(live)
                    merged["metadata"].setdefault("labels", {}).update(
                        desired["metadata"]["labels"]
                    )
                    merged["metadata"].setdefault("annotations", {}).update(
                        desired["metadata"]["annotations"]
                    )
                    merged["spec"] = {**live["spec"], **desired["spec"]}
                    merged.pop("status", None)
                    self.kube.replace(merged)
                    self.log(f"updated Deployment {ns}/{name}")
                break
            except Conflict:
                if attempt == 4:
                    raise
                time.sleep(0.2)
        return self.resume(ns, name, timeout)

    def resume(self, ns: str, name: str, timeout: float) -> RolloutOutcome:
        """Wait for the live revision's rollout (begun by this run or an interrupted one)."""
        outcome = wait_for_deployment(self.kube, ns, name, timeout, self.log, self.poll)
        if outcome.ok:
            self._mark_newest(ns, name)
        return outcome

    def judge(self, ns: str, name: str) -> RolloutOutcome:
        """One look at a revision judged failed before: done now, or failed with the reason."""
        dep = self.kube.get("Deployment", ns, name)
        if dep is None:
            return RolloutOutcome(False, f"Deployment {ns}/{name} disappeared")
        rss = owned_replicasets(self.kube, dep)
        status = workload_from_deployment(dep, rss).rollout
        if deployment_verdict(dep).state == "done":
            self._mark_newest(ns, name)
            return RolloutOutcome(True, status.message)
        newest = newest_replicaset(self.kube, dep)
        pods = self._pods_of(dep, newest)
        report = collect_report(self.kube, ns, pods, related=[name])
        return RolloutOutcome(False, f"revision failed: {status.message}", report=report)

    def mark_failed(self, ns: str, name: str, message: str) -> None:
        dep = self.kube.get("Deployment", ns, name)
        rs = newest_replicaset(self.kube, dep) if dep else None
        if rs is not None:
            mark_failed(self.kube, "ReplicaSet", ns, rs["metadata"]["name"], message, self.log)

    def _mark_newest(self, ns: str, name: str) -> None:
        dep = self.kube.get("Deployment", ns, name)
        rs = newest_replicaset(self.kube, dep) if dep else None
        if rs is not None:
            mark_rolled_out(self.kube, "ReplicaSet", ns, rs["metadata"]["name"], self.log)

    def _pods_of(self, dep: dict[str, Any], rs: dict[str, Any] | None) -> list[dict[str, Any]]:
        if rs is None:
            return []
        selector = dict(dep["spec"]["selector"]["matchLabels"])
        pod_hash = rs["metadata"].get("labels", {}).get("pod-template-hash")
        if pod_hash:
            selector["pod-template-hash"] = pod_hash
        return self.kube.list("Pod", dep["metadata"]["namespace"], selector)

    # Roll back ----------------------------------------------------------------------

    def rollback_target(self, dep: dict[str, Any], to_revision: int | None) -> Revision:
        ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
        current = int(annotations_of(dep).get(REVISION_ANNOTATION, "0") or 0)
        history = [
            Revision("ReplicaSet", rs_revision(rs), rs) for rs in owned_replicasets(self.kube, dep)
        ]
        return pick_revision(history, current, to_revision, f"{ns}/{name}")

    def rollback(self, dep: dict[str, Any], target: Revision, timeout: float) -> RolloutOutcome:
        """Put TARGET's pod template back and wait for it."""
        ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
        template = copy.deepcopy(target.template)
        template["metadata"].get("labels", {}).pop("pod-template-hash", None)
        dep = copy.deepcopy(dep)
        dep["spec"]["template"] = template
        anns = dep["metadata"].setdefault("annotations", {})
        held = annotations_of(target.holder)
        for key in PYSTEPS_ANNOTATIONS:
            if key in held:
                anns[key] = held[key]
        dep.pop("status", None)
        self.kube.replace(dep)
        self.log(f"rolled Deployment {ns}/{name} back to revision {target.number}")
        return self.resume(ns, name, timeout)
