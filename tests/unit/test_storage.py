"""The app directory keeps every name inside it; the in-memory fake behaves like the volume."""

from __future__ import annotations

import pytest

from pysteps.clients.storage import (
    GlusterStorage,
    PathEscapeError,
    clean_relpath,
    resolve_link_target,
    validate_app_path,
)
from pysteps.errors import InputError, ServiceError
from tests.unit.fakes import MemoryStorage


@pytest.mark.parametrize(
    ("rel", "cleaned"),
    [
        ("a", "a"),
        ("a/b/c.txt", "a/b/c.txt"),
        ("./a//b/./c", "a/b/c"),
        ("a/", "a"),
        ("..a/b..", "..a/b.."),
    ],
)
def test_clean_relpath_normalises(rel, cleaned):
    assert clean_relpath(rel) == cleaned


@pytest.mark.parametrize("rel", ["..", "../x", "a/../../x", "a/..", "/etc/passwd", "/", "a\0b"])
def test_clean_relpath_refuses_escapes(rel):
    with pytest.raises(PathEscapeError):
        clean_relpath(rel)


def test_path_escape_error_is_input_error():
    assert issubclass(PathEscapeError, InputError)


@pytest.mark.parametrize(
    ("link", "target", "resolved"),
    [
        ("a/link", "b", "a/b"),
        ("a/link", "../b", "b"),
        ("link", ".", ""),
        ("a/b/link", "../../c/d", "c/d"),
    ],
)
def test_link_targets_inside(link, target, resolved):
    assert resolve_link_target(link, target) == resolved


@pytest.mark.parametrize(
    ("link", "target"),
    [("link", ".."), ("a/link", "../.."), ("a/link", "../../x"), ("link", "/etc"), ("l", "")],
)
def test_link_targets_outside_are_refused(link, target):
    with pytest.raises(PathEscapeError):
        resolve_link_target(link, target)


@pytest.mark.parametrize("good", ["shop", "team/shop", "a", "a-1/b-2/c3", "x" * 63])
def test_app_paths_accepted(good):
    assert validate_app_path(good) == good


@pytest.mark.parametrize(
    "bad", ["", "Shop", "shop_", "-shop", "shop-", "/shop", "a/../b", "a//b", "a/b/c/d/e", "x" * 64]
)
def test_app_paths_refused_with_one_line(bad):
    with pytest.raises(InputError) as err:
        validate_app_path(bad)
    assert "\n" not in str(err.value)


@pytest.fixture()
def appdir():
    return MemoryStorage().app_dir("team/shop").ensure()


def test_write_read_list_delete(appdir):
    appdir.write_bytes("src/app.py", b"print(1)\n")
    appdir.write_bytes("bin/run", b"#!/bin/sh\n", mode=0o755)
    assert appdir.listdir() == ["bin", "src"]
    assert appdir.read_bytes("src/app.py") == b"print(1)\n"
    assert appdir.file_mode("bin/run") == 0o755
    assert appdir.files_written == 2
    assert appdir.bytes_written == len(b"print(1)\n") + len(b"#!/bin/sh\n")
    appdir.delete("src/app.py")
    assert not appdir.exists("src/app.py")
    with pytest.raises(OSError):
        appdir.delete("bin")
    appdir.delete("bin", recursive=True)
    assert appdir.listdir() == ["src"]


def test_write_replaces_with_a_new_file_and_never_changes_a_shared_one():
    storage = MemoryStorage()
    appdir = storage.app_dir("shop").ensure()
    appdir.write_bytes("r1/a.txt", b"one")
    appdir.makedirs("r2")
    appdir.link("r1/a.txt", "r2/a.txt")
    assert storage.same_file("shop", "r1/a.txt", "r2/a.txt")
    appdir.write_bytes("r2/a.txt", b"two")
    assert appdir.read_bytes("r1/a.txt") == b"one"
    assert appdir.read_bytes("r2/a.txt") == b"two"
    assert not storage.same_file("shop", "r1/a.txt", "r2/a.txt")
    assert appdir.listdir("r2") == ["a.txt"], "no temporary file is left behind"


def test_rename_and_replace_symlink(appdir):
    appdir.write_bytes("releases/one/x", b"1")
    appdir.write_bytes("releases/two/x", b"2")
    appdir.symlink("releases/one", "current")
    assert appdir.read_bytes("current/x") == b"1"
    appdir.replace_symlink("releases/two", "current")
    assert appdir.readlink("current") == "releases/two"
    assert appdir.read_bytes("current/x") == b"2"
    appdir.rename("releases/one", "releases/old")
    assert appdir.listdir("releases") == ["old", "two"]


@pytest.mark.parametrize(
    "call",
    [
        lambda d: d.write_bytes("../other/x", b""),
        lambda d: d.write_bytes("/abs", b""),
        lambda d: d.read_bytes("a/../../x"),
        lambda d: d.delete(".."),
        lambda d: d.rename("x", "../y"),
        lambda d: d.link("../../etc/passwd", "x"),
        lambda d: d.symlink("../../other-app", "escape"),
        lambda d: d.symlink("/etc", "escape"),
        lambda d: d.listdir("../"),
    ],
)
def test_every_operation_refuses_escapes(appdir, call):
    with pytest.raises(PathEscapeError):
        call(appdir)


def test_planted_links_pointing_out_are_not_followed():
    storage = MemoryStorage()
    other = storage.app_dir("other").ensure()
    other.write_bytes("secret", b"s3cret")
    appdir = storage.app_dir("shop").ensure()
    # As if someone wrote through a mount: links we would never create.
    appdir.backend.symlink("../other", "/shop/out")
    appdir.backend.symlink("/other", "/shop/abs")
    appdir.backend.symlink("loop", "/shop/loop")
    for rel in ("out/secret", "abs/secret"):
        with pytest.raises(PathEscapeError):
            appdir.read_bytes(rel)
        with pytest.raises(PathEscapeError):
            appdir.write_bytes(rel, b"x")
    with pytest.raises(PathEscapeError):
        appdir.read_bytes("loop/x")
    assert other.read_bytes("secret") == b"s3cret"
    # The link itself may still be removed or replaced.
    appdir.delete("out")
    assert not appdir.exists("out")


def test_app_directory_that_is_a_link_is_refused():
    storage = MemoryStorage()
    storage.app_dir("target").ensure()
    storage._backend.symlink("target", "/shop")
    with pytest.raises(PathEscapeError):
        storage.app_dir("shop").ensure()


def test_unreachable_memory_storage_raises_service_error(appdir):
    storage = MemoryStorage()
    d = storage.app_dir("shop")
    storage.reachable = False
    with pytest.raises(ServiceError):
        d.ensure()


def test_from_env_names_missing_variables():
    with pytest.raises(InputError) as err:
        GlusterStorage.from_env({"PYSTEPS_GLUSTER_HOST": "127.0.0.2"})
    assert "PYSTEPS_GLUSTER_VOLUME" in str(err.value)
    with pytest.raises(InputError) as err:
        GlusterStorage.from_env(
            {
                "PYSTEPS_GLUSTER_HOST": "h",
                "PYSTEPS_GLUSTER_VOLUME": "v",
                "PYSTEPS_GLUSTER_PORT": "x",
            }
        )
    assert "PYSTEPS_GLUSTER_PORT" in str(err.value)
    storage = GlusterStorage.from_env(
        {"PYSTEPS_GLUSTER_HOST": "127.0.0.2", "PYSTEPS_GLUSTER_VOLUME": "pysteps"}
    )
    assert (storage.host, storage.volume, storage.port) == ("127.0.0.2", "pysteps", 24007)
