"""In-memory fakes of pysteps' own client interfaces, for unit tests only.

FakeKube keeps objects in a dict and plays a tiny deployment controller: every pod template
change makes a new ReplicaSet revision; a template whose image contains "never-ready" never
becomes available and ends in ProgressDeadlineExceeded; "crash" gives CrashLoopBackOff pods.
Integration tests use the real control plane instead.
"""

from __future__ import annotations

import base64
import copy
import errno
import itertools
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from pysteps.clients.kube import KINDS, AlreadyExists, Conflict
from pysteps.clients.storage import AppDirectory, validate_app_path
from pysteps.errors import InputError, PreconditionError, ServiceError
from pysteps.routes import Route, RouteConflict, StoredRoute, route_key

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

    def delete(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        preconditions: Mapping[str, Any] | None = None,
    ) -> bool:
        self.requests.append(("delete", kind))
        key = _key(kind, namespace, name)
        live = self.objects.get(key)
        for key_name, value in (preconditions or {}).items():
            if live is not None and value and live["metadata"].get(key_name) != value:
                raise Conflict(f"precondition failed: {key_name}")
        return self.objects.pop(key, None) is not None

    def pod_logs(
        self, namespace: str, pod: str, container: str, tail_lines: int, previous: bool
    ) -> str:
        # Like a careless app, it prints its environment (secret values included) on crash.
        env = [
            f"{k}={base64.b64decode(v).decode()}"
            for (kind, ns, _n), obj in sorted(self.objects.items())
            if kind == "Secret" and ns == namespace
            for k, v in sorted((obj.get("data") or {}).items())
        ]
        return "\n".join([f"log of {pod}/{container}", *env, "panic: boom"])

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

    def ensure_commit_image(
        self,
        *,
        checkout: Path,
        context: str,
        dockerfile: str,
        repository: str,
        commit: str,
        **_: Any,
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


# In-memory storage: the GlusterFS volume's stand-in (same StorageBackend primitives).


@dataclass(eq=False)
class _MemFile:
    data: bytes
    mode: int


@dataclass(eq=False)
class _MemLink:
    target: str


@dataclass(eq=False)
class _MemDir:
    entries: dict[str, _MemFile | _MemLink | _MemDir] = field(default_factory=dict)


class _MemoryBackend:
    """StorageBackend on a dict tree; hard links share one _MemFile object."""

    def __init__(self, storage: MemoryStorage) -> None:
        self._storage = storage
        self._lock = threading.RLock()

    def describe(self) -> str:
        return "memory://"

    def _check(self) -> None:
        if not self._storage.reachable:
            raise ServiceError(
                "storage memory:// is unreachable (MemoryStorage.reachable is False)"
            )

    def _parent(self, path: str) -> tuple[_MemDir, str]:
        parts = [p for p in path.split("/") if p]
        if not parts:
            raise OSError(errno.EINVAL, "no name", path)
        node: _MemDir | _MemFile | _MemLink = self._storage.root
        for part in parts[:-1]:
            if not isinstance(node, _MemDir):
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
            child = node.entries.get(part)
            if child is None:
                raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)
            node = child
        if not isinstance(node, _MemDir):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        return node, parts[-1]

    def _get(self, path: str) -> _MemFile | _MemLink | _MemDir | None:
        if not [p for p in path.split("/") if p]:
            return self._storage.root
        try:
            parent, name = self._parent(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return parent.entries.get(name)

    def _need(self, path: str) -> _MemFile | _MemLink | _MemDir:
        node = self._get(path)
        if node is None:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)
        return node

    def kind(self, path: str) -> str | None:
        with self._lock:
            self._check()
            node = self._get(path)
            if node is None:
                return None
            return {_MemFile: "file", _MemLink: "symlink", _MemDir: "dir"}[type(node)]

    def file_mode(self, path: str) -> int:
        with self._lock:
            self._check()
            node = self._need(path)
            return node.mode if isinstance(node, _MemFile) else 0o777

    def mkdir(self, path: str) -> None:
        with self._lock:
            self._check()
            parent, name = self._parent(path)
            if name in parent.entries:
                raise FileExistsError(errno.EEXIST, "file exists", path)
            parent.entries[name] = _MemDir()

    def create(self, path: str, data: bytes, mode: int) -> None:
        with self._lock:
            self._check()
            parent, name = self._parent(path)
            if name in parent.entries:
                raise FileExistsError(errno.EEXIST, "file exists", path)
            parent.entries[name] = _MemFile(bytes(data), mode)

    def read(self, path: str) -> bytes:
        with self._lock:
            self._check()
            node = self._need(path)
            if isinstance(node, _MemDir):
                raise IsADirectoryError(errno.EISDIR, "is a directory", path)
            if isinstance(node, _MemLink):
                raise OSError(errno.ELOOP, "unresolved symbolic link", path)
            return node.data

    def unlink(self, path: str) -> None:
        with self._lock:
            self._check()
            parent, name = self._parent(path)
            node = parent.entries.get(name)
            if node is None:
                raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)
            if isinstance(node, _MemDir):
                raise IsADirectoryError(errno.EISDIR, "is a directory", path)
            del parent.entries[name]

    def rmdir(self, path: str) -> None:
        with self._lock:
            self._check()
            parent, name = self._parent(path)
            node = parent.entries.get(name)
            if node is None:
                raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)
            if not isinstance(node, _MemDir):
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
            if node.entries:
                raise OSError(errno.ENOTEMPTY, "directory not empty", path)
            del parent.entries[name]

    def rename(self, src: str, dst: str) -> None:
        with self._lock:
            self._check()
            sparent, sname = self._parent(src)
            node = sparent.entries.get(sname)
            if node is None:
                raise FileNotFoundError(errno.ENOENT, "no such file or directory", src)
            dparent, dname = self._parent(dst)
            existing = dparent.entries.get(dname)
            if isinstance(existing, _MemDir):
                if not isinstance(node, _MemDir):
                    raise IsADirectoryError(errno.EISDIR, "is a directory", dst)
                if existing.entries:
                    raise OSError(errno.ENOTEMPTY, "directory not empty", dst)
            elif existing is not None and isinstance(node, _MemDir):
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", dst)
            del sparent.entries[sname]
            dparent.entries[dname] = node

    def symlink(self, target: str, path: str) -> None:
        with self._lock:
            self._check()
            parent, name = self._parent(path)
            if name in parent.entries:
                raise FileExistsError(errno.EEXIST, "file exists", path)
            parent.entries[name] = _MemLink(target)

    def readlink(self, path: str) -> str:
        with self._lock:
            self._check()
            node = self._need(path)
            if not isinstance(node, _MemLink):
                raise OSError(errno.EINVAL, "not a symbolic link", path)
            return node.target

    def link(self, src: str, dst: str) -> None:
        with self._lock:
            self._check()
            node = self._need(src)
            if isinstance(node, _MemDir):
                raise PermissionError(errno.EPERM, "hard link to a directory", src)
            parent, name = self._parent(dst)
            if name in parent.entries:
                raise FileExistsError(errno.EEXIST, "file exists", dst)
            parent.entries[name] = node

    def listdir(self, path: str) -> list[str]:
        with self._lock:
            self._check()
            node = self._need(path)
            if not isinstance(node, _MemDir):
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
            return list(node.entries)

    def scan(self, path: str) -> list[tuple[str, str]]:
        with self._lock:
            self._check()
            kinds = {_MemFile: "file", _MemLink: "symlink", _MemDir: "dir"}
            node = self._need(path)
            if not isinstance(node, _MemDir):
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
            return [(name, kinds[type(child)]) for name, child in node.entries.items()]


class MemoryStorage:
    """In-memory stand-in for GlusterStorage with the same interface, for unit tests.

    Set ``reachable = False`` to make every operation fail like an unreachable volume.
    """

    def __init__(self) -> None:
        self.root = _MemDir()
        self.reachable = True
        self._backend = _MemoryBackend(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MemoryStorage:
        return cls()

    def describe(self) -> str:
        return "memory://"

    def connect(self) -> MemoryStorage:
        self._backend._check()
        return self

    def app_dir(self, app_path: str) -> AppDirectory:
        return AppDirectory(self._backend, validate_app_path(app_path))

    def same_file(self, app_path: str, rel_a: str, rel_b: str) -> bool:
        """Whether two names are hard links to one file (for tests)."""
        a = self._backend._get(f"/{app_path}/{rel_a}")
        b = self._backend._get(f"/{app_path}/{rel_b}")
        return a is not None and a is b

    def close(self) -> None:
        """Nothing to release; kept for interface parity."""

    def __enter__(self) -> MemoryStorage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class MemoryRouteRegistry:
    """In-memory route registry with the real ones' compare-and-swap on a per-key version."""

    observable = True

    def __init__(self) -> None:
        self.values: dict[str, tuple[str, int]] = {}
        self.version = 0
        self.writes = 0

    def describe(self) -> str:
        return "memory"

    def get(self, namespace: str, name: str) -> StoredRoute | None:
        key = route_key(namespace, name)
        if key not in self.values:
            return None
        raw, version = self.values[key]
        return StoredRoute(Route.from_json(key, raw), version)

    def list(self, namespace: str | None = None) -> list[StoredRoute]:
        prefix = route_key(namespace, "") if namespace else "/devnginx/"
        return [
            StoredRoute(Route.from_json(k, raw), v)
            for k, (raw, v) in sorted(self.values.items())
            if k.startswith(prefix)
        ]

    def put(self, route: Route, expected: int | None) -> int:
        route.validate()
        current = self.values.get(route.key)
        if (current is None) != (expected is None) or (current and current[1] != expected):
            raise RouteConflict(f"route {route.key} was changed by another writer")
        self.version += 1
        self.writes += 1
        self.values[route.key] = (route.to_json(), self.version)
        return self.version

    def delete(self, namespace: str, name: str, expected: int | None = None) -> bool:
        key = route_key(namespace, name)
        current = self.values.get(key)
        if current is None:
            return False
        if expected is not None and current[1] != expected:
            raise RouteConflict(f"route {key} was changed by another writer")
        del self.values[key]
        self.writes += 1
        return True


def node(
    name: str,
    address: str,
    ready: bool = True,
    unschedulable: bool = False,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Node object as the API server returns it (for FakeKube.create)."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": address},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }
