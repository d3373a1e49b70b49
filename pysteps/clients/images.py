"""Image mode: build the app's image with the Docker Engine, push it, deploy it by digest.

`ImageBuilder.ensure_commit_image` is the whole story (a deploy builds from a clean export of
the commit, pysteps.clients.git, never from the working tree), then `ensure_image`:
  1. ask the registry (HTTP API v2) whether REPOSITORY:COMMIT exists: then nothing is built
     (a rerun after a later stage failed costs nothing) and only missing extra tags are added;
  2. otherwise build through the Docker SDK (legacy builder: its layer cache reuses unchanged
     dependency layers), with OCI labels, streaming the output line by line;
  3. push the commit tag (immutable) and the extra tags (branch, `latest`) with credentials
     from the environment, retrying transient failures, and return the pushed digest so
     the workload runs `repo@sha256:...`, exactly what was built.

The parsing of the engine's JSON streams and the naming of failures are pure functions
(`BuildStream`, `classify_push_error`, ...), unit-tested without an engine.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from pysteps.clients.git import GitCheckout, exported_commit, path_inside
from pysteps.clients.registry import (
    RegistryAuth,
    RegistryClient,
    is_digest,
    is_valid_tag,
    split_repository,
)
from pysteps.errors import InputError, ServiceError
from pysteps.masking import mask, public_url
from pysteps.names import is_commit

__all__ = [
    "BuildStream",
    "BuiltImage",
    "ImageBuildFailed",
    "ImageBuilder",
    "RegistryAuth",
    "branch_tag",
    "oci_labels",
    "validate_commit",
    "validate_tag",
]

_STEP = re.compile(r"Step (\d+)/(\d+) : (.*)")
_BUILT = re.compile(r"Successfully built ([0-9a-f]{12,64})")
TAIL_LINES = 20
BUILD_TIMEOUT_S = 3600  # a read timeout: a RUN step may print nothing for a long time

# Push errors that no retry will cure (the engine's wording, distribution's error codes).
_PERMANENT_PUSH = (
    "unauthorized",
    "authentication required",
    "no basic auth credentials",
    "denied",
    "forbidden",
    "name_invalid",
    "manifest_invalid",
    "tag_invalid",
    "unsupported",
    "does not exist",
    "an image does not exist locally",
)
_AUTH_PUSH = ("unauthorized", "authentication required", "no basic auth credentials")


@dataclass(frozen=True)
class BuiltImage:
    """An image in the registry: what to deploy is `reference` (by digest, immutable)."""

    repository: str
    tag: str
    digest: str
    built: bool  # False when the registry already had it and the build was skipped

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"


class ImageBuildFailed(InputError):
    """The app's image did not build: the message names the step, `details` has the last lines."""

    def __init__(self, message: str, *, step: str | None, details: str) -> None:
        super().__init__(message)
        self.step = step
        self.details = details


def validate_commit(commit: str) -> str:
    """The commit as an image tag: 7 to 40 lowercase hex digits (a Git commit id)."""
    value = commit.strip().lower()
    if not is_commit(value):
        raise InputError(
            f"commit {commit!r} is not a Git commit id: give 7 to 40 hex digits "
            "(e.g. the GIT_COMMIT of the build)"
        )
    return value


def validate_tag(tag: str) -> str:
    """An extra tag (branch, `latest`) in Docker's tag grammar."""
    if not is_valid_tag(tag):
        raise InputError(
            f"image tag {tag!r} is not valid: use up to 128 of A-Z a-z 0-9 _ . - "
            "not starting with . or - (branch_tag() turns a branch name into one)"
        )
    return tag


def branch_tag(branch: str) -> str:
    """A valid tag from a branch name: 'feature/Login #2' -> 'feature-Login-2'."""
    name = branch.removeprefix("refs/heads/").removeprefix("origin/")
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).lstrip(".-")[:128].rstrip("-")
    if not tag:
        raise InputError(f"branch {branch!r} gives no usable image tag: name the tag explicitly")
    return tag


def oci_labels(source_url: str | None, commit: str, created: datetime) -> dict[str, str]:
    """The OCI annotations that tie an image to its source: source, revision, created."""
    labels = {
        "org.opencontainers.image.revision": commit,
        "org.opencontainers.image.created": created.astimezone(timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
    }
    source = public_url(source_url)
    if source:
        source = mask(source)
        labels["org.opencontainers.image.source"] = source
    return labels


def resolve_dockerfile(context: Path, dockerfile: str) -> str:
    """DOCKERFILE as a path inside CONTEXT (what the engine wants); InputError when it is not."""
    if not context.is_dir():
        raise InputError(f"build context {str(context)!r} is not a directory: check the app's path")
    path = Path(dockerfile)
    full = path if path.is_absolute() else context / path
    try:
        rel = full.resolve().relative_to(context.resolve())
    except ValueError:
        raise InputError(
            f"dockerfile {dockerfile!r} is outside the build context {str(context)!r}: "
            "give a path inside the app's checkout"
        ) from None
    if not full.is_file():
        raise InputError(
            f"dockerfile {dockerfile!r} not found in {str(context)!r}: check the spec's "
            "dockerfile path (relative to the app's checkout)"
        )
    return str(PurePosixPath(*rel.parts))


def classify_push_error(message: str) -> str:
    """'auth', 'permanent' or 'transient' for an error from the engine's push stream."""
    low = message.lower()
    if any(n in low for n in _AUTH_PUSH):
        return "auth"
    if any(n in low for n in _PERMANENT_PUSH):
        return "permanent"
    return "transient"


@dataclass
class BuildStream:
    """Reads the engine's build stream: lines to show, the current step, the result."""

    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    step: str | None = None  # "3/5 RUN make"
    steps_total: int = 0
    steps_cached: int = 0
    image_id: str | None = None
    error: str | None = None
    _pending: str = ""

    def feed(self, chunk: Mapping[str, Any]) -> list[str]:
        """Take one decoded chunk; return the complete output lines it finished."""
        lines: list[str] = []
        text = chunk.get("stream")
        if isinstance(text, str):
            parts = (self._pending + text).split("\n")
            self._pending = parts.pop()
            for raw in parts:
                line = raw.rstrip("\r")
                if line.strip():
                    self._line(line)
                    lines.append(line)
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and isinstance(aux.get("ID"), str):
            self.image_id = aux["ID"]
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail")
            message = chunk.get("error") or (
                detail.get("message") if isinstance(detail, Mapping) else None
            )
            self.error = str(message or "unknown error").strip()
            for line in self.error.splitlines():
                if line.strip():
                    self.tail.append(line)
        return lines

    def finish(self) -> list[str]:
        """Flush a last line without a newline."""
        if self._pending.strip():
            line, self._pending = self._pending, ""
            self._line(line)
            return [line]
        return []

    def _line(self, line: str) -> None:
        self.tail.append(line)
        m = _STEP.fullmatch(line)
        if m:
            self.step = f"{m.group(1)}/{m.group(2)} {m.group(3).strip()}"
            self.steps_total += 1
        elif line.strip() == "---> Using cache":
            self.steps_cached += 1
        built = _BUILT.fullmatch(line)
        if built and self.image_id is None:
            self.image_id = built.group(1)

    def failure(self, image: str) -> ImageBuildFailed:
        """The one-line error for a failed build, with the last lines as details."""
        reason = (self.error or "the build stream ended without an image").splitlines()[0]
        where = f"at step {self.step}" if self.step else "before the first step"
        return ImageBuildFailed(
            f"building {image} failed {where}: {reason}",
            step=self.step,
            details="\n".join(self.tail),
        )


def push_progress(chunk: Mapping[str, Any]) -> str | None:
    """A line worth showing from the push stream (a layer finished), or None for progress."""
    status = chunk.get("status")
    if not isinstance(status, str):
        return None
    layer = chunk.get("id")
    if status in ("Pushed", "Layer already exists") or status.startswith("Mounted from"):
        return f"  {layer}: {status}"
    return None


class BuiltImageLike(Protocol):
    @property
    def reference(self) -> str: ...

    @property
    def built(self) -> bool: ...


class ImageService(Protocol):
    """Image mode: what the deploy engine needs of an image builder (ImageBuilder below)."""

    def remote_digest(self, repository: str, tag: str) -> str | None: ...

    def ensure_commit_image(
        self,
        *,
        checkout: Path,
        context: str,
        dockerfile: str,
        repository: str,
        commit: str,
        extra_tags: Sequence[str] = (),
        build_args: Mapping[str, str] | None = None,
        source_url: str | None = None,
    ) -> BuiltImageLike: ...


class ImageBuilder:
    """Builds, pushes and finds images: the Docker Engine for builds, Registry v2 for lookups."""

    def __init__(
        self,
        auth: RegistryAuth,
        docker_host: str | None = None,
        log: Callable[[str], None] = print,
        *,
        push_attempts: int = 3,
        retry_delay_s: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.auth = auth
        self.docker_host = docker_host
        self.log = log
        self.push_attempts = max(1, push_attempts)
        self.retry_delay_s = retry_delay_s
        self.clock = clock
        self._api: Any = None
        self._registries: dict[str, RegistryClient] = {}

    # -- registry ------------------------------------------------------------------------

    def remote_digest(self, repository: str, tag: str) -> str | None:
        """The registry's digest of REPOSITORY:TAG, None when it does not have it."""
        host, path = split_repository(repository)
        if not (is_valid_tag(tag) or is_digest(tag)):
            validate_tag(tag)
        return self._registry(host).manifest_digest(path, tag)

    def _registry(self, host: str) -> RegistryClient:
        """A client for HOST: with our credentials only when HOST is our registry."""
        if host not in self._registries:
            auth = self.auth if host == self.auth.host else RegistryAuth(registry=host)
            self._registries[host] = RegistryClient(auth)
        return self._registries[host]

    # -- the whole story -----------------------------------------------------------------

    def ensure_image(
        self,
        *,
        context: Path,
        dockerfile: str,
        repository: str,
        commit: str,
        extra_tags: Sequence[str] = (),
        build_args: Mapping[str, str] | None = None,
        source_url: str | None = None,
    ) -> BuiltImage:
        """REPOSITORY:COMMIT in the registry, built and pushed only when it is not there yet."""
        host, path = split_repository(repository)
        tag = validate_commit(commit)
        extras = [validate_tag(t) for t in extra_tags if t != tag]
        context = Path(context)
        dockerfile_in_context = resolve_dockerfile(context, dockerfile)
        image = f"{repository}:{tag}"

        existing = self.remote_digest(repository, tag)
        if existing is not None:
            self.log(f"image {image} is already in the registry ({existing}): build skipped")
            self._retag_remote(host, path, repository, existing, extras)
            return BuiltImage(repository, tag, existing, built=False)

        self.log(f"building {image} from {context} ({dockerfile_in_context})")
        t0 = time.monotonic()
        image_id = self._build(
            context=context,
            dockerfile=dockerfile_in_context,
            image=image,
            labels=oci_labels(source_url, tag, self.clock()),
            build_args=dict(build_args or {}),
        )
        self.log(f"built {image} ({image_id[:19]}) in {time.monotonic() - t0:.1f}s")

        for extra in extras:
            self._call("tagging the image", self._docker().tag, image_id, repository, extra)
        digest = self._push(repository, tag)
        # What we deploy is the digest: make sure the registry serves it. (The tag itself may
        # already name a twin from a concurrent run of the same commit; the digest stays valid.)
        if self._registry(host).manifest_digest(path, digest) != digest:
            raise ServiceError(
                f"registry does not serve {repository}@{digest} right after the push"
            )
        for extra in extras:
            self._push(repository, extra)
        self.log(f"pushed {image}; deploy {repository}@{digest}")
        return BuiltImage(repository, tag, digest, built=True)

    def ensure_commit_image(
        self,
        *,
        checkout: Path,
        context: str,
        dockerfile: str,
        repository: str,
        commit: str,
        extra_tags: Sequence[str] = (),
        build_args: Mapping[str, str] | None = None,
        source_url: str | None = None,
    ) -> BuiltImage:
        """ensure_image from a clean export of COMMIT: the image tagged COMMIT holds exactly it.

        Uncommitted changes in CHECKOUT are never built; they are named in a warning.
        """
        tag = validate_commit(commit)
        changes = GitCheckout(checkout).changes()
        if changes:
            self.log(
                f"warning: {len(changes)} uncommitted change(s) in {checkout} "
                f"(e.g. {changes[0]}) are not in the image: it is built from commit "
                f"{tag[:12]} as committed"
            )
        with exported_commit(checkout, GitCheckout(checkout).resolve(tag)) as tree:
            build_context = path_inside(tree, context, "build.context")
            path_inside(build_context, dockerfile, "build.dockerfile")
            return self.ensure_image(
                context=build_context,
                dockerfile=dockerfile,
                repository=repository,
                commit=commit,
                extra_tags=extra_tags,
                build_args=build_args,
                source_url=source_url,
            )

    # -- engine I/O ----------------------------------------------------------------------

    def _docker(self) -> Any:
        """The low-level Docker API client, connected on first use."""
        if self._api is None:
            import docker  # lazy: keeps `pysteps --help` instant, and lookups need no engine
            from docker.errors import DockerException

            try:
                kwargs: dict[str, Any] = (
                    {"base_url": self.docker_host}
                    if self.docker_host
                    else docker.utils.kwargs_from_env()
                )
                self._api = docker.APIClient(version="auto", timeout=BUILD_TIMEOUT_S, **kwargs)
            except DockerException as e:
                where = self.docker_host or "DOCKER_HOST"
                raise ServiceError(
                    f"Docker Engine at {where} is unreachable ({_short(e)}): is it running, "
                    "and is DOCKER_HOST right?"
                ) from None
        return self._api

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """FN(*ARGS), with engine failures as one-line ServiceErrors."""
        from docker.errors import DockerException
        from requests import RequestException

        try:
            return fn(*args, **kwargs)
        except (DockerException, RequestException) as e:
            raise ServiceError(f"{what} failed: {self.auth.scrub(_short(e))}") from None

    def _build(
        self,
        *,
        context: Path,
        dockerfile: str,
        image: str,
        labels: Mapping[str, str],
        build_args: Mapping[str, str],
    ) -> str:
        """Build IMAGE; stream its output to the log; the image id, or ImageBuildFailed."""
        from docker.errors import APIError, DockerException
        from requests import RequestException

        api = self._docker()
        stream = BuildStream()
        try:
            chunks = api.build(
                path=str(context),
                dockerfile=dockerfile,
                tag=image,
                labels=dict(labels),
                buildargs=dict(build_args),
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
            )
            self._drain(chunks, stream)
        except APIError as e:
            if not e.is_client_error():
                raise ServiceError(
                    f"building {image}: the engine failed: {self.auth.scrub(_short(e))}"
                ) from None
            # 4xx: the engine refused the Dockerfile itself (a parse error, an unknown
            # instruction): the app's input, reported like a failed step.
            stream.feed({"error": self.auth.scrub(_short(e))})
        except (DockerException, RequestException) as e:
            raise ServiceError(
                f"building {image}: lost the engine ({self.auth.scrub(_short(e))})"
            ) from None
        for line in stream.finish():
            self.log(self.auth.scrub(line))
        if stream.error or not stream.image_id:
            raise stream.failure(image)
        return stream.image_id

    def _drain(self, chunks: Iterable[Mapping[str, Any]], stream: BuildStream) -> None:
        for chunk in chunks:
            for line in stream.feed(chunk):
                self.log(self.auth.scrub(line))

    def _push(self, repository: str, tag: str) -> str:
        """Push REPOSITORY:TAG with our credentials, retrying transient failures; its digest."""
        from docker.errors import DockerException
        from requests import RequestException

        api = self._docker()
        host, _ = split_repository(repository)
        creds = self.auth.credentials_for(host)
        auth_config = {"username": creds[0], "password": creds[1]} if creds else None
        image = f"{repository}:{tag}"
        last = ""
        for attempt in range(1, self.push_attempts + 1):
            if attempt > 1:
                delay = self.retry_delay_s * 2 ** (attempt - 2)
                self.log(
                    f"push of {image} failed ({last}); retry {attempt}/{self.push_attempts} "
                    f"in {delay:g}s"
                )
                time.sleep(delay)
            self.log(f"pushing {image}")
            digest: str | None = None
            error: str | None = None
            try:
                for chunk in api.push(
                    repository, tag=tag, stream=True, decode=True, auth_config=auth_config
                ):
                    if "error" in chunk or "errorDetail" in chunk:
                        error = str(chunk.get("error") or chunk.get("errorDetail"))
                    aux = chunk.get("aux")
                    if isinstance(aux, Mapping) and is_digest(str(aux.get("Digest", ""))):
                        digest = str(aux["Digest"])
                    line = push_progress(chunk)
                    if line:
                        self.log(line)
            except (DockerException, RequestException) as e:
                error = _short(e)
            if error is None and digest is not None:
                return digest
            last = self.auth.scrub((error or "no digest in the engine's answer").splitlines()[0])
            kind = classify_push_error(last)
            if kind == "auth":
                raise ServiceError(
                    f"registry {host} refused to take {image} ({last}): check "
                    "PYSTEPS_REGISTRY_USERNAME and PYSTEPS_REGISTRY_PASSWORD"
                )
            if kind == "permanent":
                raise ServiceError(f"pushing {image} failed: {last}")
        raise ServiceError(f"pushing {image} failed after {self.push_attempts} attempts: {last}")

    def _retag_remote(
        self, host: str, path: str, repository: str, digest: str, tags: Sequence[str]
    ) -> None:
        """Point the extra TAGS at DIGEST in the registry itself: no pull, no push of layers."""
        registry = self._registry(host)
        for extra in tags:
            if registry.manifest_digest(path, extra) == digest:
                continue
            got = registry.manifest(path, digest)
            if got is None:
                raise ServiceError(f"registry lost {repository}@{digest} while tagging it")
            body, media_type, _ = got
            registry.put_manifest(path, extra, body, media_type)
            self.log(f"tagged {repository}:{extra} -> {digest}")


def _short(e: BaseException) -> str:
    """The first line of an engine error, without the SDK's noise."""
    explanation = getattr(e, "explanation", None)
    text = str(explanation or e).strip()
    text = text.replace("Error while fetching server API version: ", "")
    first = text.splitlines()[0] if text else type(e).__name__
    return first[:300]
