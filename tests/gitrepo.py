"""A real throw-away git repository for code-sync tests, and a reader of trees on a volume."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pysteps.clients.storage import AppDirectory


class GitRepo:
    """A git repository in a temporary directory, changed file by file and committed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "test",
            "GIT_AUTHOR_EMAIL": "test@ci.test",
            "GIT_COMMITTER_NAME": "test",
            "GIT_COMMITTER_EMAIL": "test@ci.test",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(self.path),
        }
        out = subprocess.run(
            ["git", *args], cwd=self.path, env=env, check=True, capture_output=True, text=True
        )
        return out.stdout.strip()

    def write(self, rel: str, data: bytes | str, *, executable: bool = False) -> None:
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.is_symlink():
            p.unlink()
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        p.chmod(0o755 if executable else 0o644)

    def chmod(self, rel: str, *, executable: bool) -> None:
        (self.path / rel).chmod(0o755 if executable else 0o644)

    def symlink(self, target: str, rel: str) -> None:
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.exists() or p.is_symlink():
            p.unlink()
        p.symlink_to(target)

    def remove(self, rel: str) -> None:
        self.git("rm", "-q", "-r", rel)

    def rename(self, src: str, dst: str) -> None:
        (self.path / dst).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", src, dst)

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def snapshot(self, commit: str) -> dict[str, tuple[str, bytes]]:
        """Every file at commit: path -> (kind, content); kind is 'file', 'exec' or 'link'."""
        listing = self.git("ls-tree", "-r", "-z", "--full-tree", commit)
        result: dict[str, tuple[str, bytes]] = {}
        for record in listing.split("\0"):
            if not record:
                continue
            meta, path = record.split("\t", 1)
            mode, _, sha = meta.split()
            data = subprocess.run(
                ["git", "cat-file", "blob", sha], cwd=self.path, check=True, capture_output=True
            ).stdout
            kind = {"100644": "file", "100755": "exec", "120000": "link"}[mode]
            result[path] = (kind, data)
        return result


def volume_snapshot(
    appdir: AppDirectory, base: str, *, skip: tuple[str, ...] = (".pysteps-release.json",)
) -> dict[str, tuple[str, bytes]]:
    """The tree under base on the volume, in GitRepo.snapshot's form."""
    result: dict[str, tuple[str, bytes]] = {}
    for rel in appdir.walk_files(base):
        if rel in skip:
            continue
        path = f"{base}/{rel}"
        if appdir.kind(path) == "symlink":
            result[rel] = ("link", appdir.readlink(path).encode())
        else:
            kind = "exec" if appdir.file_mode(path) & 0o111 else "file"
            result[rel] = (kind, appdir.read_bytes(path))
    return result
