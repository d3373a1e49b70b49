"""Pure parts of image mode: names, tags, labels, stream parsing, error naming, masking."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pysteps.clients.images import (
    BuildStream,
    BuiltImage,
    ImageBuilder,
    ImageBuildFailed,
    branch_tag,
    classify_push_error,
    oci_labels,
    public_url,
    push_progress,
    resolve_dockerfile,
    validate_commit,
    validate_tag,
)
from pysteps.clients.registry import (
    RegistryAuth,
    RegistryClient,
    is_loopback,
    parse_challenge,
    registry_host,
    split_repository,
)
from pysteps.errors import InputError, ServiceError

SECRET = "s3cr3t-Pa55"


# -- tags and names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("commit", "tag"),
    [
        ("abc1234", "abc1234"),
        ("ABC1234", "abc1234"),
        ("0123456789abcdef0123456789abcdef01234567", "0123456789abcdef0123456789abcdef01234567"),
        (" 1a2b3c4d \n", "1a2b3c4d"),
    ],
)
def test_commit_becomes_the_tag(commit: str, tag: str) -> None:
    assert validate_commit(commit) == tag


@pytest.mark.parametrize(
    "commit", ["", "abc123", "g123456", "0123456789abcdef0123456789abcdef012345678", "main"]
)
def test_bad_commit_is_named(commit: str) -> None:
    with pytest.raises(InputError, match=r"commit .* is not a Git commit id: give 7 to 40 hex"):
        validate_commit(commit)


@pytest.mark.parametrize("tag", ["latest", "main", "v1.2.3", "release_2024-01", "a" * 128])
def test_valid_tags(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", "-x", ".x", "feature/x", "a b", "a" * 129, "é"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(InputError, match=r"image tag .* is not valid"):
        validate_tag(tag)


@pytest.mark.parametrize(
    ("branch", "tag"),
    [
        ("main", "main"),
        ("feature/Login #2", "feature-Login-2"),
        ("refs/heads/release/1.2", "release-1.2"),
        ("origin/fix--x", "fix--x"),
        ("-weird-", "weird"),
    ],
)
def test_branch_tag(branch: str, tag: str) -> None:
    assert branch_tag(branch) == tag
    assert validate_tag(branch_tag(branch))


def test_branch_tag_without_usable_characters() -> None:
    with pytest.raises(InputError, match="gives no usable image tag"):
        branch_tag("///")


@pytest.mark.parametrize(
    ("repository", "host", "path"),
    [
        ("127.0.0.1:25000/team/hello", "127.0.0.1:25000", "team/hello"),
        ("harbor.example.com/team/sub/app", "harbor.example.com", "team/sub/app"),
        ("localhost/app", "localhost", "app"),
        ("team/app", "docker.io", "team/app"),
        ("busybox", "docker.io", "library/busybox"),
        ("h:5000/a__b/c-d.e", "h:5000", "a__b/c-d.e"),
    ],
)
def test_split_repository(repository: str, host: str, path: str) -> None:
    assert split_repository(repository) == (host, path)


@pytest.mark.parametrize(
    "repository", ["h:5000/Team/app", "h:5000/", "h:5000/a//b", "h:5000/app:tag", "h:5000/-a"]
)
def test_bad_repository_is_named(repository: str) -> None:
    with pytest.raises(InputError, match=r"image repository .* is not valid"):
        split_repository(repository)


def test_built_image_reference_is_by_digest() -> None:
    digest = "sha256:" + "ab" * 32
    img = BuiltImage("127.0.0.1:25000/team/hello", "abc1234", digest, built=False)
    assert img.reference == f"127.0.0.1:25000/team/hello@{digest}"


# -- labels ------------------------------------------------------------------------------


def test_oci_labels() -> None:
    created = datetime(2024, 5, 6, 9, 30, 0, tzinfo=timezone(timedelta(hours=2)))
    labels = oci_labels("https://git.example.com/team/app.git", "abc1234", created)
    assert labels == {
        "org.opencontainers.image.source": "https://git.example.com/team/app.git",
        "org.opencontainers.image.revision": "abc1234",
        "org.opencontainers.image.created": "2024-05-06T07:30:00Z",
    }


def test_oci_labels_without_source() -> None:
    labels = oci_labels(None, "abc1234", datetime(2024, 1, 1, tzinfo=timezone.utc))
    assert "org.opencontainers.image.source" not in labels


@pytest.mark.parametrize(
    ("url", "public"),
    [
        (
            f"https://ci:{SECRET}@git.example.com/team/app.git",
            "https://git.example.com/team/app.git",
        ),
        (f"https://{SECRET}@git.example.com:8443/a.git", "https://git.example.com:8443/a.git"),
        ("git@git.example.com:team/app.git", "git@git.example.com:team/app.git"),
        ("https://git.example.com/a.git", "https://git.example.com/a.git"),
        (None, None),
    ],
)
def test_source_url_loses_its_credentials(url: str | None, public: str | None) -> None:
    assert public_url(url) == public


# -- Dockerfile path ---------------------------------------------------------------------


def test_resolve_dockerfile(tmp_path: Path) -> None:
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "Dockerfile.prod").write_text("FROM scratch\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert resolve_dockerfile(tmp_path, "Dockerfile") == "Dockerfile"
    assert resolve_dockerfile(tmp_path, "docker/Dockerfile.prod") == "docker/Dockerfile.prod"
    assert resolve_dockerfile(tmp_path, str(tmp_path / "Dockerfile")) == "Dockerfile"


def test_resolve_dockerfile_errors(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(InputError, match=r"dockerfile 'Dockerfile.missing' not found"):
        resolve_dockerfile(tmp_path / "app", "Dockerfile.missing")
    with pytest.raises(InputError, match="is outside the build context"):
        resolve_dockerfile(tmp_path / "app", "../Dockerfile")
    with pytest.raises(InputError, match=r"build context .* is not a directory"):
        resolve_dockerfile(tmp_path / "nope", "Dockerfile")


# -- the build stream --------------------------------------------------------------------


def _feed(stream: BuildStream, chunks: list[Mapping[str, Any]]) -> list[str]:
    lines: list[str] = []
    for c in chunks:
        lines += stream.feed(c)
    return lines + stream.finish()


def test_build_stream_success_counts_steps_and_cache() -> None:
    s = BuildStream()
    lines = _feed(
        s,
        [
            {"stream": "Step 1/3 : FROM base\n"},
            {"stream": " ---> 0ca9b78f8de8\n"},
            {"stream": "Step 2/3 : COPY deps/ /deps/\n ---> Using cache\n ---> 11"},
            {"stream": "22\n"},  # a line split across chunks
            {"stream": "Step 3/3 : COPY src/ /src/\n"},
            {"stream": " ---> 3344\n"},
            {"aux": {"ID": "sha256:" + "cd" * 32}},
            {"stream": "Successfully built 3344\n"},
            {"stream": "\n"},
        ],
    )
    assert " ---> 1122" in lines
    assert "" not in lines
    assert (s.steps_total, s.steps_cached) == (3, 1)
    assert s.step == "3/3 COPY src/ /src/"
    assert s.image_id == "sha256:" + "cd" * 32
    assert s.error is None


def test_build_stream_image_id_from_text_when_no_aux() -> None:
    s = BuildStream()
    _feed(
        s, [{"stream": "Step 1/1 : FROM base\n"}, {"stream": "Successfully built 0ca9b78f8de8\n"}]
    )
    assert s.image_id == "0ca9b78f8de8"


def test_failed_step_is_named_with_its_last_lines() -> None:
    s = BuildStream()
    chunks: list[Mapping[str, Any]] = [{"stream": f"noise {i}\n"} for i in range(40)]
    chunks += [
        {"stream": "Step 2/4 : RUN make all\n"},
        {"stream": " ---> Running in 5f2c\n"},
        {"stream": "cc: error: main.c: No such file\n"},
        {
            "errorDetail": {
                "code": 2,
                "message": "The command '/bin/sh -c make all' returned a non-zero code: 2",
            },
            "error": "The command '/bin/sh -c make all' returned a non-zero code: 2",
        },
    ]
    _feed(s, chunks)
    err = s.failure("h:5000/team/app:abc1234")
    assert isinstance(err, ImageBuildFailed)
    assert isinstance(err, InputError)
    assert str(err) == (
        "building h:5000/team/app:abc1234 failed at step 2/4 RUN make all: "
        "The command '/bin/sh -c make all' returned a non-zero code: 2"
    )
    assert "\n" not in str(err)
    assert err.step == "2/4 RUN make all"
    tail = err.details.splitlines()
    assert len(tail) == 20
    assert "cc: error: main.c: No such file" in tail
    assert tail[-1].endswith("returned a non-zero code: 2")
    assert "noise 0" not in err.details


def test_failure_before_the_first_step() -> None:
    s = BuildStream()
    _feed(s, [{"error": "dockerfile parse error line 2: unknown instruction: FOO"}])
    err = s.failure("h/app:abc1234")
    assert str(err) == (
        "building h/app:abc1234 failed before the first step: "
        "dockerfile parse error line 2: unknown instruction: FOO"
    )


def test_stream_that_ends_without_an_image_is_a_failure() -> None:
    s = BuildStream()
    _feed(s, [{"stream": "Step 1/1 : FROM base\n"}])
    assert s.image_id is None
    assert "ended without an image" in str(s.failure("h/app:abc1234"))


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("unauthorized: authentication required", "auth"),
        ("no basic auth credentials", "auth"),
        ("denied: requested access to the resource is denied", "permanent"),
        ("An image does not exist locally with the tag: h/app", "permanent"),
        ('Put "http://h/v2/app/blobs/uploads/": EOF', "transient"),
        ("dial tcp 127.0.0.1:25000: connect: connection refused", "transient"),
        ("received unexpected HTTP status: 503 Service Unavailable", "transient"),
    ],
)
def test_classify_push_error(message: str, kind: str) -> None:
    assert classify_push_error(message) == kind


def test_push_progress_shows_finished_layers_only() -> None:
    assert push_progress({"status": "Pushing", "id": "ab", "progress": "[=>  ]"}) is None
    assert push_progress({"status": "Pushed", "id": "ab"}) == "  ab: Pushed"
    assert (
        push_progress({"status": "Mounted from team/x", "id": "ab"}) == "  ab: Mounted from team/x"
    )
    assert push_progress({"aux": {"Digest": "sha256:00"}}) is None


# -- credentials -------------------------------------------------------------------------


def test_auth_repr_masks_the_password() -> None:
    auth = RegistryAuth("h:5000", "ci", SECRET)
    assert SECRET not in repr(auth)
    assert SECRET not in str(auth)
    assert SECRET not in f"{auth}"
    assert "password='***'" in repr(auth)
    assert "password=None" in repr(RegistryAuth("h:5000"))


def test_auth_from_env() -> None:
    auth = RegistryAuth.from_env(
        {
            "PYSTEPS_REGISTRY": "127.0.0.1:25000",
            "PYSTEPS_REGISTRY_USERNAME": "ci",
            "PYSTEPS_REGISTRY_PASSWORD": SECRET,
        }
    )
    assert (auth.registry, auth.username, auth.password) == ("127.0.0.1:25000", "ci", SECRET)
    anonymous = RegistryAuth.from_env({"PYSTEPS_REGISTRY": "harbor.example.com"})
    assert (anonymous.username, anonymous.password) == (None, None)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "PYSTEPS_REGISTRY is not set"),
        ({"PYSTEPS_REGISTRY": "h", "PYSTEPS_REGISTRY_USERNAME": "ci"}, "PYSTEPS_REGISTRY_PASSWORD"),
        (
            {"PYSTEPS_REGISTRY": "h", "PYSTEPS_REGISTRY_PASSWORD": SECRET},
            "PYSTEPS_REGISTRY_USERNAME",
        ),
        ({"PYSTEPS_REGISTRY": "ftp://h"}, "is not a registry address"),
        ({"PYSTEPS_REGISTRY": "https://h/some/path"}, "is not a registry address"),
        ({"PYSTEPS_REGISTRY": f"ci:{SECRET}@h"}, "is not a registry address"),
    ],
)
def test_auth_from_env_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        RegistryAuth.from_env(env)
    assert SECRET not in str(err.value)


@pytest.mark.parametrize(
    ("registry", "host", "base_url"),
    [
        ("127.0.0.1:25000", "127.0.0.1:25000", "http://127.0.0.1:25000"),
        ("localhost:5000", "localhost:5000", "http://localhost:5000"),
        ("harbor.example.com", "harbor.example.com", "https://harbor.example.com"),
        ("http://registry.lan:5000/", "registry.lan:5000", "http://registry.lan:5000"),
        ("https://127.0.0.1:5443", "127.0.0.1:5443", "https://127.0.0.1:5443"),
    ],
)
def test_registry_address(registry: str, host: str, base_url: str) -> None:
    auth = RegistryAuth(registry)
    assert registry_host(registry) == host
    assert auth.host == host
    assert auth.base_url == base_url


def test_loopback() -> None:
    assert is_loopback("127.0.0.1:25000")
    assert is_loopback("127.0.0.2")
    assert is_loopback("[::1]:5000")
    assert not is_loopback("10.0.0.1:5000")
    assert not is_loopback("harbor.example.com")


def test_credentials_only_for_their_registry() -> None:
    auth = RegistryAuth("127.0.0.1:25000", "ci", SECRET)
    assert auth.credentials_for("127.0.0.1:25000") == ("ci", SECRET)
    assert auth.credentials_for("evil.example.com") is None
    assert auth.scrub(f"oops {SECRET} leaked") == "oops *** leaked"


def test_parse_challenge() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://harbor.example.com/service/token",service="harbor-registry",'
        'scope="repository:team/app:pull"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://harbor.example.com/service/token",
        "service": "harbor-registry",
        "scope": "repository:team/app:pull",
    }
    assert parse_challenge('Basic realm="pysteps-testbed"') == (
        "basic",
        {"realm": "pysteps-testbed"},
    )


# -- the Bearer token flow (Harbor), against a scripted registry ---------------------------


class FakeResponse:
    def __init__(self, status: int, headers: Mapping[str, str] | None = None, body: Any = None):
        self.status_code = status
        self.headers = dict(headers or {})
        self._body = body
        self.content = b"{}"
        self.text = ""
        self.reason = ""

    def json(self) -> Any:
        return self._body


class HarborLikeSession:
    """A registry that wants a Bearer token from /service/token, which wants Basic auth."""

    DIGEST = "sha256:" + "ef" * 32

    def __init__(self, password: str) -> None:
        self.password = password
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def request(self, method: str, url: str, headers: Mapping[str, str], **_: Any) -> FakeResponse:
        self.calls.append((method, url, dict(headers)))
        if headers.get("Authorization") != "Bearer tok-123":
            return FakeResponse(
                401,
                {
                    "WWW-Authenticate": 'Bearer realm="https://harbor.example.com/service/token",'
                    'service="harbor-registry"'
                },
            )
        if url.endswith("/manifests/missing"):
            return FakeResponse(404)
        return FakeResponse(200, {"Docker-Content-Digest": self.DIGEST})

    def get(self, url: str, params: Mapping[str, str], headers: Mapping[str, str], **_: Any) -> Any:
        import base64

        self.calls.append(("GET", url, {**params, **headers}))
        expected = "Basic " + base64.b64encode(f"ci:{self.password}".encode()).decode()
        if headers.get("Authorization") != expected:
            return FakeResponse(401)
        return FakeResponse(200, body={"token": "tok-123"})


def test_bearer_token_flow() -> None:
    session = HarborLikeSession(SECRET)
    client = RegistryClient(
        RegistryAuth("harbor.example.com", "ci", SECRET),
        session=session,  # type: ignore[arg-type]
    )
    assert client.manifest_digest("team/app", "abc1234") == HarborLikeSession.DIGEST
    token_calls = [c for c in session.calls if c[1].endswith("/service/token")]
    assert len(token_calls) == 1
    assert token_calls[0][2]["scope"] == "repository:team/app:pull"
    assert token_calls[0][2]["service"] == "harbor-registry"
    # The token is reused for the same scope: no second token request.
    assert client.manifest_digest("team/app", "missing") is None
    assert len([c for c in session.calls if c[1].endswith("/service/token")]) == 1
    assert all(c[1].startswith("https://harbor.example.com/") for c in session.calls)


def test_bearer_wrong_password_is_named_without_the_password() -> None:
    session = HarborLikeSession("the-right-one")
    client = RegistryClient(
        RegistryAuth("harbor.example.com", "ci", SECRET),
        session=session,  # type: ignore[arg-type]
    )
    with pytest.raises(ServiceError, match="refused the login of user 'ci'") as err:
        client.manifest_digest("team/app", "abc1234")
    assert SECRET not in str(err.value)


# -- push retries, against a scripted engine -----------------------------------------------


class ScriptedEngine:
    """Answers each push with the next scripted stream; records the credentials it was given."""

    DIGEST = "sha256:" + "12" * 32

    def __init__(self, *streams: list[dict[str, Any]]) -> None:
        self.streams = list(streams)
        self.auth_configs: list[Any] = []

    def push(self, repository: str, tag: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.auth_configs.append(kwargs.get("auth_config"))
        yield from self.streams.pop(0)


def _builder(engine: ScriptedEngine, log: list[str], password: str = SECRET) -> ImageBuilder:
    auth = RegistryAuth("127.0.0.1:25000", "ci", password)
    builder = ImageBuilder(auth, log=log.append, push_attempts=3, retry_delay_s=0)
    builder._api = engine
    return builder


def test_push_retries_transient_errors() -> None:
    engine = ScriptedEngine(
        [{"status": "Preparing", "id": "a"}, {"error": 'Put "http://h/v2/x/blobs/uploads/": EOF'}],
        [{"errorDetail": {"message": "received unexpected HTTP status: 503"}, "error": "503"}],
        [{"status": "Pushed", "id": "a"}, {"aux": {"Tag": "t", "Digest": ScriptedEngine.DIGEST}}],
    )
    log: list[str] = []
    digest = _builder(engine, log)._push("127.0.0.1:25000/team/app", "abc1234")
    assert digest == ScriptedEngine.DIGEST
    assert len(engine.auth_configs) == 3
    assert engine.auth_configs[0] == {"username": "ci", "password": SECRET}
    assert sum("retry" in line for line in log) == 2
    assert "  a: Pushed" in log


def test_push_gives_up_after_its_attempts() -> None:
    eof = [{"error": "connection reset by peer"}]
    engine = ScriptedEngine(eof, eof, eof)
    with pytest.raises(ServiceError, match=r"failed after 3 attempts: connection reset by peer"):
        _builder(engine, [])._push("127.0.0.1:25000/team/app", "abc1234")


def test_push_auth_failure_is_not_retried_and_leaks_nothing() -> None:
    engine = ScriptedEngine(
        [{"error": f"unauthorized: authentication required (sent {SECRET})"}],
        [{"aux": {"Digest": ScriptedEngine.DIGEST}}],
    )
    log: list[str] = []
    with pytest.raises(ServiceError, match="refused to take") as err:
        _builder(engine, log)._push("127.0.0.1:25000/team/app", "abc1234")
    assert len(engine.auth_configs) == 1
    assert SECRET not in str(err.value)
    assert SECRET not in "\n".join(log)


def test_push_to_another_registry_sends_no_credentials() -> None:
    engine = ScriptedEngine([{"aux": {"Digest": ScriptedEngine.DIGEST}}])
    _builder(engine, [])._push("other.example.com/team/app", "abc1234")
    assert engine.auth_configs == [None]
