"""Code sync decisions (pure) and whole syncs on the in-memory volume with a real git repo."""

from __future__ import annotations

import pytest

from pysteps import codesync
from pysteps.clients.git import MODE_EXECUTABLE, MODE_FILE, MODE_SYMLINK, TreeEntry
from pysteps.clients.storage import PathEscapeError
from pysteps.codesync import plan_build, summarize_changes
from pysteps.errors import InputError
from tests.gitrepo import GitRepo, volume_snapshot
from tests.unit.fakes import MemoryStorage


def f(sha: str, mode: int = MODE_FILE) -> TreeEntry:
    return TreeEntry(mode=mode, sha=sha)


# -- pure decisions ----------------------------------------------------------------------------


def test_summary_counts_each_kind_of_change():
    old = {"a": f("1"), "b": f("2"), "c": f("3"), "d": f("4"), "run": f("5")}
    new = {"a": f("1"), "b": f("9"), "moved/c": f("3"), "e": f("6"), "run": f("5", MODE_EXECUTABLE)}
    s = summarize_changes(old, new)
    assert (s.added, s.modified, s.deleted, s.renamed, s.mode_changed) == (1, 2, 1, 1, 1)


@pytest.mark.parametrize(
    ("base", "target", "reference", "expect"),
    [
        # first deploy: everything written, directories created shallowest first
        (
            {},
            {"a/b/x": f("1"), "y": f("2")},
            {},
            {"mkdirs": ("a", "a/b"), "writes": ("a/b/x", "y"), "links": ()},
        ),
        # new release beside the current one: unchanged linked, changed written
        (
            {},
            {"x": f("1"), "y": f("9")},
            {"x": f("1"), "y": f("2")},
            {"links": (("x", "x"),), "writes": ("y",), "deletes": ()},
        ),
        # a rename is a link from the old name: no data written
        (
            {},
            {"new/name": f("1")},
            {"old/name": f("1")},
            {"links": (("old/name", "new/name"),), "writes": (), "mkdirs": ("new",)},
        ),
        # a mode change is a new file: chmod would change the file every release shares
        (
            {},
            {"run": f("1", MODE_EXECUTABLE)},
            {"run": f("1")},
            {"links": (), "writes": ("run",)},
        ),
        # recycling an old release: what it has right stays, the rest is deleted and replaced
        (
            {"same": f("1"), "old": f("2"), "gone/dir/z": f("3"), "changed": f("4")},
            {"same": f("1"), "changed": f("5"), "cur": f("6"), "fresh": f("7")},
            {"same": f("1"), "cur": f("6")},
            {
                "deletes": ("changed", "gone/dir/z", "old"),
                "rmdirs": ("gone/dir", "gone"),
                "links": (("cur", "cur"),),
                "writes": ("changed", "fresh"),
            },
        ),
        # a file becomes a directory and a directory a file
        (
            {"p": f("1"), "q/inner": f("2")},
            {"p/inner": f("1"), "q": f("2")},
            {},
            {
                "deletes": ("p", "q/inner"),
                "rmdirs": ("q",),
                "mkdirs": ("p",),
                "writes": ("p/inner", "q"),
            },
        ),
        # symbolic links are always created, never linked
        (
            {},
            {"l": f("9", MODE_SYMLINK)},
            {"l": f("9", MODE_SYMLINK)},
            {"symlinks": ("l",), "links": ()},
        ),
    ],
)
def test_plan_build(base, target, reference, expect):
    plan = plan_build(base, target, reference)
    for field, value in expect.items():
        assert getattr(plan, field) == value, field


# -- whole syncs on the in-memory volume ---------------------------------------------------------


@pytest.fixture()
def repo(tmp_path):
    r = GitRepo(tmp_path / "repo")
    r.write("app/main.py", "print('v1')\n")
    r.write("app/util.py", "X = 1\n")
    r.write("app/old.py", "OLD = 1\n")
    r.write("bin/start", "#!/bin/sh\nexec python app/main.py\n", executable=True)
    r.write("README", "readme\n")
    r.symlink("app/main.py", "main-link.py")
    return r


def sync(appdir, repo, commit, **kw):
    lines: list[str] = []
    res = codesync.sync_code(appdir, repo.path, commit, log=lines.append, **kw)
    return res, lines


def test_first_deploy_is_a_full_copy_and_says_so(repo):
    c1 = repo.commit("v1")
    appdir = MemoryStorage().app_dir("shop")
    res, lines = sync(appdir, repo, c1)
    assert res.mode == "full"
    assert res.fallback_reason and "first deploy" in res.fallback_reason
    assert any("full copy" in line for line in lines)
    assert res.files_written == 6, "five files and a symbolic link"
    assert codesync.deployed_commit(appdir) == c1
    assert volume_snapshot(appdir, "current") == repo.snapshot(c1)
    assert appdir.readlink("current") == f"releases/{c1}"


def test_incremental_update_writes_only_what_changed(repo):
    c1 = repo.commit("v1")
    storage = MemoryStorage()
    appdir = storage.app_dir("shop")
    sync(appdir, repo, c1)
    new_main = "print('v2')\n"
    repo.write("app/main.py", new_main)
    repo.remove("app/old.py")
    repo.rename("app/util.py", "lib/util.py")
    repo.chmod("README", executable=True)
    repo.write("app/added.py", "NEW = 2\n")
    repo.symlink("lib/util.py", "main-link.py")
    c2 = repo.commit("v2")

    res, lines = sync(appdir, repo, c2)
    assert res.mode == "incremental" and res.fallback_reason is None
    assert res.previous_commit == c1
    # main.py, added.py, README (mode) written, the link re-pointed; util.py linked under its
    # new name.
    assert res.files_written == 4
    assert res.files_deleted == 1
    assert res.files_linked == 2  # bin/start and lib/util.py
    assert volume_snapshot(appdir, "current") == repo.snapshot(c2)
    assert volume_snapshot(appdir, f"releases/{c1}") == repo.snapshot(c1)
    assert storage.same_file("shop", f"releases/{c1}/bin/start", f"releases/{c2}/bin/start")
    assert storage.same_file("shop", f"releases/{c1}/app/util.py", f"releases/{c2}/lib/util.py")
    summary = next(line for line in lines if "incremental" in line)
    assert "1 deleted" in summary and "1 renamed" in summary and "1 added" in summary


def test_sync_to_the_deployed_commit_changes_nothing(repo):
    c1 = repo.commit("v1")
    appdir = MemoryStorage().app_dir("shop")
    sync(appdir, repo, c1)
    ops = appdir.ops
    res, _ = sync(appdir, repo, c1)
    assert res.mode == "unchanged"
    assert res.files_written == 0 and res.bytes_written == 0
    assert appdir.kind(f"releases/{c1}") == "dir"
    assert appdir.ops - ops < 20, "a no-op reads a little and writes nothing"


def test_releases_are_recycled_and_pruned_beyond_keep(repo):
    appdir = MemoryStorage().app_dir("shop")
    commits = []
    for i in range(5):
        repo.write("app/main.py", f"print({i})\n")
        repo.write(f"app/v{i}.py", f"V = {i}\n")
        commits.append(repo.commit(f"v{i}"))
        res, lines = sync(appdir, repo, commits[-1], keep=3, grace_seconds=0)
        assert volume_snapshot(appdir, "current") == repo.snapshot(commits[-1])
        if i >= 3:
            assert any("recycling release" in line for line in lines), lines
            assert res.files_written == 2
    releases = codesync.list_releases(appdir)
    assert [r.commit for r in releases] == commits[-3:]
    assert [r.current for r in releases] == [False, False, True]
    for r in releases:
        assert volume_snapshot(appdir, r.path) == repo.snapshot(r.commit)


def test_recently_retired_releases_are_neither_recycled_nor_pruned(repo):
    appdir = MemoryStorage().app_dir("shop")
    commits = []
    for i in range(4):
        repo.write("app/main.py", f"print({i})\n")
        commits.append(repo.commit(f"v{i}"))
        res, lines = sync(appdir, repo, commits[-1], keep=2, grace_seconds=60)
        assert volume_snapshot(appdir, "current") == repo.snapshot(commits[-1])
    assert not any("recycling release" in line for line in lines)
    assert any("left for a later sync" in line for line in lines)
    assert [r.commit for r in codesync.list_releases(appdir)] == commits
    retired = [r for r in codesync.list_releases(appdir) if not r.current]
    assert all(r.retired_at for r in retired)
    # Once the grace period is over, the next sync recycles and prunes.
    repo.write("app/main.py", "print('late')\n")
    late = repo.commit("late")
    res, lines = sync(appdir, repo, late, keep=2, grace_seconds=0)
    assert res.files_written == 1
    assert any("recycling release" in line for line in lines)
    assert [r.commit for r in codesync.list_releases(appdir)] == [commits[-1], late]


def test_rollback_switches_in_one_step_and_the_next_deploy_still_works(repo):
    appdir = MemoryStorage().app_dir("shop")
    c1 = repo.commit("v1")
    sync(appdir, repo, c1)
    repo.write("app/main.py", "print('v2')\n")
    c2 = repo.commit("v2")
    sync(appdir, repo, c2)
    prev = codesync.previous_release(appdir)
    assert prev is not None and prev.commit == c1
    codesync.switch_release(appdir, c1[:10])
    assert codesync.deployed_commit(appdir) == c1
    assert volume_snapshot(appdir, "current") == repo.snapshot(c1)
    with pytest.raises(InputError):
        codesync.switch_release(appdir, "deadbeef")
    repo.write("app/main.py", "print('v3')\n")
    c3 = repo.commit("v3")
    res, _ = sync(appdir, repo, c3, keep=2, grace_seconds=0)
    assert res.previous_commit == c1
    assert volume_snapshot(appdir, "current") == repo.snapshot(c3)
    assert [r.commit for r in codesync.list_releases(appdir)] == [c1, c3]


def test_redeploying_a_kept_release_only_switches(repo):
    appdir = MemoryStorage().app_dir("shop")
    c1 = repo.commit("v1")
    repo.write("app/main.py", "print('v2')\n")
    c2 = repo.commit("v2")
    sync(appdir, repo, c1)
    sync(appdir, repo, c2)
    res, lines = sync(appdir, repo, c1)
    assert res.files_written == 0
    assert codesync.deployed_commit(appdir) == c1
    assert any("still on the volume" in line for line in lines)


def test_unknown_deployed_commit_falls_back_to_full_copy(repo, tmp_path):
    appdir = MemoryStorage().app_dir("shop")
    c1 = repo.commit("v1")
    sync(appdir, repo, c1)
    other = GitRepo(tmp_path / "rewritten")
    other.write("app/main.py", "print('rewritten')\n")
    c9 = other.commit("history rewritten")
    res, lines = sync(appdir, other, c9)
    assert res.mode == "full"
    assert res.fallback_reason and c1[:12] in res.fallback_reason
    assert any("full copy" in line and "not in the repository" in line for line in lines)
    assert volume_snapshot(appdir, "current") == other.snapshot(c9)


def test_symlink_leading_out_of_the_repo_is_refused_before_writing(repo):
    repo.symlink("../../etc/passwd", "app/escape")
    c1 = repo.commit("bad link")
    appdir = MemoryStorage().app_dir("shop")
    with pytest.raises(PathEscapeError) as err:
        sync(appdir, repo, c1)
    assert "app/escape" in str(err.value)
    assert codesync.deployed_commit(appdir) is None
    assert appdir.listdir("releases") == []


def test_bad_inputs_are_one_line_input_errors(repo, tmp_path):
    c1 = repo.commit("v1")
    appdir = MemoryStorage().app_dir("shop")
    with pytest.raises(InputError, match="keep"):
        sync(appdir, repo, c1, keep=1)
    with pytest.raises(InputError, match="not in repository"):
        sync(appdir, repo, "0" * 40)
    with pytest.raises(InputError, match="not a git repository"):
        codesync.sync_code(appdir, tmp_path / "nothing", c1, log=lambda _: None)


def test_leftover_of_an_interrupted_sync_is_removed(repo):
    appdir = MemoryStorage().app_dir("shop")
    c1 = repo.commit("v1")
    appdir.ensure()
    appdir.write_bytes("releases/.building-abc-123/half", b"x")
    res, lines = sync(appdir, repo, c1)
    assert any("interrupted" in line for line in lines)
    assert appdir.listdir("releases") == [c1]
    assert res.mode == "full"


def test_purge_removes_everything(repo):
    appdir = MemoryStorage().app_dir("shop")
    sync(appdir, repo, repo.commit("v1"))
    codesync.purge(appdir)
    assert not appdir.backend.kind("/shop")
    assert codesync.deployed_commit(appdir) is None


def test_release_without_retired_mark_counts_as_retired_when_the_next_was_deployed(repo):
    appdir = MemoryStorage().app_dir("shop")
    c1 = repo.commit("v1")
    repo.write("app/main.py", "print('v2')\n")
    c2 = repo.commit("v2")
    sync(appdir, repo, c1)
    sync(appdir, repo, c2)
    appdir.delete(f"releases/{c1}.retired")
    old, new = codesync.list_releases(appdir)
    assert old.retired_at == new.deployed_at


def test_release_is_written_without_moving_current(repo):
    # Pinned apps: pods mount their own release; `current` moves only after the rollout.
    appdir = MemoryStorage().app_dir("shop")
    c1 = repo.commit("v1")
    sync(appdir, repo, c1)
    repo.write("app/main.py", "print('v2')\n")
    c2 = repo.commit("v2")
    res, _ = sync(appdir, repo, c2, switch=False)
    assert res.mode == "incremental"
    assert codesync.deployed_commit(appdir) == c1
    assert volume_snapshot(appdir, "current") == repo.snapshot(c1)
    assert volume_snapshot(appdir, f"releases/{c2}") == repo.snapshot(c2)
    codesync.switch_release(appdir, c2)
    assert codesync.deployed_commit(appdir) == c2


def test_releases_the_workload_still_names_are_never_pruned_or_recycled(repo):
    appdir = MemoryStorage().app_dir("shop")
    commits = []
    for i in range(5):
        repo.write("app/main.py", f"print({i})\n")
        commits.append(repo.commit(f"v{i}"))
        sync(appdir, repo, commits[-1], keep=2, grace_seconds=0, protect=[commits[0]])
    kept = [r.commit for r in codesync.list_releases(appdir)]
    assert kept == [commits[0], commits[4]]  # protected counts towards keep, and stays
    assert volume_snapshot(appdir, f"releases/{commits[0]}") == repo.snapshot(commits[0])
