"""Code mode's store: app directories on a GlusterFS volume, synced from git (pysteps.codesync).

The deploy engine sees only the small interface CodeService.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from pysteps import codesync
from pysteps.clients.storage import GlusterStorage


class CodeSyncLike(Protocol):
    @property
    def mode(self) -> str: ...

    @property
    def files_written(self) -> int: ...

    @property
    def bytes_written(self) -> int: ...


class CodeService(Protocol):
    """Code mode: what the deploy engine needs of a code store (GlusterCodeStore below)."""

    volume: str

    def deployed_commit(self, path: str) -> str | None: ...

    def sync(
        self,
        path: str,
        repo: Path,
        commit: str,
        keep: int,
        *,
        switch: bool = True,
        protect: Sequence[str] = (),
    ) -> CodeSyncLike: ...

    def switch(self, path: str, commit: str) -> None: ...

    def releases(self, path: str) -> list[str]: ...

    def purge(self, path: str) -> bool: ...


class GlusterCodeStore:
    """CodeService over one GlusterFS volume; mounted lazily, once per process."""

    def __init__(self, storage: GlusterStorage, log: Callable[[str], None] = print) -> None:
        self.storage = storage
        self.volume = storage.volume
        self.log = log

    @classmethod
    def from_env(cls, log: Callable[[str], None] = print) -> GlusterCodeStore:
        return cls(GlusterStorage.from_env(), log)

    def deployed_commit(self, path: str) -> str | None:
        return codesync.deployed_commit(self.storage.app_dir(path))

    def sync(
        self,
        path: str,
        repo: Path,
        commit: str,
        keep: int,
        *,
        switch: bool = True,
        protect: Sequence[str] = (),
    ) -> codesync.SyncResult:
        """Write release COMMIT (and point `current` at it when SWITCH); PROTECT: releases
        that pruning must keep (named by the workload's kept revisions)."""
        return codesync.sync_code(
            self.storage.app_dir(path),
            repo,
            commit,
            keep=keep,
            log=self.log,
            switch=switch,
            protect=protect,
        )

    def switch(self, path: str, commit: str) -> None:
        """Point `current` at a complete release (its record names COMMIT), or refuse."""
        codesync.switch_release(self.storage.app_dir(path), commit)

    def releases(self, path: str) -> list[str]:
        """Release commits, oldest first."""
        found = codesync.list_releases(self.storage.app_dir(path))
        return [r.commit for r in sorted(found, key=lambda r: r.seq)]

    def purge(self, path: str) -> bool:
        appdir = self.storage.app_dir(path)
        if not appdir.exists(""):
            return False
        codesync.purge(appdir)
        return True

    def close(self) -> None:
        self.storage.close()
