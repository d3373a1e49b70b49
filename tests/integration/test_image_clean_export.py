"""Image mode builds exactly the commit: a clean export, on the real Docker Engine and registry.

A checkout with two commits and uncommitted changes: `--commit` of the older one gives an image
holding that commit's content, never the working tree's (which once shipped under the tag of
a commit it did not hold).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path

import docker
import pytest

from pysteps.clients.images import ImageBuilder, RegistryAuth
from tests.conftest import require
from tests.gitrepo import GitRepo

pytestmark = pytest.mark.integration


@pytest.fixture()
def engine(
    testbed: Mapping[str, str], tmp_path: Path, monkeypatch
) -> Iterator[docker.DockerClient]:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    client = docker.DockerClient(base_url=require(testbed, "DOCKER_HOST")[0], version="auto")
    try:
        yield client
    finally:
        client.close()


def run_cat(engine: docker.DockerClient, image: str, path: str) -> str:
    return engine.containers.run(image, ["cat", path], remove=True).decode()


def test_the_image_holds_the_commit_not_the_working_tree(testbed, engine, tmp_path):
    registry, user, password, base = require(
        testbed,
        "PYSTEPS_REGISTRY",
        "PYSTEPS_REGISTRY_USERNAME",
        "PYSTEPS_REGISTRY_PASSWORD",
        "TESTBED_BASE_IMAGE",
    )
    auth = RegistryAuth(registry, user, password)
    repository = f"{auth.host}/ei-export/app-{secrets.token_hex(4)}"
    repo = GitRepo(tmp_path / "app")
    repo.write("Dockerfile", f"FROM {base}\nCOPY www/ /www/\n")
    repo.write("www/index.html", "committed one\n")
    first = repo.commit("one")
    repo.write("www/index.html", "committed two\n")
    repo.commit("two")
    repo.write("www/index.html", "uncommitted\n")  # a dirty tree
    (tmp_path / "app" / "www" / "extra.html").write_text("untracked\n")
    log: list[str] = []
    builder = ImageBuilder(auth, docker_host=require(testbed, "DOCKER_HOST")[0], log=log.append)
    try:
        built = builder.ensure_commit_image(
            checkout=tmp_path / "app",
            context=".",
            dockerfile="Dockerfile",
            repository=repository,
            commit=first,
        )
        assert built.built and built.tag == first
        assert run_cat(engine, built.reference, "/www/index.html") == "committed one\n"
        with pytest.raises(docker.errors.ContainerError):
            run_cat(engine, built.reference, "/www/extra.html")
        warnings = [line for line in log if line.startswith("warning:")]
        assert len(warnings) == 1 and "uncommitted change(s)" in warnings[0]
        assert first[:12] in warnings[0]
    finally:
        for image in engine.images.list(name=repository):
            engine.images.remove(image.id, force=True)
