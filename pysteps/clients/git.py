"""The one git seam: the app's checkout and its commits.

`GitCheckout` runs the `git` program: which commit, is the checkout dirty, a clean export of
one commit (image mode builds from it, never from the working tree, so the image tagged with
a commit holds exactly that commit). `GitTrees` reads trees and blobs through gitpython for
code mode's incremental sync (pysteps.codesync). `changes_between` lists the commits a deploy
adds or takes away, for the deploy mail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pysteps.errors import InputError, PystepsError
from pysteps.names import is_commit

# Git tree entry modes.
MODE_FILE = 0o100644
MODE_EXECUTABLE = 0o100755
MODE_SYMLINK = 0o120000
MODE_SUBMODULE = 0o160000


@dataclass(frozen=True)
class TreeEntry:
    """One non-directory entry of a git tree."""

    mode: int
    sha: str

    @property
    def is_symlink(self) -> bool:
        return self.mode == MODE_SYMLINK


class GitTrees:
    """The few reads of a git repository that a code sync needs (gitpython: trees, blobs)."""

    def __init__(self, repo_path: Path) -> None:
        import git  # gitpython; imported here so the CLI's --help stays fast

        self._git = git
        try:
            self.repo = git.Repo(str(repo_path))
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise InputError(
                f"code repository {repo_path} is not a git repository: check the checkout path"
            ) from exc
        self._trees: dict[str, dict[str, TreeEntry]] = {}
        self._submodules: dict[str, list[str]] = {}

    def resolve(self, rev: str) -> str:
        """The full commit id of rev; InputError when the repository lacks it."""
        try:
            # rev-parse --verify checks that the object exists (repo.commit() does not).
            return str(self.repo.git.rev_parse("--verify", "--quiet", f"{rev}^{{commit}}"))
        except self._git.GitCommandError as exc:
            raise InputError(
                f"commit {rev!r} is not in repository {self.repo.working_dir}: "
                "fetch it or check the revision"
            ) from exc

    def has(self, commit: str) -> bool:
        try:
            self.resolve(commit)
        except InputError:
            return False
        return True

    def tree(self, commit: str) -> dict[str, TreeEntry]:
        """Every non-directory entry at commit (submodules are left out)."""
        if commit not in self._trees:
            # No -l: sizes would make git open every blob's header, which costs more than
            # the rest of an incremental update.
            raw = self.repo.git.ls_tree("-r", "-z", "--full-tree", commit, stdout_as_string=False)
            entries: dict[str, TreeEntry] = {}
            submodules: list[str] = []
            for record in bytes(raw).split(b"\0"):
                if not record:
                    continue
                meta, _, path_bytes = record.partition(b"\t")
                mode_text, kind, sha = meta.split()
                try:
                    path = path_bytes.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputError(
                        f"file name {path_bytes!r} at {commit[:12]} is not UTF-8: rename it"
                    ) from exc
                mode = int(mode_text, 8)
                if mode == MODE_SUBMODULE:
                    submodules.append(path)
                if kind != b"blob" or mode == MODE_SUBMODULE:
                    continue
                entries[path] = TreeEntry(mode=mode, sha=sha.decode())
            self._trees[commit] = entries
            self._submodules[commit] = submodules
        return self._trees[commit]

    def submodules(self, commit: str) -> list[str]:
        self.tree(commit)
        return self._submodules[commit]

    def blob(self, sha: str) -> bytes:
        return bytes(self.repo.odb.stream(bytes.fromhex(sha)).read())

    def close(self) -> None:
        self.repo.close()


class GitCheckout:
    """One checkout on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _git(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        try:
            return subprocess.run(
                ["git", "-C", str(self.path), *args],
                capture_output=True,
                check=False,
                env=env,
                stdin=subprocess.DEVNULL,
                timeout=300,
            )
        except FileNotFoundError:
            raise InputError("git is not installed: install it to deploy from a checkout") from None

    def resolve(self, commit: str | None) -> str:
        """The full commit id of COMMIT (a hex id) or of HEAD; InputError if there is none."""
        if commit and not is_commit(commit):
            raise InputError(f"--commit {commit!r}: give a hex commit id (7 to 40 characters)")
        ref = commit or "HEAD"
        out = self._git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if out.returncode == 0:
            return out.stdout.decode().strip()
        if commit and len(commit) == 40:
            return commit  # shipping a known commit without its checkout (e.g. code mode)
        raise InputError(
            f"--repo {self.path}: cannot resolve {ref} to a commit; run inside the app's git "
            "checkout or pass --repo and --commit"
        )

    def changes(self) -> list[str]:
        """Paths with uncommitted changes or untracked (not ignored) files; [] when clean."""
        out = self._git("status", "--porcelain", "-z", "--untracked-files=normal")
        if out.returncode != 0:
            return []
        return [e[3:] for e in out.stdout.decode(errors="replace").split("\0") if len(e) > 3]

    def export(self, commit: str, dest: Path) -> None:
        """Write the tree of COMMIT (and nothing else) into the empty directory DEST."""
        with tempfile.TemporaryFile() as archive:
            try:
                subprocess.run(
                    ["git", "-C", str(self.path), "archive", "--format=tar", commit],
                    stdout=archive,
                    stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                    check=True,
                )
            except subprocess.CalledProcessError as exc:
                why = exc.stderr.decode(errors="replace").strip().splitlines()
                raise InputError(
                    f"--repo {self.path}: cannot export commit {commit[:12]}: "
                    f"{why[-1] if why else 'git archive failed'}"
                ) from None
            archive.seek(0)
            with tarfile.open(fileobj=archive) as tar:
                members = _checked_members(tar.getmembers(), commit)
                if hasattr(tarfile, "fully_trusted_filter"):
                    # Checked above; links are kept as links (a build context may hold any).
                    tar.extractall(dest, members=members, filter="fully_trusted")
                else:  # pragma: no cover - Python before 3.9.17
                    tar.extractall(dest, members=members)


def _checked_members(members: list[tarfile.TarInfo], commit: str) -> list[tarfile.TarInfo]:
    """Regular files, directories and symlinks whose names stay inside the export.

    A symlink is written as a link (its target is not followed, wherever it points); no name
    may pass through a symlink, so nothing is ever written outside the export directory.
    """
    links: set[str] = set()
    for member in members:
        name = member.name.rstrip("/")
        parts = name.split("/")
        if name.startswith("/") or ".." in parts:
            raise InputError(f"commit {commit[:12]}: path {member.name!r} leaves the tree")
        if any("/".join(parts[:i]) in links for i in range(1, len(parts))):
            raise InputError(f"commit {commit[:12]}: path {member.name!r} passes a symlink")
        if member.issym():
            links.add(name)
        elif not (member.isfile() or member.isdir()):
            raise InputError(f"commit {commit[:12]}: {member.name!r} is not a file or directory")
    return members


def path_inside(root: Path, relative: str, field: str) -> Path:
    """ROOT/RELATIVE with symlinks resolved; InputError naming FIELD if it leaves ROOT."""
    base = root.resolve()
    path = (base / relative).resolve()
    if path != base and base not in path.parents:
        raise InputError(
            f"spec field {field!r}: leaves the checkout {root} (through a symlink); "
            "name a path inside the repository"
        )
    return path


@contextlib.contextmanager
def exported_commit(repo: Path, commit: str) -> Iterator[Path]:
    """A temporary directory holding exactly the tree of COMMIT; removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix=f"pysteps-{commit[:12]}-"))
    try:
        GitCheckout(repo).export(commit, tmp)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_FIELD, _RECORD = "\x1f", "\x1e"  # unit and record separators: never in a name or subject


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    author: str
    email: str
    date: str  # ISO 8601, the author's date
    subject: str

    @property
    def short(self) -> str:
        return self.sha[:12]


@dataclass(frozen=True)
class Changes:
    """The commits a deploy adds (and, when it goes back, takes away) against the live one."""

    since: str | None  # the commit that was live; None on a first deploy
    added: tuple[CommitInfo, ...] = ()
    removed: tuple[CommitInfo, ...] = ()
    more_added: int = 0  # left out beyond the limit
    more_removed: int = 0
    note: str | None = None  # why the list is incomplete or empty


class _GitFailed(Exception):
    pass


def _git(repo: Path, *args: str) -> str:
    """The output of one git command in REPO; _GitFailed instead of any error (mail never fails)."""
    try:
        out = GitCheckout(repo)._git(*args)
    except (PystepsError, OSError, subprocess.TimeoutExpired) as exc:
        raise _GitFailed(type(exc).__name__) from None
    if out.returncode != 0:
        raise _GitFailed(out.stderr.decode(errors="replace").strip()[:200])
    return out.stdout.decode("utf-8", errors="replace")


def changes_between(repo: Path, since: str | None, until: str, limit: int = 30) -> Changes:
    """The commits in UNTIL that SINCE lacks (newest first), from the checkout at REPO.

    Never raises: a missing checkout or commit is a note, since the mail must go out anyway.
    """
    try:
        for rev in (until, since):
            if rev is not None and not _exists(repo, rev):
                return Changes(
                    since, note=f"commit {rev[:12]} is not in this checkout (a shallow clone?)"
                )
        if since is None:
            return Changes(None, _log(repo, until, 1), note="first deploy of this app")
        if since == until:
            return Changes(since, note="same commit as the live one")
        added = _log(repo, f"{since}..{until}", limit)
        removed = _log(repo, f"{until}..{since}", limit)
        more_added = _count(repo, f"{since}..{until}") - limit if len(added) == limit else 0
        more_removed = _count(repo, f"{until}..{since}") - limit if len(removed) == limit else 0
        return Changes(since, added, removed, more_added, more_removed)
    except _GitFailed as exc:
        return Changes(since, note=f"git could not list the changes of {repo}: {exc}")


def _exists(repo: Path, rev: str) -> bool:
    try:
        _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except _GitFailed:
        return False
    return True


def _log(repo: Path, revs: str, limit: int) -> tuple[CommitInfo, ...]:
    fmt = _FIELD.join(("%H", "%an", "%ae", "%aI", "%s")) + _RECORD
    raw = _git(repo, "log", f"--max-count={limit}", f"--format={fmt}", revs, "--")
    out = []
    for record in raw.split(_RECORD):
        fields = record.strip("\n").split(_FIELD)
        if len(fields) == 5:
            out.append(CommitInfo(*fields))
    return tuple(out)


def _count(repo: Path, revs: str) -> int:
    return int(_git(repo, "rev-list", "--count", revs, "--").strip() or 0)
