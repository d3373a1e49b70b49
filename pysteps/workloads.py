"""The app's objects on the cluster, whatever their kind: one entry point for the engine.

Each part has its own module: the Deployment rollout (pysteps.deployment_rollout), the
client-side ReplicationController rollout (pysteps.rc_rollout), the Service
(pysteps.service) and the revision history (pysteps.revisions). This module picks the right
one for an app and removes an app's objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pysteps import manifests
from pysteps.clients.kube import KubeApi
from pysteps.deployment_rollout import DeploymentRollout, workload_from_deployment
from pysteps.errors import PreconditionError
from pysteps.manifests import Release
from pysteps.rc_rollout import (
    ControllerRollout,
    ControllerTarget,
    app_selector,
    rc_revision,
    workload_from_controllers,
)
from pysteps.revisions import Revision
from pysteps.rollout import RolloutOutcome, collect_report, pod_problems, pod_ready
from pysteps.service import ensure_service, observe_service, service_from_object
from pysteps.spec import AppSpec
from pysteps.state import ObservedService, ObservedWorkload

Log = Callable[[str], None]

__all__ = [
    "Workloads",
    "app_selector",
    "rc_revision",
    "service_from_object",
    "workload_from_controllers",
    "workload_from_deployment",
]


def _target(spec: AppSpec) -> ControllerTarget:
    return ControllerTarget(
        spec.namespace,
        spec.name,
        spec.replicas,
        spec.rollout.timeout_seconds,
        spec.rollout.max_surge,
    )


class Workloads:
    """Cluster operations on one app's workload and Service."""

    def __init__(self, kube: KubeApi, log: Log = print, poll: float = 1.0) -> None:
        self.kube = kube
        self.log = log
        self.deployments = DeploymentRollout(kube, log, poll)
        self.controllers = ControllerRollout(kube, log, poll)

    @property
    def poll(self) -> float:
        return self.deployments.poll

    @poll.setter
    def poll(self, value: float) -> None:
        self.deployments.poll = value
        self.controllers.poll = value

    # Observe ------------------------------------------------------------------------

    def observe(self, namespace: str, name: str) -> ObservedWorkload | None:
        return self.deployments.observe(namespace, name) or self.controllers.observe(
            namespace, name
        )

    def observe_service(self, namespace: str, name: str) -> ObservedService | None:
        return observe_service(self.kube, namespace, name)

    # Roll out -----------------------------------------------------------------------

    def roll_out(
        self,
        spec: AppSpec,
        release: Release,
        image: str,
        code_commit: str | None,
        code_volume: str | None,
        restore_on_failure: bool = True,
    ) -> RolloutOutcome:
        """Create or update the app's workload to this template and wait until it is done.

        A failed ReplicationController rollout restores the old controllers itself when
        RESTORE_ON_FAILURE (outcome.rolled_back); a failed Deployment is rolled back by the
        caller (`rollback`).
        """
        template = manifests.pod_template(spec, image, code_commit, code_volume)
        if spec.kind == "Deployment":
            desired = manifests.deployment(spec, release, template)
            return self.deployments.roll_out(desired, spec.rollout.timeout_seconds)
        meta = manifests.workload_metadata(spec, release, manifests.desired_hash(spec, template))
        return self.controllers.roll_out(_target(spec), template, meta, restore_on_failure)

    def resume(self, spec: AppSpec, restore_on_failure: bool = True) -> RolloutOutcome:
        """Finish the live revision's rollout, begun by an earlier (interrupted) run."""
        if spec.kind == "Deployment":
            return self.deployments.resume(spec.namespace, spec.name, spec.rollout.timeout_seconds)
        return self.controllers.resume(_target(spec), restore_on_failure)

    def judge(self, spec: AppSpec, restore_on_failure: bool = True) -> RolloutOutcome:
        """Look again at a live revision judged failed before: finished now, or failed."""
        if spec.kind == "Deployment":
            return self.deployments.judge(spec.namespace, spec.name)
        return self.controllers.judge(_target(spec), restore_on_failure)

    def mark_failed(self, spec: AppSpec, message: str) -> None:
        """Note on the live revision that it failed and was left (--no-rollback)."""
        if spec.kind == "Deployment":
            self.deployments.mark_failed(spec.namespace, spec.name, message)
        else:
            self.controllers.mark_failed(spec.namespace, spec.name, message)

    def judge_serving(
        self, spec: AppSpec, sleep: Callable[[float], None] = time.sleep
    ) -> RolloutOutcome:
        """After a code switch that pods see at once (code.restart: none): are they still ready?

        Readiness probes notice broken code only at their next runs, so the look comes two
        probe periods after the switch.
        """
        settle = spec.readiness.period_seconds * 2 if spec.readiness else 1
        sleep(min(settle, 30))
        pods = [
            p
            for p in self.kube.list("Pod", spec.namespace, app_selector(spec.name))
            if not p["metadata"].get("deletionTimestamp")
        ]
        ready = sum(1 for p in pods if pod_ready(p))
        message = f"{ready} of {spec.replicas} pods ready {settle}s after the switch"
        if ready >= spec.replicas and not pod_problems(pods):
            return RolloutOutcome(True, message)
        return RolloutOutcome(
            False, message, report=collect_report(self.kube, spec.namespace, pods)
        )

    # Roll back ----------------------------------------------------------------------

    def rollback_target(self, namespace: str, name: str, to_revision: int | None) -> Revision:
        """The revision a rollback would return to (reads only)."""
        dep = self.kube.get("Deployment", namespace, name)
        if dep is not None:
            return self.deployments.rollback_target(dep, to_revision)
        return self.controllers.rollback_target(namespace, name, to_revision)

    def rollback(
        self,
        namespace: str,
        name: str,
        timeout: float,
        to_revision: int | None = None,
        target: Revision | None = None,
    ) -> RolloutOutcome:
        """Put TARGET (default: the previous good revision, or TO_REVISION) back and wait."""
        target = target or self.rollback_target(namespace, name, to_revision)
        dep = self.kube.get("Deployment", namespace, name)
        if dep is not None:
            return self.deployments.rollback(dep, target, timeout)
        if not self.controllers.controllers(namespace, name):
            raise PreconditionError(f"{namespace}/{name} has no workload to roll back")
        return self.controllers.rollback(namespace, name, target, timeout)

    # Service ------------------------------------------------------------------------

    def ensure_service(self, spec: AppSpec) -> ObservedService:
        """Create the NodePort Service, or update its ports keeping the NodePorts it has."""
        return ensure_service(self.kube, spec, self.log)
