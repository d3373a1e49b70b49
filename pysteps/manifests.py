"""Kubernetes objects pysteps wants, built as plain dicts from the spec (pure, no I/O).

Only stable, long-lived API fields are used (apps/v1 Deployment, v1 ReplicationController,
v1 Service), so the same manifests work on old and current clusters.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pysteps.codesync import release_path
from pysteps.masking import mask, public_url
from pysteps.spec import AppSpec, SecretEnv

MANAGED_BY = "pysteps"
ANN_SPEC_HASH = "pysteps.io/spec-hash"
ANN_COMMIT = "pysteps.io/commit"
ANN_MODE = "pysteps.io/mode"
ANN_CODE_COMMIT = "pysteps.io/code-commit"
ANN_RESTARTED_AT = "pysteps.io/restarted-at"
ANN_CHANGE_CAUSE = "kubernetes.io/change-cause"
ANN_DOMAINS = "pysteps.io/domains"
ANN_CODE_PATH = "pysteps.io/code-path"
ANN_ENV_SECRET = "pysteps.io/env-secret-digest"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_VERSION = "app.kubernetes.io/version"
LABEL_RC_REVISION = "pysteps.io/revision"
CODE_MOUNT_PATH = "/apps"


@dataclass(frozen=True)
class Release:
    """What is being shipped: the commit, and where the build that ships it lives."""

    commit: str
    build_url: str | None = None

    @property
    def short(self) -> str:
        return self.commit[:12]

    def change_cause(self) -> str:
        cause = f"pysteps deploy {self.short}"
        # An annotation is readable by anyone who can read the Deployment: no credentials.
        url = mask(public_url(self.build_url) or "")
        return f"{cause} ({url})" if url else cause


def selector_labels(spec: AppSpec) -> dict[str, str]:
    """The labels that select an app's pods; never change them for a live app."""
    return {LABEL_NAME: spec.name, LABEL_MANAGED_BY: MANAGED_BY}


def pinned_release(spec: AppSpec, code_commit: str | None) -> str | None:
    """The release a code-mode pod template names, or None when pods follow `current`.

    Apps restarted on a code change (code.restart: rolling) are pinned: the template mounts
    `releases/<commit>`, so rollouts, rollbacks and restarts move code and pods together.
    Apps that reload their code themselves (restart: none) read `current`.
    """
    if spec.mode == "code" and spec.code.restart == "rolling" and code_commit:
        return code_commit
    return None


def template_code_commit(template: dict[str, Any]) -> str | None:
    """The code release a pod template names (pinned code-mode apps); else None."""
    annotations = template.get("metadata", {}).get("annotations") or {}
    commit = annotations.get(ANN_CODE_COMMIT)
    return str(commit) if commit else None


def _container(spec: AppSpec, image: str, pinned: str | None = None) -> dict[str, Any]:
    res = spec.resources
    container: dict[str, Any] = {
        "name": spec.name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [
            {"name": name, "containerPort": port, "protocol": "TCP"}
            for name, port in spec.ports.named()
        ],
        "resources": {
            "limits": {"cpu": res.limits.cpu, "memory": res.limits.memory},
            "requests": {"cpu": res.requests.cpu, "memory": res.requests.memory},
        },
    }
    if spec.env:
        container["env"] = [_env_var(spec, k, v) for k, v in sorted(spec.env.items())]
    if spec.command:
        container["command"] = list(spec.command)
    if spec.readiness:
        r = spec.readiness
        container["readinessProbe"] = {
            "httpGet": {"path": r.path, "port": r.port},
            "initialDelaySeconds": r.initial_delay_seconds,
            "periodSeconds": r.period_seconds,
        }
    if spec.mode == "code":
        # Read-only: releases share unchanged files through hard links, so a pod writing
        # into its code would change older releases too.
        # Pinned: the release itself is mounted where unpinned pods find `current`, so the
        # app sees the same path either way.
        mount_path = f"{CODE_MOUNT_PATH}/current" if pinned else CODE_MOUNT_PATH
        mount: dict[str, Any] = {"name": "code", "mountPath": mount_path, "readOnly": True}
        if spec.code.mount == "pvc":
            # The claim holds the whole volume (a hostPath PV of /mnt/<volume>, or a CSI
            # volume: Kubernetes 1.26 removed the in-tree GlusterFS plugin); use the app's part.
            mount["subPath"] = _code_subdir(spec, pinned)
        container["volumeMounts"] = [mount]
        container["workingDir"] = f"{CODE_MOUNT_PATH}/current"
    return container


def _env_var(spec: AppSpec, key: str, value: str | SecretEnv) -> dict[str, Any]:
    if isinstance(value, str):
        return {"name": key, "value": value}
    # Secret values never appear in the workload: the pod reads them from the app's Secret.
    ref = {"name": env_secret_name(spec.name), "key": key}
    return {"name": key, "valueFrom": {"secretKeyRef": ref}}


def env_secret_name(app: str) -> str:
    """The Secret that holds an app's secret env values."""
    return f"{app}-pysteps-env"


def env_secret(spec: AppSpec) -> dict[str, Any]:
    """The app's Secret with the values of its secret env entries (spec.with_secrets)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": env_secret_name(spec.name),
            "namespace": spec.namespace,
            "labels": dict(selector_labels(spec)),
        },
        "data": {
            k: base64.b64encode(v.encode()).decode() for k, v in sorted(spec.secret_values.items())
        },
    }


def _code_subdir(spec: AppSpec, pinned: str | None) -> str:
    """The directory of the volume that pods mount: the pinned release, or the app's directory."""
    return f"{spec.code_path}/{release_path(pinned)}" if pinned else spec.code_path


def _code_volume(spec: AppSpec, volume_name: str, pinned: str | None = None) -> dict[str, Any]:
    if spec.code.mount == "pvc":
        return {
            "name": "code",
            "persistentVolumeClaim": {"claimName": spec.code.claim_name},
        }
    root = spec.code.host_mount_root.rstrip("/")
    return {
        "name": "code",
        "hostPath": {
            "path": f"{root}/{volume_name}/{_code_subdir(spec, pinned)}",
            "type": "Directory",
        },
    }


def pod_template(
    spec: AppSpec, image: str, code_commit: str | None, code_volume: str | None
) -> dict[str, Any]:
    """The pod template both workload kinds share."""
    annotations: dict[str, str] = {}
    pinned = pinned_release(spec, code_commit)
    if pinned:
        annotations[ANN_CODE_COMMIT] = pinned
    # A changed secret value changes the template (and so restarts the pods) through a
    # salted, slow digest of the values: never the values themselves.
    if spec.secret_digest:
        annotations[ANN_ENV_SECRET] = spec.secret_digest
    pod_spec: dict[str, Any] = {
        "containers": [_container(spec, image, pinned)],
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
    }
    if spec.mode == "code":
        pod_spec["volumes"] = [_code_volume(spec, code_volume or "code", pinned)]
    if spec.node_selector:
        pod_spec["nodeSelector"] = dict(sorted(spec.node_selector.items()))
    if spec.tolerations:
        pod_spec["tolerations"] = [t.model_dump(exclude_none=True) for t in spec.tolerations]
    meta: dict[str, Any] = {"labels": dict(selector_labels(spec))}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": pod_spec}


def spec_hash(obj: Any) -> str:
    """A short stable hash of a JSON-able object."""
    raw = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def workload_metadata(
    spec: AppSpec, release: Release, template_hash: str, name: str | None = None
) -> dict[str, Any]:
    return {
        "name": name or spec.name,
        "namespace": spec.namespace,
        "labels": {**selector_labels(spec), LABEL_VERSION: release.short},
        "annotations": {
            ANN_SPEC_HASH: template_hash,
            ANN_COMMIT: release.commit,
            ANN_MODE: spec.mode,
            ANN_CHANGE_CAUSE: release.change_cause(),
            ANN_DOMAINS: ",".join(spec.rendered_domains()),
            **({ANN_CODE_PATH: spec.code_path} if spec.mode == "code" else {}),
        },
    }


def desired_hash(spec: AppSpec, template: dict[str, Any]) -> str:
    """What decides whether a live workload must change: its pod template and replica count."""
    return spec_hash({"template": template, "replicas": spec.replicas, "kind": spec.kind})


def deployment(spec: AppSpec, release: Release, template: dict[str, Any]) -> dict[str, Any]:
    """An apps/v1 Deployment with a RollingUpdate strategy."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": workload_metadata(spec, release, desired_hash(spec, template)),
        "spec": {
            "replicas": spec.replicas,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": spec.rollout.progress_deadline_seconds,
            "selector": {"matchLabels": selector_labels(spec)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {
                    "maxSurge": _int_or_str(spec.rollout.max_surge),
                    "maxUnavailable": _int_or_str(spec.rollout.max_unavailable),
                },
            },
            "template": template,
        },
    }


def replication_controller(
    namespace: str,
    name: str,
    template: dict[str, Any],
    revision: int,
    replicas: int,
    metadata: dict[str, Any],
    desired_replicas: int,
) -> dict[str, Any]:
    """A v1 ReplicationController for one revision of an app; rolling updates are client-side."""
    t = json.loads(json.dumps(template))
    t["metadata"].setdefault("labels", {})[LABEL_RC_REVISION] = str(revision)
    meta = json.loads(json.dumps(metadata))
    meta["name"] = rc_name(name, revision)
    meta["namespace"] = namespace
    meta.setdefault("labels", {})[LABEL_RC_REVISION] = str(revision)
    meta.setdefault("annotations", {})["pysteps.io/desired-replicas"] = str(desired_replicas)
    selector = {LABEL_NAME: name, LABEL_MANAGED_BY: MANAGED_BY, LABEL_RC_REVISION: str(revision)}
    return {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": meta,
        "spec": {"replicas": replicas, "selector": selector, "template": t},
    }


def rc_name(name: str, revision: int) -> str:
    """The name of an app's ReplicationController for one revision."""
    suffix = f"-r{revision}"
    return name[: 63 - len(suffix)].rstrip("-") + suffix


def service(spec: AppSpec, node_ports: dict[str, int] | None = None) -> dict[str, Any]:
    """A NodePort Service over the app's pods; existing NodePorts are kept."""
    node_ports = node_ports or {}
    ports = []
    for name, port in spec.ports.named():
        entry: dict[str, Any] = {"name": name, "port": port, "targetPort": name, "protocol": "TCP"}
        if name in node_ports:
            entry["nodePort"] = node_ports[name]
        ports.append(entry)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": spec.name,
            "namespace": spec.namespace,
            "labels": dict(selector_labels(spec)),
        },
        "spec": {"type": "NodePort", "selector": selector_labels(spec), "ports": ports},
    }


def service_ports(spec: AppSpec) -> tuple[tuple[str, int], ...]:
    return tuple(spec.ports.named())


def _int_or_str(value: str) -> int | str:
    return value if value.endswith("%") else int(value)
