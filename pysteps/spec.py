"""The app spec: one typed, validated model merged from defaults, deploy.yaml and overrides.

Merge order (later wins): built-in defaults < ``deploy.yaml`` < the Jenkins step's map
(``--overrides FILE.json``) < ``--set key=value`` flags. Every error is one line that names
the field and says how to fix it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema

from pysteps import names
from pysteps.errors import InputError
from pysteps.masking import SECRET_NAME, add_secrets
from pysteps.names import anchored, is_domain

# Every string field has a grammar, written once (mostly in pysteps.names) and applied with
# re.fullmatch; the JSON Schema publishes it as `pattern` (anchored, `$` ends the text there).
_DOMAIN_TEMPLATE = r"([a-z0-9{}]([-a-z0-9{}]*[a-z0-9{}])?\.)*[a-z0-9{}]([-a-z0-9{}]*[a-z0-9{}])?"
_QUANTITY = r"[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?"
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
_URL_PATH = r"/[A-Za-z0-9._~/?=&%-]*"
_INT_OR_PERCENT = r"[0-9]{1,3}%?"
# Where code volumes may be mounted on a node: a directory under /mnt or /srv, never / itself
# or a system directory, normalized (no '.', '..', '//' or trailing '/').
MOUNT_ROOTS = ("/mnt", "/srv")
_MOUNT_ROOT = r"/(mnt|srv)(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*"


@dataclass(frozen=True)
class Grammar:
    """Annotated[str, Grammar(...)]: a whole-string check whose error is HINT, the one-line fix.

    The pattern is applied with re.fullmatch and published in the JSON Schema.
    """

    pattern: str
    hint: str
    max_length: int

    def check(self, value: str) -> str:
        if len(value) > self.max_length or re.fullmatch(self.pattern, value) is None:
            raise ValueError(self.hint)
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        out = dict(handler(schema))
        out.update(pattern=anchored(self.pattern), maxLength=self.max_length)
        out.setdefault("description", self.hint)
        return out


DnsLabel = Annotated[
    str,
    Grammar(
        names.DNS_LABEL,
        "must be a DNS-1123 label: lowercase letters, digits and '-', "
        "starting and ending with a letter or digit, at most 63 characters",
        63,
    ),
]
DnsSubdomain = Annotated[
    str,
    Grammar(names.DNS_SUBDOMAIN, "must be a Kubernetes object name such as code-claim", 253),
]
ImageRepository = Annotated[
    str,
    Grammar(
        names.IMAGE_REPOSITORY,
        "must be an image repository such as registry:5000/team/app, no tag",
        255,
    ),
]
ImageReference = Annotated[
    str,
    Grammar(
        names.IMAGE_REFERENCE,
        "must be an image reference such as registry:5000/runtime/java:17",
        512,
    ),
]
ImageTag = Annotated[
    str,
    Grammar(names.IMAGE_TAG, "must be an image tag: up to 128 of A-Z a-z 0-9 _ . -", 128),
]
RelativePath = Annotated[
    str,
    Grammar(
        rf"\.|{names.REL_PATH}",
        "must be a relative path inside the repository, without '..', '.' or empty parts",
        1024,
    ),
]
EnvName = Annotated[
    str,
    Grammar(
        names.ENV_NAME, "must be a variable name: letters, digits and '_', not first a digit", 256
    ),
]
ManifestText = Annotated[
    str, Grammar(r"[^\x00]*", "must be text without NUL characters, at most 32768", 32768)
]
GlusterVolume = Annotated[
    str,
    Grammar(
        names.GLUSTER_VOLUME,
        "must be a GlusterFS volume name: letters, digits, '-' and '_', at most 64",
        64,
    ),
]
MountRoot = Annotated[
    str,
    Grammar(
        _MOUNT_ROOT,
        "must be a normalized absolute directory under /mnt or /srv, e.g. /mnt "
        "(no '..', '.', '//' or trailing '/')",
        1024,
    ),
]
Quantity = Annotated[
    str, Grammar(_QUANTITY, "must be a Kubernetes quantity such as 500m, 2000Mi or 1Gi", 32)
]
Email = Annotated[str, Grammar(_EMAIL, "must be an e-mail address such as ops@example.com", 254)]
UrlPath = Annotated[
    str, Grammar(_URL_PATH, "must start with / and hold only URL path characters", 1024)
]
IntOrPercent = Annotated[
    str,
    Grammar(_INT_OR_PERCENT, "must be a whole number or a percentage such as 25%", 4),
]
DomainTemplate = Annotated[
    str,
    Grammar(
        _DOMAIN_TEMPLATE,
        "must be a lowercase host name, {name} and {namespace} allowed, no wildcard "
        "(list each host instead of *.example.com)",
        253,
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResourceList(_Model):
    cpu: Quantity
    memory: Quantity

    @field_validator("cpu", "memory", mode="before")
    @classmethod
    def _quantity(cls, v: Any) -> Any:
        # YAML reads `cpu: 1` as a number; Kubernetes quantities are strings.
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)
        return v


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

    path: UrlPath = "/"
    port: Literal["http", "https"] = "http"
    initial_delay_seconds: Annotated[int, Field(ge=0, le=3600)] = 3
    period_seconds: Annotated[int, Field(ge=1, le=3600)] = 5


class BuildSpec(_Model):
    """Image mode: how the image is built from the app's checkout (a clean export of the commit)."""

    context: RelativePath = "."
    dockerfile: RelativePath = "Dockerfile"
    args: dict[EnvName, ManifestText] = Field(default_factory=dict)
    extra_tags: list[ImageTag] = Field(default_factory=list)


class CodeSpec(_Model):
    """Code mode: where the app's code lives on the GlusterFS volume and how pods see it."""

    volume: GlusterVolume | None = None
    path: (
        Annotated[
            str,
            Grammar(
                rf"{names.DNS_LABEL}(/{names.DNS_LABEL}){{1,3}}",
                "must be 2 to 4 '/'-separated lowercase names on the volume, the first one the "
                "app's namespace, e.g. team-a/shop",
                255,
            ),
        ]
        | None
    ) = None
    restart: Literal["rolling", "none"] = "rolling"
    keep: Annotated[int, Field(ge=2, le=100)] = 5
    mount: Literal["hostPath", "pvc"] = "hostPath"
    host_mount_root: MountRoot = "/mnt"
    claim_name: DnsSubdomain | None = None


# When a recipient list is mailed (pysteps.mail_report.triggers_met decides from the history).
MailTrigger = Literal["always", "success", "failure", "first-failure", "still-failing", "fixed"]


def _always() -> list[MailTrigger]:
    return ["always"]


class MailList(_Model):
    """One more recipient list with its own triggers."""

    to: list[Email]
    cc: list[Email] = Field(default_factory=list)
    on: list[MailTrigger] = Field(default_factory=_always, min_length=1)


class MailSpec(_Model):
    to: list[Email] = Field(default_factory=list)
    cc: list[Email] = Field(default_factory=list)
    on: list[MailTrigger] = Field(default_factory=_always, min_length=1)
    lists: list[MailList] = Field(default_factory=list)
    # A mail that cannot be sent fails the deploy (exit 4) instead of a warning.
    required: bool = False

    @property
    def wanted(self) -> bool:
        return bool(self.to or self.cc or self.lists)


class Rollout(_Model):
    timeout_seconds: Annotated[int, Field(ge=5, le=7200)] = 300
    progress_deadline_seconds: Annotated[int, Field(ge=5, le=7200)] = 120
    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = "0"

    @field_validator("max_surge", "max_unavailable", mode="before")
    @classmethod
    def _number_of_pods(cls, v: object) -> object:
        # YAML and --set read `max_surge: 1` as a number: a number of pods, as Kubernetes says.
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        return v

    @field_validator("max_surge", "max_unavailable")
    @classmethod
    def _at_most_all(cls, v: str) -> str:
        if v.endswith("%") and int(v[:-1]) > 100:
            raise ValueError("a percentage must be at most 100%")
        return v

    @model_validator(mode="after")
    def _can_progress(self) -> Rollout:
        if _is_zero(self.max_surge) and _is_zero(self.max_unavailable):
            raise ValueError(
                "max_surge: max_surge and max_unavailable cannot both be 0; "
                "raise max_surge (e.g. 25%)"
            )
        return self


def _is_zero(value: str) -> bool:
    return int(value.rstrip("%")) == 0


class SecretEnv(_Model):
    """An env value that is secret: read from the deploy's environment, sent as a Secret.

    The spec names the variable (Jenkins binds it with withCredentials); the value itself is
    never in the spec file, the Deployment or any output.
    """

    secret_env: EnvName


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

    name: DnsLabel
    namespace: DnsLabel = "default"
    mode: Literal["image", "code"] = "image"
    kind: Literal["Deployment", "ReplicationController"] = "Deployment"
    replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    image: ImageRepository | None = None
    runtime_image: ImageReference | None = None
    command: list[ManifestText] | None = None
    build: BuildSpec = BuildSpec()
    ports: Ports = Ports()
    resources: Resources = Resources()
    env: dict[EnvName, ManifestText | SecretEnv] = Field(default_factory=dict)
    readiness: Readiness | None = Readiness()
    code: CodeSpec = CodeSpec()
    domains: list[DomainTemplate] = Field(default_factory=lambda: ["{name}.ctest.example.com"])
    mail: MailSpec = MailSpec()
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

    # Values of the secret env entries, read from the environment by with_secrets().
    _secret_values: dict[str, str] = PrivateAttr(default_factory=dict)
    _secret_digest: str = PrivateAttr(default="")

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str | SecretEnv]) -> dict[str, str | SecretEnv]:
        for key, value in v.items():
            if isinstance(value, str) and value and SECRET_NAME.search(key):
                raise ValueError(
                    f"{key}: its name says it is secret; write {{secret_env: VARIABLE}} and "
                    "bind VARIABLE with withCredentials instead of a literal value"
                )
        return v

    @field_validator("domains")
    @classmethod
    def _domains(cls, v: list[str]) -> list[str]:
        for d in v:
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
        if self.code.path is not None and self.code.path.split("/")[0] != self.namespace:
            raise ValueError(
                f"code.path: {self.code.path!r} is outside the app's namespace; "
                f"start it with {self.namespace}/"
            )
        for d in self.rendered_domains():
            if not is_domain(d):
                raise ValueError(
                    f"domains: {d!r} is not a valid host name (each label at most 63 "
                    "characters, 253 in all); shorten the template"
                )
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
        return [
            d.replace("{name}", self.name).replace("{namespace}", self.namespace)
            for d in self.domains
        ]

    # Secret env ---------------------------------------------------------------------

    def secret_env_names(self) -> dict[str, str]:
        """{container variable: environment variable it is read from} for the secret entries."""
        return {k: v.secret_env for k, v in self.env.items() if isinstance(v, SecretEnv)}

    def with_secrets(self, environ: Mapping[str, str]) -> AppSpec:
        """A copy holding the secret env values from ENVIRON; InputError names a missing one."""
        values: dict[str, str] = {}
        for key, var in sorted(self.secret_env_names().items()):
            value = environ.get(var)
            if not value:
                raise InputError(
                    f"spec field 'env.{key}': environment variable {var} is not set; "
                    "bind it with withCredentials (or export it) before the deploy"
                )
            values[key] = value
        add_secrets(values.values())  # masked everywhere from the moment they are read
        copy = self.model_copy()
        copy._secret_values = values
        if values:
            # Slow and salted with the app's name: the digest goes into the pod template.
            raw = json.dumps(values, sort_keys=True).encode()
            salt = f"pysteps/{self.namespace}/{self.name}".encode()
            copy._secret_digest = hashlib.pbkdf2_hmac("sha256", raw, salt, 200_000).hex()[:32]
        return copy

    @property
    def secret_digest(self) -> str:
        """A digest of the secret env values ('' without any), for the pod template."""
        return self._secret_digest

    @property
    def secret_values(self) -> dict[str, str]:
        """The secret env values (empty until with_secrets); never print them."""
        return dict(self._secret_values)


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
        if not sep or not re.fullmatch(r"[a-z_][a-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
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
    errors = exc.errors()
    # A value that fits no member of a union fails once per member: the member's own check
    # (a value error) says more than "should be a string".
    err = next((e for e in errors if not e["type"].endswith("_type")), errors[0])
    raw_loc = list(err["loc"])
    key_error = "[key]" in raw_loc
    loc = ".".join(str(p) for i, p in enumerate(raw_loc) if not _union_tag(raw_loc, i)) or "spec"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return (
            f"spec field {loc!r} is unknown; remove it or check its spelling (see pysteps schema)"
        )
    if err["type"] == "missing":
        return f"spec field {loc!r} is required; set it in deploy.yaml or with --set {loc}=..."
    if raw_loc[:1] == ["env"] and err["type"].endswith("_type"):
        msg = "must be text, or {secret_env: VARIABLE} for a secret value"
    if key_error:
        loc, _, key = loc.rpartition(".")
        msg = f"key {key!r} {msg}"
    head, colon, rest = msg.partition(":")
    if colon and re.fullmatch(r"[a-z_]+(\.[a-z_]+)*", head):
        # A model-level check names the field itself, relative to the model.
        field = head if loc == "spec" else f"{loc}.{head}"
        return f"spec field {field!r}:{rest}"
    return f"spec field {loc!r}: {msg}"


def _union_tag(loc: list[Any], index: int) -> bool:
    """LOC[INDEX] names a type pydantic tried (a union member), not a field."""
    part = str(loc[index])
    if part == "[key]" or part.startswith("function-after["):
        return True
    return loc[:1] == ["env"] and index == 2 and part == "SecretEnv"


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


def check_build_paths(spec: AppSpec, checkout: Path) -> None:
    """build.context and build.dockerfile must stay inside CHECKOUT, symlinks resolved."""
    from pysteps.clients.git import path_inside

    context = path_inside(checkout, spec.build.context, "build.context")
    rel = os.path.relpath(context, checkout.resolve())
    path_inside(checkout, f"{rel}/{spec.build.dockerfile}", "build.dockerfile")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of deploy.yaml, generated from the model."""
    schema = AppSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "pysteps app spec (deploy.yaml)"
    return schema
