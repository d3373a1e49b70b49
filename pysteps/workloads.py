"""The app's objects on the cluster: observe them, roll them out, roll them back, remove them.

Deployments roll out server-side (apps/v1 RollingUpdate). ReplicationControllers roll out
client-side, as `kubectl rolling-update` did: one controller per revision, the new one scaled
up step by step while the old one is scaled down, and the old one scaled back on failure.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pysteps import manifests
from pysteps.clients.kube import Conflict, KubeApi
from pysteps.errors import PreconditionError, PystepsError
from pysteps.manifests import (
    ANN_CODE_COMMIT,
    ANN_COMMIT,
    ANN_SPEC_HASH,
    LABEL_RC_REVISION,
    Release,
)
from pysteps.rollout import (
    REVISION_ANNOTATION,
    RolloutOutcome,
    newest_replicaset,
    owned_replicasets,
    rs_revision,
    wait_for_deployment,
    wait_for_pods_ready,
)
from pysteps.spec import AppSpec
from pysteps.state import ObservedService, ObservedWorkload

Log = Callable[[str], None]
ANN_ROLLED_OUT = "pysteps.io/rolled-out"
_PYSTEPS_ANNOTATIONS = (
    ANN_SPEC_HASH,
    ANN_COMMIT,
    manifests.ANN_MODE,
    manifests.ANN_CHANGE_CAUSE,
    manifests.ANN_DOMAINS,
    manifests.ANN_CODE_PATH,
)


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


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("annotations") or {})


def _container_image(template: dict[str, Any]) -> str | None:
    containers = template.get("spec", {}).get("containers") or []
    return str(containers[0].get("image")) if containers else None


def workload_from_deployment(dep: dict[str, Any]) -> ObservedWorkload:
    ann = _annotations(dep)
    template = dep["spec"]["template"]
    status = dep.get("status", {})
    return ObservedWorkload(
        kind="Deployment",
        name=dep["metadata"]["name"],
        spec_hash=ann.get(ANN_SPEC_HASH),
        commit=ann.get(ANN_COMMIT),
        image=_container_image(template),
        replicas=int(dep["spec"].get("replicas", 1)),
        ready_replicas=int(status.get("readyReplicas", 0)),
        code_commit=_annotations(template).get(ANN_CODE_COMMIT),
        revision=int(ann.get(REVISION_ANNOTATION, "0") or 0),
    )


def workload_from_controllers(rcs: list[dict[str, Any]]) -> ObservedWorkload:
    """The app seen through its ReplicationControllers: the newest revision is the live one."""
    rcs = sorted(rcs, key=rc_revision)
    live = rcs[-1]
    ann = _annotations(live)
    template = live["spec"]["template"]
    return ObservedWorkload(
        kind="ReplicationController",
        name=live["metadata"]["name"],
        spec_hash=ann.get(ANN_SPEC_HASH),
        commit=ann.get(ANN_COMMIT),
        image=_container_image(template),
        replicas=int(ann.get("pysteps.io/desired-replicas", live["spec"].get("replicas", 1))),
        ready_replicas=sum(int(rc.get("status", {}).get("readyReplicas", 0)) for rc in rcs),
        code_commit=_annotations(template).get(ANN_CODE_COMMIT),
        revision=rc_revision(live),
        controllers=tuple(
            (rc["metadata"]["name"], int(rc["spec"].get("replicas", 0))) for rc in rcs
        ),
    )


def service_from_object(svc: dict[str, Any]) -> ObservedService:
    return ObservedService(
        ports=tuple(
            (str(p.get("name", "")), int(p["port"]), int(p.get("nodePort", 0)))
            for p in svc["spec"].get("ports") or []
        )
    )


class Workloads:
    """Cluster operations on one app's workload and Service."""

    def __init__(self, kube: KubeApi, log: Log = print, poll: float = 1.0) -> None:
        self.kube = kube
        self.log = log
        self.poll = poll

    # Observe ------------------------------------------------------------------------

    def observe(self, namespace: str, name: str) -> ObservedWorkload | None:
        dep = self.kube.get("Deployment", namespace, name)
        if dep is not None:
            return workload_from_deployment(dep)
        rcs = self.kube.list("ReplicationController", namespace, app_selector(name))
        return workload_from_controllers(rcs) if rcs else None

    def observe_service(self, namespace: str, name: str) -> ObservedService | None:
        svc = self.kube.get("Service", namespace, name)
        return service_from_object(svc) if svc else None

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
        RESTORE_ON_FAILURE; a failed Deployment is rolled back by the caller (`rollback`).
        """
        template = manifests.pod_template(spec, image, code_commit, code_volume)
        if spec.kind == "Deployment":
            desired = manifests.deployment(spec, release, template)
            return self._roll_deployment(spec, desired)
        meta = manifests.workload_metadata(spec, release, manifests.desired_hash(spec, template))
        target = ControllerTarget(
            spec.namespace,
            spec.name,
            spec.replicas,
            spec.rollout.timeout_seconds,
            spec.rollout.max_surge,
        )
        return self._roll_controllers(target, template, meta, restore_on_failure)

    def _roll_deployment(self, spec: AppSpec, desired: dict[str, Any]) -> RolloutOutcome:
        ns, name = spec.namespace, spec.name
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
        outcome = wait_for_deployment(
            self.kube, ns, name, spec.rollout.timeout_seconds, self.log, self.poll
        )
        if outcome.ok:
            self._mark_rolled_out_deployment(ns, name)
        return outcome

    def _mark_rolled_out_deployment(self, ns: str, name: str) -> None:
        dep = self.kube.get("Deployment", ns, name)
        rs = newest_replicaset(self.kube, dep) if dep else None
        if rs is not None:
            self._mark_rolled_out("ReplicaSet", ns, rs["metadata"]["name"])

    def _mark_rolled_out(self, kind: str, ns: str, name: str) -> None:
        """Remember that this revision became available: rollbacks go back to such revisions."""
        stamp = {"metadata": {"annotations": {ANN_ROLLED_OUT: _now()}}}
        try:
            self.kube.patch(kind, ns, name, stamp)
        except PystepsError as exc:  # the rollout is done; only the history note is missing
            self.log(f"warning: could not mark {kind} {name} as rolled out: {exc}")

    def _roll_controllers(
        self,
        target: ControllerTarget,
        template: dict[str, Any],
        metadata: dict[str, Any],
        restore_on_failure: bool = True,
    ) -> RolloutOutcome:
        ns, name, want = target.namespace, target.name, target.replicas
        deadline = time.monotonic() + target.timeout
        rcs = sorted(
            self.kube.list("ReplicationController", ns, app_selector(name)), key=rc_revision
        )
        before = {rc["metadata"]["name"]: int(rc["spec"].get("replicas", 0)) for rc in rcs}
        revision = (rc_revision(rcs[-1]) if rcs else 0) + 1
        new = manifests.replication_controller(ns, name, template, revision, 0, metadata, want)
        new_name = new["metadata"]["name"]
        self.kube.create(new)
        self.log(f"created ReplicationController {ns}/{new_name} (revision {revision})")
        step = max(1, math.ceil(want * _percent(target.max_surge)))
        selector = {**app_selector(name), LABEL_RC_REVISION: str(revision)}
        current = 0
        while current < want:
            current = min(want, current + step)
            self._scale_rc(ns, new_name, current)
            outcome = wait_for_pods_ready(
                self.kube, ns, selector, current, deadline, self.log, self.poll
            )
            if not outcome.ok:
                if restore_on_failure:
                    self._restore_controllers(ns, new_name, before)
                return outcome
            self._scale_down_old(ns, before, want - current)
        self._scale_down_old(ns, before, 0)
        self._mark_rolled_out("ReplicationController", ns, new_name)
        self._prune_controllers(ns, name, keep=3)
        return RolloutOutcome(True, f"{want} of {want} pods ready on revision {revision}")

    def _scale_rc(self, ns: str, name: str, replicas: int) -> None:
        self.kube.patch("ReplicationController", ns, name, {"spec": {"replicas": replicas}})
        self.log(f"  scaled ReplicationController {name} to {replicas}")

    def _scale_down_old(self, ns: str, before: dict[str, int], remaining: int) -> None:
        """Leave at most REMAINING old replicas, taking them from the newest old controller last."""
        # BEFORE lists the controllers oldest revision first: the newest keeps its replicas.
        for rc_name in reversed(list(before)):
            live = self.kube.get("ReplicationController", ns, rc_name)
            if live is None:
                continue
            have = int(live["spec"].get("replicas", 0))
            keep = min(have, remaining)
            remaining -= keep
            if keep != have:
                self._scale_rc(ns, rc_name, keep)

    def _restore_controllers(self, ns: str, new_name: str, before: dict[str, int]) -> None:
        self.log(f"rolling back: scaling old controllers back, removing {new_name}")
        for rc_name, replicas in before.items():
            if self.kube.get("ReplicationController", ns, rc_name) is not None:
                self._scale_rc(ns, rc_name, replicas)
        self._scale_rc(ns, new_name, 0)
        self.kube.delete("ReplicationController", ns, new_name)

    def _prune_controllers(self, ns: str, name: str, keep: int) -> None:
        rcs = sorted(
            self.kube.list("ReplicationController", ns, app_selector(name)), key=rc_revision
        )
        for rc in rcs[:-keep]:
            if int(rc["spec"].get("replicas", 0)) == 0:
                self.kube.delete("ReplicationController", ns, rc["metadata"]["name"])

    # Roll back ----------------------------------------------------------------------

    def rollback(
        self, namespace: str, name: str, timeout: float, to_revision: int | None = None
    ) -> RolloutOutcome:
        """Put the previous (or the given) revision's pod template back and wait for it."""
        dep = self.kube.get("Deployment", namespace, name)
        if dep is not None:
            return self._rollback_deployment(dep, timeout, to_revision)
        rcs = sorted(
            self.kube.list("ReplicationController", namespace, app_selector(name)), key=rc_revision
        )
        if not rcs:
            raise PreconditionError(f"{namespace}/{name} has no workload to roll back")
        return self._rollback_controllers(namespace, name, rcs, timeout, to_revision)

    def _rollback_deployment(
        self, dep: dict[str, Any], timeout: float, to_revision: int | None
    ) -> RolloutOutcome:
        ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
        current = int(_annotations(dep).get(REVISION_ANNOTATION, "0") or 0)
        history = owned_replicasets(self.kube, dep)
        target = _pick_revision(
            [(rs_revision(rs), rs) for rs in history], current, to_revision, f"{ns}/{name}"
        )
        template = copy.deepcopy(target["spec"]["template"])
        template["metadata"].get("labels", {}).pop("pod-template-hash", None)
        dep = copy.deepcopy(dep)
        dep["spec"]["template"] = template
        anns = dep["metadata"].setdefault("annotations", {})
        for key in _PYSTEPS_ANNOTATIONS:
            if key in _annotations(target):
                anns[key] = _annotations(target)[key]
        dep.pop("status", None)
        self.kube.replace(dep)
        self.log(f"rolled Deployment {ns}/{name} back to revision {rs_revision(target)}")
        outcome = wait_for_deployment(self.kube, ns, name, timeout, self.log, self.poll)
        if outcome.ok:
            self._mark_rolled_out_deployment(ns, name)
        return outcome

    def _rollback_controllers(
        self,
        ns: str,
        name: str,
        rcs: list[dict[str, Any]],
        timeout: float,
        to_revision: int | None,
    ) -> RolloutOutcome:
        current = rc_revision(rcs[-1])
        target = _pick_revision(
            [(rc_revision(rc), rc) for rc in rcs], current, to_revision, f"{ns}/{name}"
        )
        template = copy.deepcopy(target["spec"]["template"])
        template["metadata"].get("labels", {}).pop(LABEL_RC_REVISION, None)
        live_meta = rcs[-1]["metadata"]
        metadata = {
            "labels": {
                k: v for k, v in (live_meta.get("labels") or {}).items() if k != LABEL_RC_REVISION
            },
            "annotations": {
                k: v for k, v in _annotations(target).items() if k in _PYSTEPS_ANNOTATIONS
            },
        }
        replicas = int(_annotations(rcs[-1]).get("pysteps.io/desired-replicas", 1))
        self.log(f"rolling {ns}/{name} back to the template of revision {rc_revision(target)}")
        return self._roll_controllers(
            ControllerTarget(ns, name, replicas, timeout, "25%"), template, metadata
        )

    # Service ------------------------------------------------------------------------

    def ensure_service(self, spec: AppSpec) -> ObservedService:
        """Create the NodePort Service, or update its ports keeping the NodePorts it has."""
        live = self.kube.get("Service", spec.namespace, spec.name)
        if live is None:
            created = self.kube.create(manifests.service(spec))
            self.log(f"created Service {spec.namespace}/{spec.name}")
            return service_from_object(created)
        desired = manifests.service(spec, service_from_object(live).node_ports())
        merged = copy.deepcopy(live)
        merged["spec"]["ports"] = desired["spec"]["ports"]
        merged["spec"]["selector"] = desired["spec"]["selector"]
        merged.pop("status", None)
        updated = self.kube.replace(merged)
        self.log(f"updated Service {spec.namespace}/{spec.name}")
        return service_from_object(updated)

    # Destroy ------------------------------------------------------------------------

    def destroy(self, namespace: str, name: str) -> list[str]:
        """Delete everything the app owns on the cluster; returns what was deleted."""
        deleted = []
        if self.kube.delete("Deployment", namespace, name):
            deleted.append(f"Deployment {namespace}/{name}")
        for rc in self.kube.list("ReplicationController", namespace, app_selector(name)):
            rc_name = rc["metadata"]["name"]
            self.kube.patch("ReplicationController", namespace, rc_name, {"spec": {"replicas": 0}})
            if self.kube.delete("ReplicationController", namespace, rc_name):
                deleted.append(f"ReplicationController {namespace}/{rc_name}")
        for rs in self.kube.list("ReplicaSet", namespace, app_selector(name)):
            if self.kube.delete("ReplicaSet", namespace, rs["metadata"]["name"]):
                deleted.append(f"ReplicaSet {namespace}/{rs['metadata']['name']}")
        for pod in self.kube.list("Pod", namespace, app_selector(name)):
            if self.kube.delete("Pod", namespace, pod["metadata"]["name"]):
                deleted.append(f"Pod {namespace}/{pod['metadata']['name']}")
        if self.kube.delete("Service", namespace, name):
            deleted.append(f"Service {namespace}/{name}")
        return deleted


def _pick_revision(
    revisions: list[tuple[int, dict[str, Any]]], current: int, wanted: int | None, app: str
) -> dict[str, Any]:
    if wanted is not None:
        for rev, obj in revisions:
            if rev == wanted:
                return obj
        known = ", ".join(str(r) for r, _ in revisions) or "none"
        raise PreconditionError(f"--to-revision {wanted}: {app} has revisions {known}")
    older = [(rev, obj) for rev, obj in revisions if rev < current]
    if not older:
        raise PreconditionError(f"{app} has no earlier revision to roll back to")
    # Go back to the newest earlier revision that once became available. Revisions made
    # before pysteps kept that note carry none: then, as kubectl does, the previous one.
    good = [(rev, obj) for rev, obj in older if ANN_ROLLED_OUT in _annotations(obj)]
    if good:
        return good[-1][1]
    if any(ANN_ROLLED_OUT in _annotations(obj) for _rev, obj in revisions):
        raise PreconditionError(
            f"{app}: no earlier revision ever became available; left as it is "
            "(pysteps rollback --to-revision N to force one)"
        )
    return older[-1][1]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _percent(value: str) -> float:
    return int(value.rstrip("%")) / 100 if value.endswith("%") else 1.0
