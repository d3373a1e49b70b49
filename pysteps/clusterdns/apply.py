"""Putting rendered DNS data into the cluster's ConfigMap: a pure plan, then one write at most.

Only the keys pysteps renders are compared and written (`Corefile`, or `stubDomains` and
`upstreamNameservers`); other keys, labels and annotations of an existing ConfigMap are kept.
The write carries the resourceVersion that was read, so a concurrent change is never overwritten:
the plan is made again from what is there now.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pysteps.clients.kube import Conflict, KubeApi
from pysteps.clusterdns.render import configmap_manifest
from pysteps.errors import PreconditionError, ServiceError

Action = Literal["create", "update", "unchanged"]


@dataclass(frozen=True)
class KeyChange:
    """One data key whose value differs: OLD (None if absent) becomes NEW."""

    key: str
    old: str | None
    new: str

    def diff(self) -> list[str]:
        """A unified diff of the value, line by line."""
        old = [] if self.old is None else self.old.splitlines()
        return list(
            difflib.unified_diff(
                old,
                self.new.splitlines(),
                fromfile=f"{self.key} (cluster)",
                tofile=f"{self.key} (rendered)",
                n=1,
                lineterm="",
            )
        )


@dataclass(frozen=True)
class ConfigMapPlan:
    namespace: str
    name: str
    action: Action
    data: Mapping[str, str]
    changes: tuple[KeyChange, ...]
    resource_version: str | None = None

    def describe(self) -> list[str]:
        """One line for the decision, then the diff of each changed key."""
        where = f"ConfigMap {self.namespace}/{self.name}"
        keys = ", ".join(c.key for c in self.changes)
        if self.action == "unchanged":
            return [f"{where}: unchanged ({', '.join(sorted(self.data))})"]
        head = f"{where}: {'create with' if self.action == 'create' else 'change'} {keys}"
        return [head] + [line for change in self.changes for line in change.diff()]


def plan_configmap(
    namespace: str, name: str, desired: Mapping[str, str], live: Mapping[str, Any] | None
) -> ConfigMapPlan:
    """Compare DESIRED data keys with the LIVE ConfigMap (None: absent). Pure."""
    if live is None:
        changes = tuple(KeyChange(k, None, v) for k, v in sorted(desired.items()))
        return ConfigMapPlan(namespace, name, "create", dict(desired), changes)
    live_data = live.get("data") or {}
    changes = tuple(
        KeyChange(k, live_data.get(k), v)
        for k, v in sorted(desired.items())
        if live_data.get(k) != v
    )
    version = live.get("metadata", {}).get("resourceVersion")
    action: Action = "update" if changes else "unchanged"
    return ConfigMapPlan(namespace, name, action, dict(desired), changes, version)


def execute_plan(kube: KubeApi, plan: ConfigMapPlan, live: Mapping[str, Any] | None) -> None:
    """Carry PLAN out: at most one create or one replace (guarded by the read resourceVersion)."""
    if plan.action == "unchanged":
        return
    if plan.action == "create":
        if kube.get("Namespace", None, plan.namespace) is None:
            raise PreconditionError(
                f"namespace {plan.namespace} does not exist; create it or pass --namespace"
            )
        kube.create(configmap_manifest(plan.namespace, plan.name, plan.data))
        return
    assert live is not None
    obj = copy.deepcopy(dict(live))
    obj.setdefault("kind", "ConfigMap")
    obj.setdefault("apiVersion", "v1")
    obj["data"] = {**(live.get("data") or {}), **plan.data}
    obj["metadata"]["resourceVersion"] = plan.resource_version
    kube.replace(obj)


def apply_dns_data(
    kube: KubeApi,
    namespace: str,
    name: str,
    desired: Mapping[str, str],
    dry_run: bool,
    report: Callable[[str], None],
    attempts: int = 3,
) -> ConfigMapPlan:
    """Read, plan, write when needed; on a concurrent change read and plan again."""
    for _ in range(attempts):
        live = kube.get("ConfigMap", namespace, name)
        plan = plan_configmap(namespace, name, desired, live)
        if dry_run or plan.action == "unchanged":
            break
        try:
            execute_plan(kube, plan, live)
        except Conflict:
            continue  # changed (or created) meanwhile: plan again from what is there now
        break
    else:
        raise ServiceError(
            f"ConfigMap {namespace}/{name} kept changing under us ({attempts} tries); run again"
        )
    lines = plan.describe()
    if dry_run and plan.action != "unchanged":
        lines[0] += " (dry run: nothing written)"
    for line in lines:
        report(line)
    return plan
