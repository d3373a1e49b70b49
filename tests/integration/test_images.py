"""Image mode on the real Docker Engine and the real registry (htpasswd login) of the test bed."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import docker
import pytest

from pysteps.clients.images import BuiltImage, ImageBuilder, ImageBuildFailed, RegistryAuth
from pysteps.errors import InputError, ServiceError
from tests.conftest import require

pytestmark = pytest.mark.integration


class Log(list[str]):
    """Collects what ImageBuilder logs, to check what a user would see."""

    def __call__(self, line: str) -> None:
        self.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self)


@pytest.fixture()
def auth(testbed: Mapping[str, str]) -> RegistryAuth:
    registry, user, password = require(
        testbed, "PYSTEPS_REGISTRY", "PYSTEPS_REGISTRY_USERNAME", "PYSTEPS_REGISTRY_PASSWORD"
    )
    return RegistryAuth(registry, user, password)


@pytest.fixture()
def docker_host(testbed: Mapping[str, str]) -> str:
    return require(testbed, "DOCKER_HOST")[0]


@pytest.fixture()
def base_image(testbed: Mapping[str, str]) -> str:
    return require(testbed, "TESTBED_BASE_IMAGE")[0]


@pytest.fixture()
def engine(
    docker_host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[docker.DockerClient]:
    """A client for checking the engine, blind to any ~/.docker/config.json login."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    client = docker.DockerClient(base_url=docker_host, version="auto")
    try:
        yield client
    finally:
        client.close()


def make_app(root: Path, base_image: str, *, dockerfile_body: str | None = None) -> Path:
    """A tiny web app served by busybox httpd: a dependency layer, then the code layer."""
    app = root / "app"
    (app / "src").mkdir(parents=True)
    (app / "deps.txt").write_text("busybox-httpd\n")
    (app / "src" / "index.html").write_text(f"<h1>hello {secrets.token_hex(8)}</h1>\n")
    body = dockerfile_body or (
        "ARG GREETING=hi\n"
        "COPY deps.txt /app/deps.txt\n"
        "RUN mkdir -p /app/lib && cp /app/deps.txt /app/lib/installed\n"
        "COPY src/ /app/src/\n"
        "RUN echo $GREETING > /app/greeting\n"
        'CMD ["httpd", "-f", "-p", "8080", "-h", "/app/src"]\n'
    )
    (app / "Dockerfile").write_text(f"FROM {base_image}\n{body}")
    return app


@pytest.fixture()
def new_repository(
    engine: docker.DockerClient,
) -> Iterator[Callable[[RegistryAuth], str]]:
    """Fresh repository names; their local images are removed afterwards (vfs fills disks)."""
    made: list[str] = []

    def make(auth: RegistryAuth) -> str:
        made.append(f"{auth.host}/pysteps-test/app-{secrets.token_hex(4)}")
        return made[-1]

    yield make
    for repository in made:
        for image in engine.images.list(name=repository):
            engine.images.remove(image.id, force=True)


def test_build_push_pull_by_digest_then_skip(
    auth: RegistryAuth,
    docker_host: str,
    base_image: str,
    engine: docker.DockerClient,
    tmp_path: Path,
    new_repository: Callable[[RegistryAuth], str],
) -> None:
    app = make_app(tmp_path, base_image)
    repository = new_repository(auth)
    commit = secrets.token_hex(20)
    log = Log()
    builder = ImageBuilder(auth, docker_host=docker_host, log=log)

    assert builder.remote_digest(repository, commit) is None
    image = builder.ensure_image(
        context=app,
        dockerfile="Dockerfile",
        repository=repository,
        commit=commit,
        extra_tags=["main"],
        build_args={"GREETING": "bonjour"},
        source_url=f"https://ci:{auth.password}@git.example.com/team/app.git",
    )
    assert isinstance(image, BuiltImage)
    assert image.built is True
    assert image.tag == commit
    assert image.digest.startswith("sha256:") and len(image.digest) == 71
    assert image.reference == f"{repository}@{image.digest}"
    assert builder.remote_digest(repository, commit) == image.digest
    assert builder.remote_digest(repository, "main") == image.digest
    assert "Step 1/" in log.text  # the build output was streamed
    assert auth.password and auth.password not in log.text

    # The labels tie the image to its source, without the credentials of the checkout URL.
    local = engine.images.get(f"{repository}:{commit}")
    labels = local.labels
    assert labels["org.opencontainers.image.revision"] == commit
    assert labels["org.opencontainers.image.source"] == "https://git.example.com/team/app.git"
    assert labels["org.opencontainers.image.created"].endswith("Z")

    # Removed locally, pulled back by digest: the very same image, and it runs.
    built_id = local.id
    engine.images.remove(built_id, force=True)
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get(f"{repository}:{commit}")
    creds: dict[str, Any] = {"username": auth.username, "password": auth.password}
    pulled = engine.images.pull(repository, tag=image.digest, auth_config=creds)
    assert pulled.id == built_id
    assert image.reference in pulled.attrs["RepoDigests"]
    out = engine.containers.run(image.reference, ["cat", "/app/greeting"], remove=True)
    assert out.decode().strip() == "bonjour"

    # A rerun (a later stage failed): nothing is built, the extra tag is added in the registry.
    rerun_log = Log()
    again = ImageBuilder(auth, docker_host=docker_host, log=rerun_log).ensure_image(
        context=app,
        dockerfile="Dockerfile",
        repository=repository,
        commit=commit,
        extra_tags=["main", "latest"],
    )
    assert again == BuiltImage(repository, commit, image.digest, built=False)
    assert "build skipped" in rerun_log.text
    assert "Step 1/" not in rerun_log.text
    assert builder.remote_digest(repository, "latest") == image.digest


def test_rerun_skips_even_without_an_engine(
    auth: RegistryAuth,
    docker_host: str,
    base_image: str,
    tmp_path: Path,
    new_repository: Callable[[RegistryAuth], str],
) -> None:
    """The skip decision is the registry's alone: no engine is contacted."""
    app = make_app(tmp_path, base_image)
    repository = new_repository(auth)
    commit = secrets.token_hex(4)
    first = ImageBuilder(auth, docker_host=docker_host, log=Log()).ensure_image(
        context=app, dockerfile="Dockerfile", repository=repository, commit=commit
    )
    offline = ImageBuilder(auth, docker_host="unix:///nonexistent/docker.sock", log=Log())
    again = offline.ensure_image(
        context=app, dockerfile="Dockerfile", repository=repository, commit=commit
    )
    assert again.built is False
    assert again.digest == first.digest


def test_failing_step_is_named_with_its_last_lines(
    auth: RegistryAuth,
    docker_host: str,
    base_image: str,
    tmp_path: Path,
    new_repository: Callable[[RegistryAuth], str],
) -> None:
    app = make_app(
        tmp_path,
        base_image,
        dockerfile_body=(
            "COPY src/ /app/src/\n"
            "RUN echo compiling main.c && echo 'main.c:3: error: boom' >&2 && exit 3\n"
            'CMD ["true"]\n'
        ),
    )
    repository = new_repository(auth)
    commit = secrets.token_hex(20)
    log = Log()
    builder = ImageBuilder(auth, docker_host=docker_host, log=log)
    with pytest.raises(ImageBuildFailed) as err:
        builder.ensure_image(
            context=app, dockerfile="Dockerfile", repository=repository, commit=commit
        )
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"building {repository}:{commit} failed at step 3/")
    assert "RUN echo compiling main.c" in message
    assert "returned a non-zero code: 3" in message
    assert "main.c:3: error: boom" in err.value.details
    assert "compiling main.c" in log.text
    assert builder.remote_digest(repository, commit) is None  # nothing was pushed


def test_unknown_instruction_is_a_clear_error(
    auth: RegistryAuth,
    docker_host: str,
    base_image: str,
    tmp_path: Path,
    new_repository: Callable[[RegistryAuth], str],
) -> None:
    app = make_app(tmp_path, base_image, dockerfile_body="COPPY src/ /app/src/\n")
    builder = ImageBuilder(auth, docker_host=docker_host, log=Log())
    with pytest.raises(ImageBuildFailed, match=r"unknown instruction: COPPY") as err:
        builder.ensure_image(
            context=app,
            dockerfile="Dockerfile",
            repository=new_repository(auth),
            commit=secrets.token_hex(20),
        )
    assert "\n" not in str(err.value)


def test_missing_dockerfile_is_bad_input(
    auth: RegistryAuth,
    docker_host: str,
    base_image: str,
    tmp_path: Path,
    new_repository: Callable[[RegistryAuth], str],
) -> None:
    app = make_app(tmp_path, base_image)
    builder = ImageBuilder(auth, docker_host=docker_host, log=Log())
    with pytest.raises(InputError, match=r"dockerfile 'docker/Dockerfile\.prod' not found"):
        builder.ensure_image(
            context=app,
            dockerfile="docker/Dockerfile.prod",
            repository=new_repository(auth),
            commit=secrets.token_hex(20),
        )


def test_wrong_password_is_refused_without_leaking_it(
    auth: RegistryAuth,
    docker_host: str,
    base_image: str,
    engine: docker.DockerClient,
    tmp_path: Path,
    new_repository: Callable[[RegistryAuth], str],
) -> None:
    wrong = RegistryAuth(auth.registry, auth.username, "wrong-" + secrets.token_hex(12))
    assert wrong.password
    log = Log()
    builder = ImageBuilder(wrong, docker_host=docker_host, log=log)
    repository = new_repository(auth)

    with pytest.raises(ServiceError) as err:
        builder.ensure_image(
            context=make_app(tmp_path, base_image),
            dockerfile="Dockerfile",
            repository=repository,
            commit=secrets.token_hex(20),
        )
    message = str(err.value)
    assert message == (
        f"registry {auth.host} refused the login of user {auth.username!r}: check "
        "PYSTEPS_REGISTRY_USERNAME and PYSTEPS_REGISTRY_PASSWORD"
    )

    # The engine's push refuses the same credentials: named, not retried, not leaked.
    tag = secrets.token_hex(4)
    engine.images.get(base_image).tag(repository, tag=tag)
    try:
        with pytest.raises(ServiceError, match="refused to take") as push_err:
            builder._push(repository, tag)
    finally:
        engine.images.remove(f"{repository}:{tag}")
    for text in (message, str(push_err.value), log.text, repr(wrong)):
        assert wrong.password not in text
    assert log.text.count("pushing ") == 1  # an auth failure is not retried


def test_registry_down_is_a_clear_error(
    auth: RegistryAuth, docker_host: str, base_image: str, tmp_path: Path
) -> None:
    with socket.socket() as s:  # a loopback port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = RegistryAuth(f"127.0.0.1:{port}", auth.username, auth.password)
    builder = ImageBuilder(down, docker_host=docker_host, log=Log())
    with pytest.raises(ServiceError) as err:
        builder.ensure_image(
            context=make_app(tmp_path, base_image),
            dockerfile="Dockerfile",
            repository=f"127.0.0.1:{port}/team/app",
            commit=secrets.token_hex(20),
        )
    assert str(err.value) == (
        f"registry 127.0.0.1:{port} is unreachable (connection refused): is it up, and is "
        "PYSTEPS_REGISTRY right?"
    )


def test_engine_down_is_a_clear_error(
    auth: RegistryAuth,
    base_image: str,
    tmp_path: Path,
    new_repository: Callable[[RegistryAuth], str],
) -> None:
    builder = ImageBuilder(auth, docker_host="unix:///nonexistent/docker.sock", log=Log())
    with pytest.raises(
        ServiceError, match=r"^Docker Engine at unix:///nonexistent/docker\.sock is unreachable"
    ):
        builder.ensure_image(
            context=make_app(tmp_path, base_image),
            dockerfile="Dockerfile",
            repository=new_repository(auth),
            commit=secrets.token_hex(20),
        )
