"""What an app owns: only what its own objects record, never what its name suggests.

pysteps labels every object it makes (app.kubernetes.io/managed-by=pysteps and
app.kubernetes.io/name=<app>) and the workload records the app's mode and code directory
(annotations pysteps.io/mode and pysteps.io/code-path). Destroy, purge and route removal act
on those records alone; a deploy refuses a code directory another app records as its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pysteps.clients.kube import KubeApi
from pysteps.errors import InputError
from pysteps.manifests import (
    ANN_CODE_PATH,
    ANN_MODE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    MANAGED_BY,
    env_secret_name,
)
from pysteps.names import DNS_LABEL

MANAGED = {LABEL_MANAGED_BY: MANAGED_BY}


def owned_by(obj: dict[str, Any] | None, app: str) -> bool:
    """OBJ carries the labels pysteps wrote for APP."""
    if obj is None:
        return False
    labels = obj.get("metadata", {}).get("labels") or {}
    return labels.get(LABEL_MANAGED_BY) == MANAGED_BY and labels.get(LABEL_NAME) == app


@dataclass
class AppObjects:
    """An app's own objects on the cluster, as found by their labels."""

    namespace: str
    name: str
    deployment: dict[str, Any] | None = None
    controllers: list[dict[str, Any]] = field(default_factory=list)
    service: dict[str, Any] | None = None
    secret: dict[str, Any] | None = None

    @property
    def exists(self) -> bool:
        return bool(self.deployment or self.controllers or self.service or self.secret)

    def _workloads(self) -> list[dict[str, Any]]:
        return [o for o in (self.deployment, *self.controllers) if o is not None]

    @property
    def mode(self) -> str | None:
        """The mode the workload records (None without a workload)."""
        for obj in self._workloads():
            mode = (obj["metadata"].get("annotations") or {}).get(ANN_MODE)
            if mode:
                return str(mode)
        return None

    @property
    def code_path(self) -> str | None:
        """The code directory the workload records, when it is a code-mode app's own.

        Only a path under the app's namespace counts: a record that is not (made by an older
        pysteps, or edited by hand) is never acted on.
        """
        if self.mode != "code":
            return None
        for obj in self._workloads():
            path = (obj["metadata"].get("annotations") or {}).get(ANN_CODE_PATH)
            if path and is_namespaced_code_path(str(path), self.namespace):
                return str(path)
        return None


def is_namespaced_code_path(path: str, namespace: str) -> bool:
    """PATH is 2 to 4 DNS labels on the volume, the first one NAMESPACE."""
    return (
        re.fullmatch(rf"{DNS_LABEL}(/{DNS_LABEL}){{1,3}}", path) is not None
        and path.split("/")[0] == namespace
    )


def find_app(kube: KubeApi, namespace: str, name: str) -> AppObjects:
    """The app's own objects (reads only)."""
    selector = {**MANAGED, LABEL_NAME: name}
    dep = kube.get("Deployment", namespace, name)
    svc = kube.get("Service", namespace, name)
    secret = kube.get("Secret", namespace, env_secret_name(name))
    return AppObjects(
        namespace,
        name,
        deployment=dep if owned_by(dep, name) else None,
        controllers=[
            rc
            for rc in kube.list("ReplicationController", namespace, selector)
            if owned_by(rc, name)
        ],
        service=svc if owned_by(svc, name) else None,
        secret=secret if owned_by(secret, name) else None,
    )


def check_code_path_free(kube: KubeApi, namespace: str, name: str, path: str) -> None:
    """InputError when another app of NAMESPACE records PATH (or a directory around it)."""
    for kind in ("Deployment", "ReplicationController"):
        for obj in kube.list(kind, namespace, MANAGED):
            other = (obj["metadata"].get("labels") or {}).get(LABEL_NAME)
            theirs = (obj["metadata"].get("annotations") or {}).get(ANN_CODE_PATH)
            if other == name or not theirs:
                continue
            if _overlap(path, str(theirs)):
                raise InputError(
                    f"spec field 'code.path': {path} overlaps {theirs}, the code directory of "
                    f"{namespace}/{other}; give this app its own directory"
                )


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")
