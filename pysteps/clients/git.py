"""Reading an app's git checkout through the `git` program: what changed between two commits."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

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
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            check=False,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
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
