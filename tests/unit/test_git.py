"""The git seam on a real throw-away repository: resolve, changes, a clean export of a commit."""

from __future__ import annotations

import pytest

from pysteps.clients.git import GitCheckout, exported_commit
from pysteps.errors import InputError
from tests.gitrepo import GitRepo


def test_export_holds_exactly_the_commit_not_the_working_tree(tmp_path):
    repo = GitRepo(tmp_path / "app")
    repo.write("www/index.html", "v1\n")
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
