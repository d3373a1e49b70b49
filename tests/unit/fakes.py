"""In-memory fakes of pysteps' own client interfaces, for unit tests only.

FakeKube keeps objects in a dict and plays a tiny deployment controller: every pod template
change makes a new ReplicaSet revision; a template whose image contains "never-ready" never
becomes available and ends in ProgressDeadlineExceeded; "crash" gives CrashLoopBackOff pods.
Integration tests use the real control plane instead.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pysteps.clients.kube import KINDS, AlreadyExists, Conflict
from pysteps.errors import InputError, PreconditionError

_uid = itertools.count(1)


def _key(kind: str, ns: str | None, name: str) -> tuple[str, str, str]:
    return (kind, ns if KINDS[kind].namespaced else "" or "", name)


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self._rv = itertools.count(1)

    # KubeApi -------------------------------------------------------------------------

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        self.requests.append(("get", kind))
        obj = self.objects.get(_key(kind, namespace, name))
        return copy.deepcopy(obj) if obj else None

    def list(
        self, kind: str, namespace: str | None, selector: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        self.requests.append(("list", kind))
        out = []
        for (k, ns, _n), obj in self.objects.items():
            if k != kind or (namespace and ns != namespace):
                continue
            labels = obj["metadata"].get("labels") or {}
            if selector and any(labels.get(a) != b for a, b in selector.items()):
                continue
            out.append(copy.deepcopy(obj))
        return out

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        self.requests.append(("create", obj["kind"]))
        obj = copy.deepcopy(dict(obj))
        meta = obj["metadata"]
        key = _key(obj["kind"], meta.get("namespace"), meta["name"])
        if key in self.objects:
            raise AlreadyExists(f"{obj['kind']} {meta['name']} already exists")
        meta["uid"] = f"uid-{next(_uid)}"
        meta["generation"] = 1
        meta["resourceVersion"] = str(next(self._rv))
        if obj["kind"] == "Service":
            for i, port in enumerate(obj["spec"]["ports"]):
                port.setdefault("nodePort", 30080 + i)
        self.objects[key] = obj
        self._reconcile(obj)
        return copy.deepcopy(obj)

    def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        self.requests.append(("replace", obj["kind"]))
        obj = copy.deepcopy(dict(obj))
        meta = obj["metadata"]
        key = _key(obj["kind"], meta.get("namespace"), meta["name"])
        live = self.objects.get(key)
        if live is None:
            raise Conflict("gone")
        if (
            meta.get("resourceVersion")
            and meta["resourceVersion"] != live["metadata"]["resourceVersion"]
        ):
            raise Conflict("the object has been modified")
        meta["uid"] = live["metadata"]["uid"]
        spec_changed = obj.get("spec") != live.get("spec")
        meta["generation"] = live["metadata"]["generation"] + (1 if spec_changed else 0)
        meta["resourceVersion"] = str(next(self._rv))
        obj["status"] = live.get("status", {})
        self.objects[key] = obj
        self._reconcile(obj)
        return copy.deepcopy(obj)

    def patch(
        self, kind: str, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        self.requests.append(("patch", kind))
        live = self.objects[_key(kind, namespace, name)]
        _merge(live, patch)
        live["metadata"]["resourceVersion"] = str(next(self._rv))
        self._reconcile(live)
        return copy.deepcopy(live)

    def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        self.requests.append(("delete", kind))
        return self.objects.pop(_key(kind, namespace, name), None) is not None

    def pod_logs(
        self, namespace: str, pod: str, container: str, tail_lines: int, previous: bool
    ) -> str:
        return f"log of {pod}/{container}\npanic: boom"

    # A tiny controller -------------------------------------------------------------------

    def _reconcile(self, obj: dict[str, Any]) -> None:
        if obj["kind"] == "Deployment":
            self._reconcile_deployment(obj)
        elif obj["kind"] == "ReplicationController":
            self._reconcile_rc(obj)

    def _reconcile_deployment(self, dep: dict[str, Any]) -> None:
        ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
        template = dep["spec"]["template"]
        rss = [
            o
            for (k, n, _), o in self.objects.items()
            if k == "ReplicaSet"
            and n == ns
            and o["metadata"]["ownerReferences"][0]["uid"] == dep["metadata"]["uid"]
        ]
        current = next((rs for rs in rss if rs["spec"]["template"] == template), None)
        revision = max(
            [int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) for rs in rss]
            or [0]
        )
        if current is None:
            revision += 1
            pod_hash = f"h{revision}"
            t = copy.deepcopy(template)
            t["metadata"].setdefault("labels", {})["pod-template-hash"] = pod_hash
            current = {
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{name}-{pod_hash}",
                    "namespace": ns,
                    "uid": f"uid-{next(_uid)}",
                    "labels": dict(t["metadata"]["labels"]),
                    "annotations": {
                        **(dep["metadata"].get("annotations") or {}),
                        "deployment.kubernetes.io/revision": str(revision),
                    },
                    "ownerReferences": [{"uid": dep["metadata"]["uid"], "kind": "Deployment"}],
                },
                "spec": {"template": t, "replicas": dep["spec"]["replicas"]},
            }
            # RS templates keep their hash label; compare without it next time.
            current["spec"]["template"] = template
            current["metadata"]["labels"]["pod-template-hash"] = pod_hash
            self.objects[("ReplicaSet", ns, current["metadata"]["name"])] = current
        else:
            revision = int(current["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
        dep["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = str(
            revision
        )
        image = template["spec"]["containers"][0]["image"]
        want = dep["spec"]["replicas"]
        pod_hash = current["metadata"]["labels"]["pod-template-hash"]
        self._set_pods(ns, name, dep["spec"]["selector"]["matchLabels"], pod_hash, image, want)
        status: dict[str, Any] = {"observedGeneration": dep["metadata"]["generation"]}
        if "never-ready" in image:
            status.update(replicas=want, updatedReplicas=want, availableReplicas=0)
            status["conditions"] = [
                {"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "too slow"}
            ]
        elif "crash" in image:
            status.update(replicas=want, updatedReplicas=want, availableReplicas=0)
        else:
            status.update(
                replicas=want, updatedReplicas=want, availableReplicas=want, readyReplicas=want
            )
        dep["status"] = status

    def _reconcile_rc(self, rc: dict[str, Any]) -> None:
        ns = rc["metadata"]["namespace"]
        image = rc["spec"]["template"]["spec"]["containers"][0]["image"]
        sel = rc["spec"]["selector"]
        self._set_pods(ns, rc["metadata"]["name"], sel, None, image, rc["spec"]["replicas"])
        ready = 0 if ("crash" in image or "never-ready" in image) else rc["spec"]["replicas"]
        rc["status"] = {"replicas": rc["spec"]["replicas"], "readyReplicas": ready}

    def _set_pods(
        self,
        ns: str,
        owner: str,
        labels: Mapping[str, str],
        pod_hash: str | None,
        image: str,
        want: int,
    ) -> None:
        for key in [
            k for k, o in self.objects.items() if k[0] == "Pod" and o["metadata"]["owner"] == owner
        ]:
            del self.objects[key]
        for i in range(want):
            name = f"{owner}-{pod_hash or 'p'}-{i}"
            crash = "crash" in image
            ready = not crash and "never-ready" not in image
            cs: dict[str, Any] = {"name": "app", "restartCount": 3 if crash else 0, "state": {}}
            if crash:
                cs["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}
            pod_labels = dict(labels)
            if pod_hash:
                pod_labels["pod-template-hash"] = pod_hash
            self.objects[("Pod", ns, name)] = {
                "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "labels": pod_labels, "owner": owner},
                "status": {
                    "phase": "Running",
                    "hostIP": f"127.0.0.{11 + i % 2}",
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                    "containerStatuses": [cs],
                },
            }


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for k, v in patch.items():
        if v is None:  # JSON merge patch: null removes the key
            target.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(target.get(k), dict):
            _merge(target[k], v)
        else:
            target[k] = copy.deepcopy(v)


@dataclass(frozen=True)
class FakeBuilt:
    reference: str
    digest: str
    built: bool


class FakeImages:
    """The image builder: 'builds' by recording a digest for the commit tag."""

    def __init__(self) -> None:
        self.digests: dict[tuple[str, str], str] = {}
        self.builds = 0

    def remote_digest(self, repository: str, tag: str) -> str | None:
        return self.digests.get((repository, tag))

    def ensure_image(
        self, *, context: Path, dockerfile: str, repository: str, commit: str, **_: Any
    ) -> FakeBuilt:
        digest = self.digests.get((repository, commit))
        built = digest is None
        if digest is None:
            self.builds += 1
            digest = "sha256:" + f"{self.builds:064x}"
            self.digests[(repository, commit)] = digest
        return FakeBuilt(f"{repository}@{digest}", digest, built)


@dataclass(frozen=True)
class FakeSync:
    mode: str
    files_written: int
    bytes_written: int


class FakeCode:
    """The code store: releases per path, a current pointer."""

    volume = "gv-test"

    def __init__(self) -> None:
        self.releases_by_path: dict[str, list[str]] = {}
        self.current: dict[str, str] = {}
        self.repo_lacks: set[str] = set()  # commits the checkout does not have

    def deployed_commit(self, path: str) -> str | None:
        return self.current.get(path)

    def sync(
        self,
        path: str,
        repo: Path,
        commit: str,
        keep: int,
        *,
        switch: bool = True,
        protect: Sequence[str] = (),
    ) -> FakeSync:
        if self.repo_lacks and commit in self.repo_lacks:
            raise InputError(f"commit {commit!r} is not in repository {repo}")
        rels = self.releases_by_path.setdefault(path, [])
        if commit not in rels:
            rels.append(commit)
        self.protected = tuple(protect)
        if switch:
            self.current[path] = commit
        return FakeSync("full" if len(rels) == 1 else "incremental", 1, 10)

    def switch(self, path: str, commit: str) -> None:
        if commit not in self.releases_by_path.get(path, []):
            raise PreconditionError(f"release {commit[:12]} is not on the volume")
        self.current[path] = commit

    def releases(self, path: str) -> list[str]:
        return list(self.releases_by_path.get(path, []))

    def purge(self, path: str) -> bool:
        self.current.pop(path, None)
        return self.releases_by_path.pop(path, None) is not None


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
