"""The app spec: one typed, validated model merged from defaults, deploy.yaml and overrides.

Merge order (later wins): built-in defaults < ``deploy.yaml`` < the Jenkins step's map
(``--overrides FILE.json``) < ``--set key=value`` flags. Every error is one line that names
the field and says how to fix it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pysteps.errors import InputError
from pysteps.names import is_dns_label

# A domain template: lowercase host names with {name} / {namespace} placeholders, nothing else.
_DOMAIN_TEMPLATE_RE = re.compile(r"^(\*\.)?([a-z0-9{}]([-a-z0-9{}]*[a-z0-9{}])?\.)*[a-z0-9{}]+$")
_QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IMAGE_REPO_RE = re.compile(
    r"^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$"
)
_IMAGE_REF_RE = re.compile(
    r"^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
_REL_PATH_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$")
_EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_quantity(value: str) -> str:
    if not _QUANTITY_RE.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as 500m, 2000Mi or 1Gi")
    return value


class ResourceList(_Model):
    cpu: str
    memory: str

    @field_validator("cpu", "memory", mode="before")
    @classmethod
    def _quantity(cls, v: Any) -> str:
        # YAML reads `cpu: 1` as a number; Kubernetes quantities are strings.
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str):
            raise ValueError("must be a Kubernetes quantity such as 500m or 2000Mi")
        return _check_quantity(v)


class Resources(_Model):
    limits: ResourceList = ResourceList(cpu="500m", memory="2000Mi")
    requests: ResourceList = ResourceList(cpu="10m", memory="100Mi")


class Ports(_Model):
    """Container ports; each one becomes a NodePort on the app's Service."""

    http: Annotated[int, Field(ge=1, le=65535)] | None = 8080
    https: Annotated[int, Field(ge=1, le=65535)] | None = None
    ssh: Annotated[int, Field(ge=1, le=65535)] | None = None

    def named(self) -> list[tuple[str, int]]:
        """The (name, port) pairs that are set, in a stable order."""
        return [
            (n, p) for n, p in (("http", self.http), ("https", self.https), ("ssh", self.ssh)) if p
        ]


class Readiness(_Model):
    """An HTTP GET readiness probe on one of the app's ports."""

    path: str = "/"
    port: Literal["http", "https"] = "http"
    initial_delay_seconds: Annotated[int, Field(ge=0, le=3600)] = 3
    period_seconds: Annotated[int, Field(ge=1, le=3600)] = 5

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not re.match(r"^/[A-Za-z0-9._~/?=&%-]*$", v):
            raise ValueError("must start with / and hold only URL path characters")
        return v


class BuildSpec(_Model):
    """Image mode: how the image is built from the app's checkout."""

    context: str = "."
    dockerfile: str = "Dockerfile"
    args: dict[str, str] = Field(default_factory=dict)
    extra_tags: list[str] = Field(default_factory=list)

    @field_validator("context", "dockerfile")
    @classmethod
    def _relative(cls, v: str) -> str:
        if v == ".":
            return v
        if not _REL_PATH_RE.match(v) or ".." in v.split("/"):
            raise ValueError("must be a relative path inside the repository, without '..'")
        return v


class CodeSpec(_Model):
    """Code mode: where the app's code lives on the GlusterFS volume and how pods see it."""

    volume: str | None = None
    path: str | None = None
    restart: Literal["rolling", "none"] = "rolling"
    keep: Annotated[int, Field(ge=2, le=100)] = 5
    mount: Literal["hostPath", "pvc"] = "hostPath"
    host_mount_root: str = "/mnt"
    claim_name: str | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and (
            not 1 <= len(v.split("/")) <= 4 or not all(is_dns_label(p) for p in v.split("/"))
        ):
            raise ValueError(
                "must be 1 to 4 '/'-separated lowercase names on the volume, e.g. team/shop"
            )
        return v

    @field_validator("host_mount_root")
    @classmethod
    def _root(cls, v: str) -> str:
        if not re.match(r"^/[A-Za-z0-9_./-]*$", v) or ".." in v.split("/"):
            raise ValueError("must be an absolute path without '..'")
        return v.rstrip("/") or "/"


class Mail(_Model):
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)

    @field_validator("to", "cc")
    @classmethod
    def _emails(cls, v: list[str]) -> list[str]:
        for addr in v:
            if not _EMAIL_RE.match(addr):
                raise ValueError(f"{addr!r} is not an e-mail address")
        return v


class Rollout(_Model):
    timeout_seconds: Annotated[int, Field(ge=5, le=7200)] = 300
    progress_deadline_seconds: Annotated[int, Field(ge=5, le=7200)] = 120
    max_surge: str = "25%"
    max_unavailable: str = "0"

    @field_validator("max_surge", "max_unavailable")
    @classmethod
    def _int_or_percent(cls, v: str) -> str:
        if not re.match(r"^[0-9]{1,3}%?$", v):
            raise ValueError("must be a whole number or a percentage such as 25%")
        return v


# Kubernetes label keys ([prefix/]name) and values, for node selectors and tolerations.
_LABEL_KEY_RE = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
_LABEL_VALUE_RE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


def _check_label_key(key: str) -> str:
    prefix, _, _ = key.rpartition("/")
    if not _LABEL_KEY_RE.fullmatch(key) or len(prefix) > 253:
        raise ValueError(f"{key!r} is not a label key such as example.com/role or disktype")
    return key


def _check_label_value(value: str) -> str:
    if not _LABEL_VALUE_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a label value: at most 63 letters, digits, '-', '_' or '.'"
        )
    return value


class Toleration(_Model):
    """Lets the app's pods onto nodes with a matching taint (e.g. a dedicated node)."""

    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, v: str | None) -> str | None:
        return None if v is None else _check_label_key(v)

    @field_validator("value")
    @classmethod
    def _value(cls, v: str | None) -> str | None:
        return None if v is None else _check_label_value(v)

    @model_validator(mode="after")
    def _operator(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("value: must be empty when operator is Exists")
        if self.operator == "Equal" and not self.key:
            raise ValueError("key: required when operator is Equal")
        return self


class AppSpec(_Model):
    """What the user asks for: one app, in one namespace."""

    name: str
    namespace: str = "default"
    mode: Literal["image", "code"] = "image"
    kind: Literal["Deployment", "ReplicationController"] = "Deployment"
    replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    image: str | None = None
    runtime_image: str | None = None
    command: list[str] | None = None
    build: BuildSpec = BuildSpec()
    ports: Ports = Ports()
    resources: Resources = Resources()
    env: dict[str, str] = Field(default_factory=dict)
    readiness: Readiness | None = Readiness()
    code: CodeSpec = CodeSpec()
    domains: list[str] = Field(default_factory=lambda: ["{name}.ctest.example.com"])
    mail: Mail = Mail()
    rollout: Rollout = Rollout()
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)

    @field_validator("node_selector", mode="before")
    @classmethod
    def _yaml_booleans(cls, v: Any) -> Any:
        # YAML reads `role: true` as a boolean; label values are strings.
        if isinstance(v, Mapping):
            return {k: str(x).lower() if isinstance(x, bool) else x for k, x in v.items()}
        return v

    @field_validator("node_selector")
    @classmethod
    def _node_selector(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            _check_label_key(key)
            _check_label_value(value)
        return v

    @field_validator("name", "namespace")
    @classmethod
    def _dns_label(cls, v: str) -> str:
        if not is_dns_label(v):
            raise ValueError(
                "must be a DNS-1123 label: lowercase letters, digits and '-', "
                "starting and ending with a letter or digit, at most 63 characters"
            )
        return v

    @field_validator("image")
    @classmethod
    def _image_repo(cls, v: str | None) -> str | None:
        if v is not None and not _IMAGE_REPO_RE.match(v):
            raise ValueError("must be an image repository such as registry:5000/team/app, no tag")
        return v

    @field_validator("runtime_image")
    @classmethod
    def _image_ref(cls, v: str | None) -> str | None:
        if v is not None and not _IMAGE_REF_RE.match(v):
            raise ValueError("must be an image reference such as registry:5000/runtime/java:17")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not _ENV_NAME_RE.match(key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
        return v

    @field_validator("domains")
    @classmethod
    def _domains(cls, v: list[str]) -> list[str]:
        for d in v:
            if not _DOMAIN_TEMPLATE_RE.match(d) or len(d) > 253:
                raise ValueError(
                    f"{d!r} is not a domain template: lowercase host name, "
                    "{name} and {namespace} allowed"
                )
            rest = d.replace("{name}", "").replace("{namespace}", "")
            if "{" in rest or "}" in rest:
                raise ValueError(f"{d!r}: only {{name}} and {{namespace}} may be used")
        return v

    @model_validator(mode="after")
    def _mode_fields(self) -> AppSpec:
        if self.mode == "image" and not self.image:
            raise ValueError("image: required in image mode (a repository such as reg/team/app)")
        if self.mode == "code":
            if not self.runtime_image:
                raise ValueError("runtime_image: required in code mode (the fixed runtime image)")
            if self.code.mount == "pvc" and not self.code.claim_name:
                raise ValueError("code.claim_name: required when code.mount is pvc")
        if self.readiness and getattr(self.ports, self.readiness.port) is None:
            raise ValueError(f"readiness.port: ports.{self.readiness.port} is not set")
        return self

    # Derived values -------------------------------------------------------------------

    @property
    def code_path(self) -> str:
        """The app's directory on the code volume: <namespace>/<name> unless code.path says.

        The namespace keeps the test and production copies of one app apart on a shared volume.
        """
        return self.code.path or f"{self.namespace}/{self.name}"

    def rendered_domains(self) -> list[str]:
        """The domain templates with {name} and {namespace} filled in."""
        out = [
            d.replace("{name}", self.name).replace("{namespace}", self.namespace)
            for d in self.domains
        ]
        for d in out:
            if len(d) > 253 or any(len(part) > 63 for part in d.split(".")):
                raise InputError(f"domains: {d!r} is too long for DNS; shorten the template")
        return out


# Loading and merging ------------------------------------------------------------------


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge OVERRIDE into BASE: mappings merge key by key, anything else is replaced."""
    out: dict[str, Any] = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_set(assignments: Sequence[str]) -> dict[str, Any]:
    """Turn ``--set a.b=value`` flags into a nested mapping; values are parsed as YAML scalars."""
    result: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not re.match(r"^[a-z_][a-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", key):
            raise InputError(f"--set {item!r}: write it as key=value, e.g. --set replicas=3")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(f"--set {item!r}: {part} is set twice as a value and a section")
        node[parts[-1]] = value
    return result


def load_yaml_file(path: Path) -> dict[str, Any]:
    """Read a deploy.yaml; it must hold a mapping."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; write a deploy.yaml or pass --file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise InputError(f"{path}{where}: not valid YAML; fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: must hold a mapping of fields (name: ..., mode: ...)")
    return data


def load_json_file(path: Path) -> dict[str, Any]:
    """Read the Jenkins step's override map (JSON)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check --overrides") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} line {exc.lineno}: not valid JSON; fix the syntax") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: must hold a JSON object of spec fields")
    return data


def build_spec(*layers: Mapping[str, Any]) -> AppSpec:
    """Merge LAYERS in order and validate them into an AppSpec (InputError on the first fault)."""
    # Nested defaults live in the base layer so that a partial override such as
    # resources.limits.cpu keeps the other defaults of its section.
    merged: dict[str, Any] = {"resources": Resources().model_dump()}
    for layer in layers:
        merged = deep_merge(merged, layer)
    try:
        return AppSpec.model_validate(merged)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming the first bad field and the fix."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "spec"
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return (
            f"spec field {loc!r} is unknown; remove it or check its spelling (see pysteps schema)"
        )
    if err["type"] == "missing":
        return f"spec field {loc!r} is required; set it in deploy.yaml or with --set {loc}=..."
    if loc == "spec" and ":" in msg:
        field, _, rest = msg.partition(":")
        return f"spec field {field.strip()!r}:{rest}"
    return f"spec field {loc!r}: {msg}"


def load_spec(
    file: Path | None,
    overrides: Path | None = None,
    sets: Sequence[str] = (),
) -> AppSpec:
    """The app spec from deploy.yaml, the step's JSON overrides and --set flags, in that order."""
    layers: list[Mapping[str, Any]] = []
    if file is not None:
        layers.append(load_yaml_file(file))
    if overrides is not None:
        layers.append(load_json_file(overrides))
    layers.append(parse_set(sets))
    return build_spec(*layers)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of deploy.yaml, generated from the model."""
    schema = AppSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "pysteps app spec (deploy.yaml)"
    return schema
