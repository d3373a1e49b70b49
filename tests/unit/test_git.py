"""The git seam on a real throw-away repository: resolve, changes, a clean export of a commit."""

from __future__ import annotations

import os

import pytest

from pysteps.clients.git import GitCheckout, exported_commit
from pysteps.errors import InputError
from tests.gitrepo import GitRepo


def test_export_holds_exactly_the_commit_not_the_working_tree(tmp_path):
    repo = GitRepo(tmp_path / "app")
    repo.write("www/index.html", "v1\n")
    repo.symlink("/etc", "outside")  # a committed link may point anywhere: kept as a link
    first = repo.commit("v1")
    repo.write("www/index.html", "v2\n")
    second = repo.commit("v2")
    repo.write("www/index.html", "dirty\n")  # uncommitted
    (tmp_path / "app" / "untracked.txt").write_text("not committed\n")
    checkout = GitCheckout(tmp_path / "app")
    assert sorted(checkout.changes()) == ["untracked.txt", "www/index.html"]
    with exported_commit(tmp_path / "app", first) as tree:
        assert (tree / "www" / "index.html").read_text() == "v1\n"
        assert not (tree / "untracked.txt").exists()
        assert not (tree / ".git").exists()
        assert os.readlink(tree / "outside") == "/etc"
    with exported_commit(tmp_path / "app", second) as tree:
        assert (tree / "www" / "index.html").read_text() == "v2\n"
    assert not tree.exists()  # removed afterwards
    assert checkout.resolve(None) == second
    assert checkout.resolve(first[:10]) == first


def test_bad_commits_are_refused(tmp_path):
    repo = GitRepo(tmp_path / "app")
    repo.write("a", "a")
    repo.commit("a")
    checkout = GitCheckout(tmp_path / "app")
    with pytest.raises(InputError, match="give a hex commit id"):
        checkout.resolve("HEAD\n")
    with pytest.raises(InputError, match="cannot resolve"):
        checkout.resolve("deadbee")


def test_names_that_pass_a_symlink_are_refused():
    import tarfile

    from pysteps.clients.git import _checked_members

    link = tarfile.TarInfo("outside")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc"
    through = tarfile.TarInfo("outside/passwd")
    with pytest.raises(InputError, match="passes a symlink"):
        _checked_members([link, through], "c" * 40)
    with pytest.raises(InputError, match="leaves the tree"):
        _checked_members([tarfile.TarInfo("../x")], "c" * 40)
