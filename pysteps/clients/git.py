"""Reading an app's git checkout: what changed between two commits (gitpython)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
    errors: tuple[str, ...] = field(default_factory=tuple)


def changes_between(repo: Path, since: str | None, until: str, limit: int = 30) -> Changes:
    """The commits in UNTIL that SINCE lacks (newest first), from the checkout at REPO.

    Never raises: a missing checkout or commit is a note, since the mail must go out anyway.
    """
    try:
        import git  # gitpython; lazy so `pysteps --help` stays fast
    except ImportError:  # pragma: no cover - a dependency of the package
        return Changes(since, note="gitpython is not installed")
    try:
        handle = git.Repo(str(repo))
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return Changes(since, note=f"{repo} is not a git checkout; the change list is unknown")
    try:
        return _changes(handle, since, until, limit)
    except (git.GitCommandError, ValueError) as exc:
        return Changes(since, note=f"git could not list the changes: {type(exc).__name__}")
    finally:
        handle.close()


def _changes(handle: Any, since: str | None, until: str, limit: int) -> Changes:
    for rev in (until, since):
        if rev is not None and not _exists(handle, rev):
            return Changes(
                since, note=f"commit {rev[:12]} is not in this checkout (a shallow clone?)"
            )
    if since is None:
        return Changes(None, _commits(handle, until, None, 1), note="first deploy of this app")
    if since == until:
        return Changes(since, note="same commit as the live one")
    added = _commits(handle, until, since, limit + 1)
    removed = _commits(handle, since, until, limit + 1)
    more_added = _count(handle, until, since) - limit if len(added) > limit else 0
    more_removed = _count(handle, since, until) - limit if len(removed) > limit else 0
    return Changes(since, added[:limit], removed[:limit], more_added, more_removed)


def _exists(handle: Any, rev: str) -> bool:
    import git

    try:
        handle.git.rev_parse("--verify", "--quiet", f"{rev}^{{commit}}")
    except git.GitCommandError:
        return False
    return True


def _commits(handle: Any, until: str, since: str | None, limit: int) -> tuple[CommitInfo, ...]:
    rev = f"{since}..{until}" if since else until
    out = []
    for c in handle.iter_commits(rev, max_count=limit):
        out.append(
            CommitInfo(
                sha=c.hexsha,
                author=str(c.author.name),
                email=str(c.author.email),
                date=c.authored_datetime.isoformat(),
                subject=str(c.summary),
            )
        )
    return tuple(out)


def _count(handle: Any, until: str, since: str) -> int:
    return int(handle.git.rev_list("--count", f"{since}..{until}"))
