"""Code mode: an app's code, from git, as releases on the shared volume.

Layout of an app directory::

    current -> releases/<commit>        relative link; replaced in one rename to switch
    releases/<commit>/...               one complete tree per release, never changed in place
    releases/<commit>/.pysteps-release.json   commit, time, file count, sequence number
    releases/<commit>.retired           when that release stopped being current
    releases/<commit>.pointer           the `current` link that pointed at it (hard link)
    releases/.building-<commit>-<x>/    a release being built; nothing points at it

Updates write only what changed. A new release is built beside the current one from hard
links to the current release's unchanged files (no data written) plus the changed files.
Once the app has ``keep`` releases, the oldest one (which pruning would delete anyway) is
recycled instead: renamed to the building name and brought to the new commit, so an update
costs operations in proportion to the changes, not to the size of the tree. A release is
recycled or deleted only once it has been retired (not current) for a grace period: readers'
caches and pods not yet restarted may still use it for a while. Files are never
changed in place (a changed file is a new file), so releases that share a file by a hard link
never see each other's changes.

Pinned apps (code.restart: rolling) mount ``releases/<commit>`` itself (pysteps.manifests), so
their pods never read ``current``; it records the release the workload serves. Apps that
reload themselves mount the whole directory at ``/apps`` and read ``/apps/current``.

A reader that resolves ``current`` once (a process started with its working directory or
import path at /apps/current) sees one complete release, whatever deploys run meanwhile.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pysteps.clients.git import MODE_EXECUTABLE, TreeEntry
from pysteps.clients.git import GitTrees as _Repo  # the git side lives in the one git seam
from pysteps.clients.storage import AppDirectory, PathEscapeError, resolve_link_target
from pysteps.errors import InputError, PreconditionError
from pysteps.names import is_commit

CURRENT = "current"
RELEASES = "releases"
MANIFEST = ".pysteps-release.json"
BUILDING_PREFIX = ".building-"
RETIRED_SUFFIX = ".retired"
POINTER_SUFFIX = ".pointer"

_MAX_IN_FLIGHT = 64

SyncMode = Literal["incremental", "full", "unchanged"]


Tree = Mapping[str, TreeEntry]


@dataclass(frozen=True)
class SyncResult:
    """What one sync did.

    files_written: files and symbolic links of the tree created with their content (hard links
    not counted: files_linked). bytes_written: every byte sent to the volume as file data or
    link target, the release manifest and the `current` link included.
    """

    commit: str
    previous_commit: str | None
    mode: SyncMode
    files_written: int
    bytes_written: int
    files_deleted: int
    seconds: float
    fallback_reason: str | None = None
    files_linked: int = 0
    files_total: int = 0
    release: str = ""


@dataclass(frozen=True)
class Release:
    """A complete release on the volume."""

    commit: str
    seq: int
    deployed_at: str
    files: int
    current: bool
    retired_at: str | None = None

    @property
    def path(self) -> str:
        return f"{RELEASES}/{self.commit}"


@dataclass(frozen=True)
class ChangeSummary:
    """How two trees differ, as a person would count it."""

    added: int
    modified: int
    deleted: int
    renamed: int
    mode_changed: int

    def describe(self) -> str:
        return (
            f"{self.added} added, {self.modified} modified ({self.mode_changed} mode only), "
            f"{self.deleted} deleted, {self.renamed} renamed"
        )


@dataclass(frozen=True)
class BuildPlan:
    """Operations that turn a directory holding `base` into one holding `target`.

    links are (path in the reference release, path in the new one): files whose content and
    mode the reference release already has, under the same or another name (a rename).
    """

    deletes: tuple[str, ...]
    rmdirs: tuple[str, ...]
    mkdirs: tuple[str, ...]
    links: tuple[tuple[str, str], ...]
    writes: tuple[str, ...]
    symlinks: tuple[str, ...]


# ----------------------------------------------------------------------------------------------
# Pure functions: the decisions, testable without a volume or a repository.


def tree_dirs(tree: Iterable[str]) -> set[str]:
    """Every directory that the paths of a tree need (git stores no empty ones)."""
    dirs: set[str] = set()
    for path in tree:
        parent = posixpath.dirname(path)
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = posixpath.dirname(parent)
    return dirs


def summarize_changes(old: Tree, new: Tree) -> ChangeSummary:
    """Added, modified, deleted and renamed paths between two trees (renames: same content)."""
    gone = {p: e for p, e in old.items() if p not in new}
    came = {p: e for p, e in new.items() if p not in old}
    gone_content: dict[tuple[int, str], int] = {}
    for e in gone.values():
        gone_content[(e.mode, e.sha)] = gone_content.get((e.mode, e.sha), 0) + 1
    renamed = 0
    for e in came.values():
        key = (e.mode, e.sha)
        if gone_content.get(key, 0) > 0:
            gone_content[key] -= 1
            renamed += 1
    modified = [p for p in new if p in old and old[p] != new[p]]
    mode_changed = sum(1 for p in modified if old[p].sha == new[p].sha)
    return ChangeSummary(
        added=len(came) - renamed,
        modified=len(modified),
        deleted=len(gone) - renamed,
        renamed=renamed,
        mode_changed=mode_changed,
    )


def plan_build(base: Tree, target: Tree, reference: Tree) -> BuildPlan:
    """Plan how a directory holding base becomes one holding target.

    Content found in reference (the current release) is hard-linked from there; anything else
    is written. Entries of base that differ from target are deleted first, never changed in
    place, because base's files may be shared with other releases.
    """
    deletes = sorted(p for p, e in base.items() if target.get(p) != e)
    base_dirs, target_dirs = tree_dirs(base), tree_dirs(target)
    rmdirs = sorted(base_dirs - target_dirs, key=lambda d: (-d.count("/"), d))
    mkdirs = sorted(target_dirs - base_dirs, key=lambda d: (d.count("/"), d))
    by_content: dict[tuple[int, str], str] = {}
    for path in sorted(reference):
        e = reference[path]
        if not e.is_symlink:
            by_content.setdefault((e.mode, e.sha), path)
    links: list[tuple[str, str]] = []
    writes: list[str] = []
    symlinks: list[str] = []
    for path in sorted(target):
        e = target[path]
        if base.get(path) == e:
            continue
        if e.is_symlink:
            symlinks.append(path)
        elif reference.get(path) == e:
            links.append((path, path))
        elif (e.mode, e.sha) in by_content:
            links.append((by_content[(e.mode, e.sha)], path))
        else:
            writes.append(path)
    return BuildPlan(
        deletes=tuple(deletes),
        rmdirs=tuple(rmdirs),
        mkdirs=tuple(mkdirs),
        links=tuple(links),
        writes=tuple(writes),
        symlinks=tuple(symlinks),
    )


def release_path(commit: str) -> str:
    return f"{RELEASES}/{commit}"


def _old_pointer(commit: str) -> str:
    return f"{RELEASES}/{commit}{POINTER_SUFFIX}"


def _retired_marker(commit: str) -> str:
    # Beside the release, not in it: nothing inside a release changes once it is complete
    # (a reader listing it must never meet a temporary file).
    return f"{RELEASES}/{commit}{RETIRED_SUFFIX}"


# ----------------------------------------------------------------------------------------------
# Reading the state on the volume.


def deployed_commit(appdir: AppDirectory) -> str | None:
    """The commit `current` points at, or None before the first deploy."""
    kind = appdir.kind(CURRENT)
    if kind is None:
        return None
    if kind != "symlink":
        raise PreconditionError(
            f"{appdir.describe()}/{CURRENT} is a {kind}, not the link pysteps maintains: "
            "remove it (pysteps destroy --purge-code) and deploy again"
        )
    target = appdir.readlink(CURRENT)
    head, _, commit = target.rpartition("/")
    if head != RELEASES or not is_commit(commit, full=True):
        raise PreconditionError(
            f"{appdir.describe()}/{CURRENT} points to {target!r}, not to a release: "
            "remove it and deploy again"
        )
    return commit


def _read_manifest(appdir: AppDirectory, release: str) -> dict[str, object] | None:
    try:
        data = json.loads(appdir.read_bytes(f"{release}/{MANIFEST}"))
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def list_releases(appdir: AppDirectory) -> list[Release]:
    """Complete releases on the volume, oldest first."""
    if appdir.kind(RELEASES) != "dir":
        return []
    current = deployed_commit(appdir)
    found: list[Release] = []
    for name in appdir.listdir(RELEASES):
        if not is_commit(name, full=True):
            continue
        manifest = _read_manifest(appdir, release_path(name))
        if manifest is None or manifest.get("commit") != name:
            continue
        seq, files = manifest.get("seq", 0), manifest.get("files", 0)
        retired_at = None
        if name != current:
            try:
                retired_at = appdir.read_bytes(_retired_marker(name)).decode().strip()
            except FileNotFoundError:
                retired_at = None
        found.append(
            Release(
                commit=name,
                seq=seq if isinstance(seq, int) else 0,
                deployed_at=str(manifest.get("deployed_at", "")),
                files=files if isinstance(files, int) else 0,
                current=name == current,
                retired_at=retired_at or None,
            )
        )
    found.sort(key=lambda r: (r.seq, r.deployed_at, r.commit))
    # A release without a retired mark (its stamp was lost, or an older pysteps made it)
    # stopped being current at the latest when the next one was deployed.
    for i, r in enumerate(found[:-1]):
        if not r.current and r.retired_at is None:
            found[i] = dataclasses.replace(r, retired_at=found[i + 1].deployed_at or None)
    return found


def _find_release(releases: list[Release], commit: str) -> Release:
    matches = [r for r in releases if r.commit.startswith(commit.lower())] if commit else []
    if len(matches) != 1:
        known = ", ".join(r.commit[:12] for r in releases) or "none"
        what = "is ambiguous" if matches else "is not on the volume"
        raise InputError(f"release {commit!r} {what}: releases kept are {known}")
    return matches[0]


def switch_release(appdir: AppDirectory, commit: str) -> None:
    """Point `current` at a kept release (full id or unique prefix), in one step."""
    releases = list_releases(appdir)
    release = _find_release(releases, commit)
    _switch(appdir, releases, release.path)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _age_seconds(stamp: str | None) -> float | None:
    """Seconds since an ISO time stamp; None when missing or unreadable."""
    if not stamp:
        return None
    try:
        then = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - then).total_seconds()


def _switch(appdir: AppDirectory, releases: list[Release], target: str) -> None:
    """Point `current` at target; the release it leaves is stamped retired first.

    The stamp comes first: if the switch then fails, the old release is still current and
    no recycling touches a current release. A retired release is recycled or deleted only
    after the grace period, because readers' caches (1 s in GlusterFS and FUSE by default)
    and pods not yet restarted may still use it.
    """
    for r in releases:
        if r.current and r.path != target:
            appdir.write_bytes(_retired_marker(r.commit), _now().encode())
            # Keep the old link's file alive under a second name: a reader whose cache still
            # holds the old `current` then reads the old (intact) release instead of getting
            # ENOENT for a link that no longer exists (seen with gfapi and FUSE clients).
            pointer = _old_pointer(r.commit)
            if appdir.exists(pointer):
                appdir.delete(pointer)
            appdir.link(CURRENT, pointer)
    appdir.replace_symlink(target, CURRENT)


def _retired_long_enough(release: Release, grace_seconds: float) -> bool:
    age = _age_seconds(release.retired_at)
    return not release.current and age is not None and age >= grace_seconds


def previous_release(appdir: AppDirectory) -> Release | None:
    """The newest release deployed before the current one (the usual rollback target)."""
    releases = list_releases(appdir)
    current = [r for r in releases if r.current]
    if not current:
        return None
    older = [r for r in releases if r.seq < current[0].seq]
    return older[-1] if older else None


def purge(appdir: AppDirectory) -> None:
    """Delete the app's whole directory: every release and the pointer."""
    appdir.purge()


# ----------------------------------------------------------------------------------------------
# The sync.


def sync_code(
    appdir: AppDirectory,
    repo_path: Path,
    commit: str,
    *,
    keep: int = 5,
    log: Callable[[str], None] = print,
    workers: int = 8,
    grace_seconds: float = 300.0,
    switch: bool = True,
    protect: Iterable[str] = (),
) -> SyncResult:
    """Write a complete release of commit, writing only what changed; with SWITCH (the
    default) also point `current` at it.

    switch=False writes the release only: pinned apps' pods mount their own release, and the
    engine moves `current` after the rollout (switch_release). protect: release commits that
    must stay whatever keep says (the ones the workload's kept revisions name); they are
    neither recycled nor pruned.

    keep: releases kept on the volume, the current one included (at least 2, so that the
    previous release stays for pods still running it and for rollback).
    grace_seconds: a release that stopped being current less than this long ago is neither
    recycled nor deleted (readers may still see it through caches or not yet restarted pods);
    releases beyond keep then wait for a later sync.
    """
    if keep < 2:
        raise InputError(f"keep={keep}: keep at least 2 releases (the current one and one more)")
    started = time.monotonic()
    bytes0 = appdir.bytes_written
    repo = _Repo(repo_path)
    try:
        new = repo.resolve(commit)
        name = appdir.app_path
        appdir.ensure()
        appdir.makedirs(RELEASES)
        previous = deployed_commit(appdir)
        releases = list_releases(appdir)
        protected = set(protect) | {new}

        def result(
            mode: SyncMode,
            *,
            files_written: int,
            files_deleted: int,
            files_total: int,
            files_linked: int = 0,
            fallback_reason: str | None = None,
        ) -> SyncResult:
            return SyncResult(
                commit=new,
                previous_commit=previous,
                mode=mode,
                files_written=files_written,
                bytes_written=appdir.bytes_written - bytes0,
                files_deleted=files_deleted,
                seconds=time.monotonic() - started,
                fallback_reason=fallback_reason,
                files_linked=files_linked,
                files_total=files_total,
                release=release_path(new),
            )

        if previous == new and any(r.commit == new for r in releases):
            log(f"code {name}: {new[:12]} already deployed, nothing to do")
            return result(
                "unchanged", files_written=0, files_deleted=0, files_total=len(repo.tree(new))
            )

        target = repo.tree(new)
        _check_tree(repo, new, target, log=log, app=name)
        prev_tree = repo.tree(previous) if previous and repo.has(previous) else None
        changes = summarize_changes(prev_tree, target) if prev_tree is not None else None

        kept = [r for r in releases if r.commit == new]
        if kept:
            if switch:
                _switch(appdir, releases, kept[0].path)
                log(f"code {name}: release {new[:12]} is still on the volume: switched back to it")
            else:
                log(f"code {name}: release {new[:12]} is still on the volume")
            _prune(appdir, keep, grace_seconds, log, name, protected)
            return result(
                "incremental",
                files_written=0,
                files_deleted=changes.deleted if changes else 0,
                files_total=len(target),
            )

        _clear_leftovers(appdir, log, name)
        fallback: str | None = None
        if previous is None:
            fallback = "first deploy: no release on the volume yet"
        elif prev_tree is None:
            fallback = f"deployed commit {previous[:12]} is not in the repository"
        elif not any(r.commit == previous for r in releases):
            fallback = f"release of deployed commit {previous[:12]} is missing on the volume"
            prev_tree = None

        building = f"{RELEASES}/{BUILDING_PREFIX}{new}-{secrets.token_hex(3)}"
        base: Tree = {}
        recycled: Release | None = None
        if prev_tree is not None:
            others = [r for r in releases if not r.current and r.commit not in protected]
            if len(releases) >= keep and others and repo.has(others[0].commit):
                if _retired_long_enough(others[0], grace_seconds):
                    recycled = others[0]
                else:
                    log(
                        f"code {name}: oldest release {others[0].commit[:12]} retired less than "
                        f"{grace_seconds:.0f}s ago: building a new release instead of recycling"
                    )
            if recycled is not None:
                appdir.rename(recycled.path, building)
                _forget_marker(appdir, recycled.commit)
                base = repo.tree(recycled.commit)
        if recycled is None:
            appdir.mkdir(building)
        reference: Tree = prev_tree or {}
        plan = plan_build(base, target, reference)

        if fallback:
            log(f"code {name}: full copy of {new[:12]} ({fallback})")
        else:
            how = (
                f"recycling release {recycled.commit[:12]}"
                if recycled
                else f"new release beside {previous[:12] if previous else '-'}"
            )
            assert changes is not None
            log(
                f"code {name}: incremental {previous[:12] if previous else '-'}..{new[:12]}: "
                f"{changes.describe()} ({how})"
            )

        _execute(appdir, repo, plan, building, release_path(previous or ""), target, workers)
        seq = max((r.seq for r in releases), default=0) + 1
        manifest = {
            "commit": new,
            "seq": seq,
            "deployed_at": _now(),
            "files": len(target),
            "previous_commit": previous,
        }
        appdir.write_bytes(f"{building}/{MANIFEST}", json.dumps(manifest, indent=1).encode())
        if appdir.exists(release_path(new)):
            # An incomplete directory under the final name (no manifest): not a release.
            appdir.delete(release_path(new), recursive=True)
        appdir.rename(building, release_path(new))
        if switch:
            _switch(appdir, releases, release_path(new))
        res = result(
            "full" if fallback else "incremental",
            files_written=len(plan.writes) + len(plan.symlinks),
            files_deleted=changes.deleted if changes else 0,
            fallback_reason=fallback,
            files_linked=len(plan.links),
            files_total=len(target),
        )
        log(
            f"code {name}: {'current -> ' if switch else 'release '}{new[:12]}: wrote "
            f"{res.files_written} files ({res.bytes_written} bytes), linked "
            f"{res.files_linked} unchanged, in {res.seconds:.1f}s"
        )
        _prune(appdir, keep, grace_seconds, log, name, protected)
        return res
    finally:
        repo.close()


def _check_tree(
    repo: _Repo, commit: str, tree: Tree, *, log: Callable[[str], None], app: str
) -> None:
    """Refuse a tree that could not be served safely, before anything is written."""
    if MANIFEST in tree:
        raise InputError(
            f"the repository has a file named {MANIFEST} at its top: pysteps keeps each "
            "release's record under that name; rename the file"
        )
    for path, entry in tree.items():
        if entry.is_symlink:
            target = repo.blob(entry.sha).decode("utf-8", "surrogateescape")
            try:
                resolve_link_target(path, target)
            except PathEscapeError as exc:
                raise PathEscapeError(
                    f"symbolic link {path!r} -> {target!r} at {commit[:12]} leads outside the "
                    "app's code: make it relative and inside the repository"
                ) from exc
    for sub in repo.submodules(commit):
        log(f"code {app}: submodule {sub} is not copied (submodules are not supported)")


def _clear_leftovers(appdir: AppDirectory, log: Callable[[str], None], app: str) -> None:
    for name in appdir.listdir(RELEASES):
        if name.startswith(BUILDING_PREFIX):
            log(f"code {app}: removing {RELEASES}/{name}, left by an interrupted sync")
            appdir.delete(f"{RELEASES}/{name}", recursive=True)


def _execute(
    appdir: AppDirectory,
    repo: _Repo,
    plan: BuildPlan,
    building: str,
    reference_dir: str,
    target: Tree,
    workers: int,
) -> None:
    """Carry out a plan in the building directory."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for _ in pool.map(lambda p: appdir.delete(f"{building}/{p}"), plan.deletes):
            pass
    for path in plan.rmdirs:
        appdir.delete(f"{building}/{path}")
    for path in plan.mkdirs:
        appdir.mkdir(f"{building}/{path}")

    # Links and writes are independent of each other once the directories exist; the volume
    # serves several at a time. Blobs are read here, in one thread: gitpython's object
    # reader is not thread-safe.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: set[Future[None]] = set()

        def submit(fn: Callable[..., None], *args: object) -> None:
            if len(pending) >= _MAX_IN_FLIGHT:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    pending.discard(f)
                    f.result()
            pending.add(pool.submit(fn, *args))

        for src, dst in plan.links:
            submit(appdir.link, f"{reference_dir}/{src}", f"{building}/{dst}")
        for path in plan.symlinks:
            link_target = repo.blob(target[path].sha).decode("utf-8", "surrogateescape")
            submit(appdir.symlink, link_target, f"{building}/{path}")
        for path in plan.writes:
            entry = target[path]
            data = repo.blob(entry.sha)
            mode = 0o755 if entry.mode == MODE_EXECUTABLE else 0o644
            submit(appdir.write_bytes, f"{building}/{path}", data, mode)
        for f in pending:
            f.result()


def _prune(
    appdir: AppDirectory,
    keep: int,
    grace_seconds: float,
    log: Callable[[str], None],
    app: str,
    protected: set[str],
) -> None:
    """Delete the oldest releases beyond keep; the current one and PROTECTED ones always stay."""
    releases = list_releases(appdir)
    others = [r for r in releases if not r.current and r.commit not in protected]
    excess = len(releases) - keep
    for release in others[: max(0, excess)]:
        if not _retired_long_enough(release, grace_seconds):
            log(
                f"code {app}: release {release.commit[:12]} is beyond keep={keep} but retired "
                f"less than {grace_seconds:.0f}s ago: left for a later sync"
            )
            continue
        log(f"code {app}: pruning release {release.commit[:12]} (keeping {keep})")
        appdir.delete(release.path, recursive=True)
        _forget_marker(appdir, release.commit)


def _forget_marker(appdir: AppDirectory, commit: str) -> None:
    for side in (_retired_marker(commit), _old_pointer(commit)):
        if appdir.exists(side):
            appdir.delete(side)
