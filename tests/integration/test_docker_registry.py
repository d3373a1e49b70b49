"""The test bed's Docker Engine and registry work together, through the Python Docker SDK.

Build FROM the local base image, push with a login, remove the image, pull it back by digest;
and the registry refuses a push without a login.
"""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from tests.conftest import require

pytestmark = pytest.mark.integration

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


@pytest.fixture()
def client(
    testbed: Mapping[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[docker.DockerClient]:
    """A client of the test bed's engine that ignores any ~/.docker/config.json login."""
    (docker_host,) = require(testbed, "DOCKER_HOST")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    c = docker.DockerClient(base_url=docker_host, version="auto", timeout=120)
    try:
        yield c
    finally:
        c.close()


def _context(base_image: str, marker: str) -> io.BytesIO:
    """A build context (tar) whose image content is unique to MARKER, so the push uploads."""
    dockerfile = (
        f'FROM {base_image}\nRUN echo {marker} > /marker\nCMD ["/bin/cat", "/marker"]\n'
    ).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buf.seek(0)
    return buf


def _stream_errors(chunks: Any) -> tuple[list[str], dict[str, Any]]:
    """Errors and the last `aux` record of a decoded push/build stream."""
    errors: list[str] = []
    aux: dict[str, Any] = {}
    for chunk in chunks:
        if "error" in chunk:
            errors.append(str(chunk["error"]))
        if "aux" in chunk and isinstance(chunk["aux"], dict):
            aux = chunk["aux"]
    return errors, aux


def _remote_digest(registry: str, user: str, password: str, repo: str, tag: str) -> str | None:
    """The registry's digest of REPO:TAG (None when absent), straight from the Registry v2 API."""
    r = requests.head(
        f"http://{registry}/v2/{repo}/manifests/{tag}",
        auth=(user, password),
        headers={"Accept": MANIFEST_TYPES},
        timeout=10,
    )
    if r.status_code == 404:
        return None
    assert r.status_code == 200, f"HEAD manifest answered {r.status_code}"
    return r.headers["Docker-Content-Digest"]


def test_registry_wants_a_login(testbed: Mapping[str, str]) -> None:
    (registry,) = require(testbed, "PYSTEPS_REGISTRY")
    r = requests.get(f"http://{registry}/v2/", timeout=10)
    assert r.status_code == 401
    assert r.headers.get("WWW-Authenticate", "").startswith("Basic ")


def test_build_push_remove_pull_by_digest(
    testbed: Mapping[str, str], client: docker.DockerClient
) -> None:
    registry, user, password, base = require(
        testbed,
        "PYSTEPS_REGISTRY",
        "PYSTEPS_REGISTRY_USERNAME",
        "PYSTEPS_REGISTRY_PASSWORD",
        "TESTBED_BASE_IMAGE",
    )
    marker = uuid.uuid4().hex
    repo = f"{registry}/testbed/roundtrip"
    api = client.api

    errors, _ = _stream_errors(
        api.build(
            fileobj=_context(base, marker),
            custom_context=True,
            tag=f"{repo}:{marker}",
            rm=True,
            forcerm=True,
            decode=True,
        )
    )
    assert errors == []
    built = client.images.get(f"{repo}:{marker}")

    login = client.login(username=user, password=password, registry=registry, reauth=True)
    assert login.get("Status") == "Login Succeeded"
    errors, aux = _stream_errors(api.push(repo, tag=marker, stream=True, decode=True))
    assert errors == []
    pushed_digest = aux.get("Digest")
    assert pushed_digest and pushed_digest.startswith("sha256:")
    assert _remote_digest(registry, user, password, "testbed/roundtrip", marker) == pushed_digest

    client.images.remove(built.id, force=True)
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(f"{repo}:{marker}")

    pulled = client.images.pull(repo, tag=pushed_digest)
    assert pulled.id == built.id
    assert f"{repo}@{pushed_digest}" in pulled.attrs["RepoDigests"]
    out = client.containers.run(pulled.id, remove=True)
    assert out.decode().strip() == marker
    client.images.remove(pulled.id, force=True)  # the vfs driver stores full copies: keep it lean


def test_push_without_login_is_refused(
    testbed: Mapping[str, str], client: docker.DockerClient
) -> None:
    registry, user, password, base = require(
        testbed,
        "PYSTEPS_REGISTRY",
        "PYSTEPS_REGISTRY_USERNAME",
        "PYSTEPS_REGISTRY_PASSWORD",
        "TESTBED_BASE_IMAGE",
    )
    marker = uuid.uuid4().hex
    repo = f"{registry}/testbed/nologin"
    client.images.get(base).tag(repo, tag=marker)
    try:
        errors, _ = _stream_errors(client.api.push(repo, tag=marker, stream=True, decode=True))
    finally:
        client.images.remove(f"{repo}:{marker}")
    assert errors, "the registry accepted a push without credentials"
    assert any("auth" in e.lower() for e in errors), errors
    assert _remote_digest(registry, user, password, "testbed/nologin", marker) is None
