"""Code mode on the real GlusterFS volume: releases, incremental updates, rollback, readers."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import traceback
import uuid
from pathlib import Path

import pytest

from pysteps import codesync
from pysteps.clients.storage import GlusterStorage, PathEscapeError
from pysteps.errors import ServiceError
from tests.conftest import require
from tests.gitrepo import GitRepo, volume_snapshot

pytestmark = pytest.mark.integration


@pytest.fixture()
def storage(testbed):
    host, volume = require(testbed, "PYSTEPS_GLUSTER_HOST", "PYSTEPS_GLUSTER_VOLUME")
    with GlusterStorage(host, volume) as s:
        yield s


@pytest.fixture()
def appdir(storage):
    d = storage.app_dir(f"it-{uuid.uuid4().hex[:12]}")
    yield d
    codesync.purge(d)


@pytest.fixture()
def repo(tmp_path):
    r = GitRepo(tmp_path / "repo")
    for i in range(12):
        r.write(f"app/mod{i}.py", f"N = {i}\n" * 50)
    r.write("bin/start", "#!/bin/sh\nexec python -m app\n", executable=True)
    r.write("conf/settings.ini", "[app]\nmode = prod\n")
    r.symlink("conf/settings.ini", "settings.ini")
    return r


def inode(storage, appdir, rel):
    return storage._mounted_volume().lstat(f"{appdir.root}/{rel}").st_ino


def test_first_deploy_then_incremental_update_with_deletes_renames_and_modes(storage, appdir, repo):
    c1 = repo.commit("v1")
    first = codesync.sync_code(appdir, repo.path, c1, log=lambda _: None)
    assert first.mode == "full" and "first deploy" in (first.fallback_reason or "")
    assert volume_snapshot(appdir, "current") == repo.snapshot(c1)

    repo.write("app/mod0.py", "N = 'changed'\n")
    repo.remove("app/mod1.py")
    repo.rename("app/mod2.py", "lib/mod2.py")
    repo.chmod("conf/settings.ini", executable=True)
    repo.symlink("bin/start", "settings.ini")
    repo.write("app/new.py", "NEW = True\n")
    c2 = repo.commit("v2")
    lines: list[str] = []
    res = codesync.sync_code(appdir, repo.path, c2, log=lines.append)

    assert res.mode == "incremental" and res.previous_commit == c1
    assert res.files_deleted == 1
    # mod0, new, settings.ini (mode) written; the link re-created; the rest hard-linked.
    assert res.files_written == 4
    changed = len(b"N = 'changed'\n") + len(b"NEW = True\n") + len(b"[app]\nmode = prod\n")
    assert res.bytes_written < changed + 1000, "changed files, manifest and links only"
    assert volume_snapshot(appdir, "current") == repo.snapshot(c2)
    assert volume_snapshot(appdir, f"releases/{c1}") == repo.snapshot(c1), "old one intact"
    assert inode(storage, appdir, f"releases/{c1}/app/mod5.py") == inode(
        storage, appdir, f"releases/{c2}/app/mod5.py"
    ), "an unchanged file is shared, not copied"
    assert inode(storage, appdir, f"releases/{c1}/app/mod2.py") == inode(
        storage, appdir, f"releases/{c2}/lib/mod2.py"
    ), "a renamed file is shared under its new name"
    assert any("1 renamed" in line and "1 deleted" in line for line in lines)


def test_rollback_and_recycling_on_the_volume(appdir, repo):
    commits = []
    for i in range(4):
        repo.write("app/mod0.py", f"N = {i}\n")
        commits.append(repo.commit(f"v{i}"))
        codesync.sync_code(
            appdir, repo.path, commits[-1], keep=3, grace_seconds=0, log=lambda _: None
        )
    assert [r.commit for r in codesync.list_releases(appdir)] == commits[1:]
    for r in codesync.list_releases(appdir):
        assert volume_snapshot(appdir, r.path) == repo.snapshot(r.commit)

    codesync.switch_release(appdir, commits[2])
    assert codesync.deployed_commit(appdir) == commits[2]
    assert volume_snapshot(appdir, "current") == repo.snapshot(commits[2])
    res = codesync.sync_code(appdir, repo.path, commits[2], log=lambda _: None)
    assert res.mode == "unchanged" and res.bytes_written == 0


@pytest.fixture(scope="module")
def fuse_mount(testbed, tmp_path_factory):
    """The volume mounted as every node mounts it (/mnt/<volume>), for pod-like readers."""
    host, volume = require(testbed, "PYSTEPS_GLUSTER_HOST", "PYSTEPS_GLUSTER_VOLUME")
    mnt = tmp_path_factory.mktemp("mnt") / volume
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "glusterfs", f"{host}:/{volume}", str(mnt)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount {host}:/{volume} with FUSE: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False, timeout=60)


def fuse_snapshot(root: Path) -> dict[str, tuple[str, bytes]]:
    """The tree under root through the kernel, in GitRepo.snapshot's form."""
    result: dict[str, tuple[str, bytes]] = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if rel == codesync.MANIFEST:
                continue
            if path.is_symlink():
                result[rel] = ("link", os.readlink(path).encode())
            else:
                kind = "exec" if path.stat().st_mode & 0o111 else "file"
                result[rel] = (kind, path.read_bytes())
    return result


@pytest.mark.parametrize("reader_kind", ["gfapi", "fuse"])
@pytest.mark.parametrize(
    ("grace", "pause", "recycles"),
    [
        # Deploys in quick succession: every release is built new beside the current one.
        (300.0, 0.3, False),
        # Deploys further apart than the grace period: old releases are recycled and pruned
        # while the reader runs; the readers' caches (1 s) have expired by then.
        (2.0, 2.3, True),
    ],
    ids=["new-releases", "recycled-releases"],
)
def test_reader_polling_during_updates_never_sees_a_mix(
    testbed, request, appdir, repo, grace, pause, recycles, reader_kind
):
    """A reader that resolves `current` once per read sees exactly one complete release.

    The gfapi reader is another client of the volume; the FUSE reader reads a kernel mount of
    the volume, as pods do through their hostPath.
    """
    commits = [repo.commit("v0")]
    for i in range(1, 6):
        # Every release changes some files, so a mix of two is detectable.
        for j in range(0, 12, 2):
            repo.write(f"app/mod{(j + i) % 12}.py", f"N = {j}\nRELEASE = {i}\n")
        repo.write(f"app/only{i}.py", f"ONLY = {i}\n")
        if i > 1:
            repo.remove(f"app/only{i - 1}.py")
        commits.append(repo.commit(f"v{i}"))
    expected = {c: repo.snapshot(c) for c in commits}
    lines: list[str] = []

    def sync(commit: str) -> None:
        codesync.sync_code(appdir, repo.path, commit, keep=3, grace_seconds=grace, log=lines.append)

    sync(commits[0])

    host, volume = require(testbed, "PYSTEPS_GLUSTER_HOST", "PYSTEPS_GLUSTER_VOLUME")
    seen: list[str] = []
    problems: list[str] = []
    stop = threading.Event()

    def check(release: str, got: dict[str, tuple[str, bytes]]) -> None:
        matches = [c for c, snap in expected.items() if snap == got]
        if len(matches) != 1:
            problems.append(f"{release}: read set matches {len(matches)} releases")
        elif release != f"releases/{matches[0]}":
            problems.append(f"{release} holds the files of {matches[0]}")
        else:
            seen.append(matches[0])

    def gfapi_reader() -> None:
        with GlusterStorage(host, volume) as other:
            d = other.app_dir(appdir.app_path)
            while not stop.is_set():
                try:
                    release = d.readlink("current")
                    got = volume_snapshot(d, release)
                except Exception as exc:
                    problems.append(f"read failed: {exc!r} {traceback.format_exc()[-800:]}")
                    continue
                check(release, got)

    def fuse_reader() -> None:
        app_root = request.getfixturevalue("fuse_mount") / appdir.app_path
        while not stop.is_set():
            try:
                release = os.readlink(app_root / "current")
                got = fuse_snapshot(app_root / release)
            except Exception as exc:
                problems.append(f"read failed: {exc!r} {traceback.format_exc()[-800:]}")
                continue
            check(release, got)

    if reader_kind == "fuse":
        request.getfixturevalue("fuse_mount")
    thread = threading.Thread(target=gfapi_reader if reader_kind == "gfapi" else fuse_reader)
    thread.start()
    try:
        time.sleep(0.3)
        for c in commits[1:]:
            sync(c)
            # Give the reader the time to see this release before the next switch: on a loaded
            # machine one read through FUSE can take longer than the pause between deploys.
            deadline = time.monotonic() + 15
            while not (seen and seen[-1] == c) and not problems and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(pause)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not problems, problems[:5]
    assert len(seen) >= 10
    assert len(set(seen)) >= 3, "the reader saw the switches happen"
    assert codesync.deployed_commit(appdir) == commits[-1]
    assert any("recycling release" in line for line in lines) == recycles, lines
    if recycles:
        assert len(codesync.list_releases(appdir)) == 3


def test_path_escapes_are_refused_on_the_volume(storage, appdir, repo):
    appdir.ensure()
    vol = storage._mounted_volume()
    neighbour = storage.app_dir(f"{appdir.app_path}-neighbour").ensure()
    try:
        neighbour.write_bytes("secret", b"s3cret")
        # Planted as if through a mount: a link out of the app directory.
        vol.symlink(f"../{neighbour.app_path}", f"{appdir.root}/out")
        with pytest.raises(PathEscapeError):
            appdir.read_bytes("out/secret")
        with pytest.raises(PathEscapeError):
            appdir.write_bytes("out/secret", b"overwritten")
        with pytest.raises(PathEscapeError):
            appdir.write_bytes(f"../{neighbour.app_path}/secret", b"overwritten")
        with pytest.raises(PathEscapeError):
            appdir.symlink("/etc", "abs")
        assert neighbour.read_bytes("secret") == b"s3cret"

        repo.symlink("../../../etc", "app/escape")
        bad = repo.commit("escaping link")
        with pytest.raises(PathEscapeError, match="app/escape"):
            codesync.sync_code(appdir, repo.path, bad, log=lambda _: None)
        assert codesync.deployed_commit(appdir) is None
    finally:
        neighbour.purge()


@pytest.mark.parametrize(("volume", "port"), [("no-such-volume", None), (None, 1)])
def test_unreachable_volume_gives_a_clear_error(testbed, tmp_path, volume, port):
    host, real_volume = require(testbed, "PYSTEPS_GLUSTER_HOST", "PYSTEPS_GLUSTER_VOLUME")
    repo = GitRepo(tmp_path / "r")
    repo.write("a", "a")
    c = repo.commit()
    storage = GlusterStorage(host, volume or real_volume, port=port or 24007)
    with storage, pytest.raises(ServiceError) as err:
        codesync.sync_code(storage.app_dir("shop"), repo.path, c, log=lambda _: None)
    message = str(err.value)
    assert "\n" not in message
    assert (volume or real_volume) in message and host in message
    assert "gluster volume status" in message


def test_protected_releases_survive_keep_on_the_volume(appdir, repo):
    """Releases named by the workload's kept revisions stay, whatever keep says."""
    commits = []
    for i in range(4):
        repo.write("app/mod0.py", f"N = {i}\n")
        commits.append(repo.commit(f"v{i}"))
        codesync.sync_code(
            appdir,
            repo.path,
            commits[-1],
            keep=2,
            grace_seconds=0,
            log=lambda _: None,
            switch=i < 3,  # the last one written beside the others, `current` left alone
            protect=[commits[0]],
        )
    assert [r.commit for r in codesync.list_releases(appdir)] == [
        commits[0],
        commits[2],
        commits[3],
    ]
    assert codesync.deployed_commit(appdir) == commits[2]
    for r in codesync.list_releases(appdir):
        assert volume_snapshot(appdir, r.path) == repo.snapshot(r.commit)
