"""App code storage on a GlusterFS volume, through libgfapi (no FUSE mount needed).

Every app owns one directory on the volume, named by its app path (``team/app`` or ``app``).
An :class:`AppDirectory` is the only way to touch it, and it keeps every name inside that
directory: ``..`` segments, absolute paths and symbolic links that lead out are refused with
:class:`PathEscapeError`. It resolves symbolic links itself, segment by segment, so the storage
backend is only ever handed paths without links in them.

Two backends implement the same small set of primitive operations: :class:`GlusterStorage` (the
real volume) and the unit tests' in-memory tree (``tests/unit/fakes.py``, with hard links that
really share one file object, so a test can tell an in-place change from a replacement).

Writes never change an existing file in place: a new file is created and renamed over the old
name. Releases of an app share unchanged files through hard links, and an in-place write would
change every release that shares the file.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import posixpath
import re
import secrets
import stat
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType, TracebackType
from typing import Any, Protocol, TypeVar

from pysteps.errors import InputError, ServiceError
from pysteps.names import is_dns_label

DEFAULT_GLUSTER_PORT = 24007

# One app path segment: DNS-1123 label (lower case letters, digits, '-', at most 63 characters).
_MAX_APP_SEGMENTS = 4
# Symbolic links followed while resolving one path, as the kernel's limit (ELOOP).
_MAX_SYMLINK_HOPS = 40
_READ_CHUNK = 1 << 20
_REMOVE_WORKERS = 8

T = TypeVar("T")


class PathEscapeError(InputError):
    """A path or symbolic link would lead outside the app's directory."""


def validate_app_path(app_path: str) -> str:
    """Check an app path (``app`` or ``team/app``): relative, DNS-1123 segments; return it."""
    if not isinstance(app_path, str) or not app_path:
        raise InputError("app path is empty: give the app's name, e.g. 'shop' or 'team/shop'")
    segments = app_path.split("/")
    bad = [s for s in segments if not is_dns_label(s)]
    if app_path.startswith("/") or bad or len(segments) > _MAX_APP_SEGMENTS:
        raise InputError(
            f"app path {app_path!r} is invalid: use 1 to {_MAX_APP_SEGMENTS} '/'-separated "
            "segments of lower case letters, digits and '-' (e.g. 'team/shop')"
        )
    return app_path


def clean_relpath(rel: str, *, allow_root: bool = False) -> str:
    """Normalise a path relative to an app directory; refuse anything that could leave it.

    Returns the segments joined by '/', without '.' or empty segments ('' is the directory
    itself, allowed only with allow_root).
    """
    if not isinstance(rel, str):
        raise InputError(f"path {rel!r} is not a string")
    if "\0" in rel:
        raise PathEscapeError(f"path {rel!r} contains a NUL byte")
    if rel.startswith("/"):
        raise PathEscapeError(f"path {rel!r} is absolute: give it relative to the app directory")
    segments = [s for s in rel.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise PathEscapeError(f"path {rel!r} contains '..': paths stay inside the app directory")
    cleaned = "/".join(segments)
    if not cleaned and not allow_root:
        raise InputError(f"path {rel!r} names the app directory itself: give a path inside it")
    return cleaned


def resolve_link_target(link_rel: str, target: str) -> str:
    """Where a symbolic link at link_rel pointing to target leads, relative to the app directory.

    Raises PathEscapeError when the target is absolute or climbs above the app directory.
    """
    if not target or "\0" in target:
        raise PathEscapeError(f"symbolic link {link_rel!r} has an empty or invalid target")
    if target.startswith("/"):
        raise PathEscapeError(
            f"symbolic link {link_rel!r} points to absolute path {target!r}: "
            "only relative links inside the app directory are allowed"
        )
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(link_rel), target))
    if joined == ".." or joined.startswith("../"):
        raise PathEscapeError(
            f"symbolic link {link_rel!r} -> {target!r} leads outside the app directory"
        )
    return "" if joined == "." else joined


# ----------------------------------------------------------------------------------------------
# Backends: primitive operations on volume paths ("/app/x/y"), never following symbolic links
# the caller did not resolve. Errors are OSError subclasses, or ServiceError when the volume
# cannot be reached.


class StorageBackend(Protocol):
    """The primitive operations an AppDirectory needs from a volume."""

    def describe(self) -> str:
        """Where the data lives, for messages (e.g. 'gluster://127.0.0.2/pysteps')."""
        ...

    def kind(self, path: str) -> str | None:
        """'file', 'dir', 'symlink', 'other', or None when nothing is there (lstat)."""
        ...

    def file_mode(self, path: str) -> int:
        """Permission bits of a file (lstat)."""
        ...

    def mkdir(self, path: str) -> None: ...

    def create(self, path: str, data: bytes, mode: int) -> None:
        """Create a new file (fails with FileExistsError if the name exists) holding data."""
        ...

    def read(self, path: str) -> bytes: ...

    def unlink(self, path: str) -> None: ...

    def rmdir(self, path: str) -> None: ...

    def rename(self, src: str, dst: str) -> None:
        """Rename, atomically replacing dst if it is a file or symbolic link."""
        ...

    def symlink(self, target: str, path: str) -> None: ...

    def readlink(self, path: str) -> str: ...

    def link(self, src: str, dst: str) -> None:
        """Hard link: dst becomes another name of src's file (no data written)."""
        ...

    def listdir(self, path: str) -> list[str]: ...

    def scan(self, path: str) -> list[tuple[str, str]]:
        """(name, kind) of every entry of a directory, kinds as kind() gives them."""
        ...


_UNREACHABLE_ERRNOS = frozenset(
    {
        errno.ENOTCONN,
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ESHUTDOWN,
        errno.EIO,
        errno.EROFS,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EPIPE,
    }
)


def _import_gfapi() -> ModuleType:
    """Import the gfapi binding (PyPI 'gfapi'), only when a volume is really used."""
    import collections
    import collections.abc

    # gfapi 1.2, the last release on PyPI, does `from collections import Iterator`; Python
    # 3.10 removed that alias (it lives in collections.abc). Restore it, only if missing,
    # so the unmodified binding imports on current Pythons.
    if not hasattr(collections, "Iterator"):
        setattr(collections, "Iterator", collections.abc.Iterator)  # noqa: B010
    try:
        from gluster import gfapi
    except ImportError as exc:
        raise ServiceError(
            f"cannot load the GlusterFS client library ({exc}): install the Python package "
            "'gfapi' and the system library libgfapi0 (Debian: apt-get install libgfapi0)"
        ) from exc
    except Exception as exc:  # the binding raises a bare Exception when libgfapi.so is missing
        raise ServiceError(
            f"cannot load the GlusterFS client library ({exc}): "
            "install libgfapi0 (Debian: apt-get install libgfapi0)"
        ) from exc
    module: ModuleType = gfapi
    return module


def _kind_of(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


class _GlusterBackend:
    """StorageBackend on a mounted gfapi Volume; gfapi is thread-safe, so one is shared."""

    def __init__(self, storage: GlusterStorage) -> None:
        self._storage = storage

    def describe(self) -> str:
        return self._storage.describe()

    def _call(self, what: str, path: str, fn: Callable[..., T], *args: Any) -> T:
        vol = self._storage._mounted_volume()
        try:
            return fn(vol, *args)
        except OSError as exc:
            if exc.errno in _UNREACHABLE_ERRNOS:
                raise self._storage._failure(f"{what} {path}", exc) from exc
            raise
        except ServiceError:
            raise
        except Exception as exc:  # LibgfapiException, VolumeNotMounted
            raise self._storage._failure(f"{what} {path}", exc) from exc

    def kind(self, path: str) -> str | None:
        def lstat_kind(vol: Any) -> str | None:
            try:
                mode = vol.lstat(path).st_mode
            except (FileNotFoundError, NotADirectoryError):
                return None
            return _kind_of(mode)

        return self._call("lstat", path, lstat_kind)

    def file_mode(self, path: str) -> int:
        return self._call("lstat", path, lambda vol: stat.S_IMODE(vol.lstat(path).st_mode))

    def mkdir(self, path: str) -> None:
        self._call("mkdir", path, lambda vol: vol.mkdir(path, 0o755))

    def create(self, path: str, data: bytes, mode: int) -> None:
        gfapi = self._storage._gfapi()

        def create(vol: Any) -> None:
            fd = vol.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with gfapi.File(fd, path=path) as f:
                view = memoryview(data)
                while view:
                    n = f.write(bytes(view[:_READ_CHUNK]))
                    view = view[n:]
            # glfs_creat applies the process umask; git's 0755 survives the usual 022, but
            # set the mode explicitly so the tree on the volume matches the repository.
            if stat.S_IMODE(vol.lstat(path).st_mode) != mode:
                vol.chmod(path, mode)

        self._call("create", path, create)

    def read(self, path: str) -> bytes:
        def read(vol: Any) -> bytes:
            chunks = []
            with vol.fopen(path, "rb") as f:
                while True:
                    chunk = f.read(_READ_CHUNK)
                    if not chunk:
                        break
                    chunks.append(chunk)
            return b"".join(chunks)

        return self._call("read", path, read)

    def unlink(self, path: str) -> None:
        self._call("unlink", path, lambda vol: vol.unlink(path))

    def rmdir(self, path: str) -> None:
        self._call("rmdir", path, lambda vol: vol.rmdir(path))

    def rename(self, src: str, dst: str) -> None:
        self._call("rename", f"{src} -> {dst}", lambda vol: vol.rename(src, dst))

    def symlink(self, target: str, path: str) -> None:
        self._call("symlink", path, lambda vol: vol.symlink(target, path))

    def readlink(self, path: str) -> str:
        return self._call("readlink", path, lambda vol: str(vol.readlink(path)))

    def link(self, src: str, dst: str) -> None:
        self._call("link", f"{src} -> {dst}", lambda vol: vol.link(src, dst))

    def listdir(self, path: str) -> list[str]:
        return self._call("listdir", path, lambda vol: list(vol.listdir(path)))

    def scan(self, path: str) -> list[tuple[str, str]]:
        # readdirplus: names and types in one round trip instead of one lstat per entry.
        return self._call(
            "listdir",
            path,
            lambda vol: [(n, _kind_of(st.st_mode)) for n, st in vol.listdir_with_stat(path)],
        )


def _unmount_quietly(vol: Any) -> None:
    # Closing: a failing unmount leaves nothing for anyone to do.
    with contextlib.suppress(Exception):
        vol.umount()


class GlusterStorage:
    """A GlusterFS volume reached through libgfapi; mounted on first use, one per process.

    Use as a context manager, or call close(). Nothing is mounted on the machine: gfapi talks
    to glusterd (the volfile server, port 24007) and then to the bricks directly.
    """

    def __init__(self, host: str, volume: str, *, port: int = DEFAULT_GLUSTER_PORT) -> None:
        if not host:
            raise InputError("GlusterFS host is empty: set PYSTEPS_GLUSTER_HOST")
        if not volume or "/" in volume:
            raise InputError(
                f"GlusterFS volume {volume!r} is invalid: set PYSTEPS_GLUSTER_VOLUME to a name"
            )
        self.host = host
        self.volume = volume
        self.port = port
        self._vol: Any = None
        self._lock = threading.Lock()
        self._backend = _GlusterBackend(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GlusterStorage:
        """From PYSTEPS_GLUSTER_HOST, PYSTEPS_GLUSTER_VOLUME (and PYSTEPS_GLUSTER_PORT)."""
        env = os.environ if environ is None else environ
        missing = [k for k in ("PYSTEPS_GLUSTER_HOST", "PYSTEPS_GLUSTER_VOLUME") if not env.get(k)]
        if missing:
            raise InputError(
                f"{' and '.join(missing)} not set: give the GlusterFS host and volume "
                "that holds the apps' code"
            )
        port_text = env.get("PYSTEPS_GLUSTER_PORT") or str(DEFAULT_GLUSTER_PORT)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InputError(f"PYSTEPS_GLUSTER_PORT={port_text!r} is not a port number (1-65535)")
        return cls(env["PYSTEPS_GLUSTER_HOST"], env["PYSTEPS_GLUSTER_VOLUME"], port=int(port_text))

    def describe(self) -> str:
        return f"gluster://{self.host}:{self.port}/{self.volume}"

    def _gfapi(self) -> ModuleType:
        return _import_gfapi()

    def _failure(self, what: str, exc: BaseException) -> ServiceError:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        # gfapi puts the C handle's address in its messages: "glfs_init(94357898526784)".
        reason = re.sub(r"\(\d+\)", "", reason)
        return ServiceError(
            f"GlusterFS volume '{self.volume}' at {self.host}:{self.port} failed ({what}: "
            f"{reason}): check PYSTEPS_GLUSTER_HOST/PYSTEPS_GLUSTER_VOLUME, that glusterd runs "
            f"there and the volume is started with its bricks online "
            f"('gluster volume status {self.volume}')"
        )

    def _mounted_volume(self) -> Any:
        with self._lock:
            if self._vol is None:
                gfapi = self._gfapi()
                vol = gfapi.Volume(self.host, self.volume, port=self.port)
                try:
                    vol.mount()
                except Exception as exc:
                    raise self._failure("mount", exc) from exc
                self._vol = vol
            return self._vol

    def connect(self) -> GlusterStorage:
        """Mount now (otherwise the first operation does); ServiceError when unreachable."""
        self._mounted_volume()
        return self

    def app_dir(self, app_path: str) -> AppDirectory:
        """The directory of one app on the volume (nothing is created until ensure())."""
        return AppDirectory(self._backend, validate_app_path(app_path))

    def close(self) -> None:
        """Unmount; the storage can be used again afterwards (it mounts anew)."""
        with self._lock:
            vol, self._vol = self._vol, None
        if vol is not None:
            # glfs_fini takes 10 s in GlusterFS 10 (an RPC "call bail" timer it waits for,
            # gluster/glusterfs#4320), so it runs in a daemon thread: the caller goes on at
            # once, and a process that exits first loses nothing (the OS closes the sockets).
            threading.Thread(target=_unmount_quietly, args=(vol,), daemon=True).start()

    def __enter__(self) -> GlusterStorage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------


class AppDirectory:
    """One app's directory on a volume; every path given is relative to it and stays inside it.

    Counters ``files_written`` and ``bytes_written`` add up what this handle wrote (file data
    and symbolic link targets), so a caller can measure a sync. Hard links, renames, deletes and
    directories write no file data and are counted in ``ops`` only.
    """

    def __init__(self, backend: StorageBackend, app_path: str) -> None:
        self.backend = backend
        self.app_path = app_path
        self.root = "/" + app_path
        self.files_written = 0
        self.bytes_written = 0
        self.ops = 0
        # Directories seen to be real directories (not links) during this handle's life; saves
        # one lstat per path segment per operation. Entries under a renamed or deleted
        # directory are dropped.
        self._real_dirs: set[str] = {""}
        self._counter_lock = threading.Lock()
        self._tmp_counter = itertools.count()

    def __repr__(self) -> str:
        return f"AppDirectory({self.backend.describe()}{self.root})"

    def describe(self) -> str:
        return f"{self.backend.describe()}{self.root}"

    # -- path handling -------------------------------------------------------------------------

    def _vol(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def _count(self, *, files: int = 0, data: int = 0, ops: int = 1) -> None:
        with self._counter_lock:
            self.files_written += files
            self.bytes_written += data
            self.ops += ops

    def _resolve(self, rel: str, *, follow_last: bool) -> str:
        """The link-free path (relative to the app dir) that rel names; refuse escapes."""
        pending = clean_relpath(rel, allow_root=True).split("/") if rel else []
        pending = [p for p in pending if p]
        done = ""
        hops = 0
        while pending:
            name = pending.pop(0)
            candidate = f"{done}/{name}" if done else name
            is_last = not pending
            if candidate in self._real_dirs or (is_last and not follow_last):
                done = candidate
                continue
            kind = self.backend.kind(self._vol(candidate))
            self._count()
            if kind == "symlink":
                hops += 1
                if hops > _MAX_SYMLINK_HOPS:
                    raise PathEscapeError(f"path {rel!r}: too many levels of symbolic links")
                target = self.backend.readlink(self._vol(candidate))
                self._count()
                resolved = resolve_link_target(candidate, target)
                pending = [p for p in resolved.split("/") if p] + pending
                done = ""
                continue
            if kind == "dir":
                self._real_dirs.add(candidate)
            elif kind is None or not is_last:
                # A missing segment: the operation reports it (or creates it); a file in the
                # middle of a path: the backend reports ENOTDIR. Neither can escape.
                done = "/".join([candidate, *pending])
                break
            done = candidate
        return done

    def _parent_resolved(self, rel: str) -> str:
        """rel with its parent directories' links resolved and its last segment kept as is."""
        cleaned = clean_relpath(rel)
        head, _, name = cleaned.rpartition("/")
        parent = self._resolve(head, follow_last=True) if head else ""
        return f"{parent}/{name}" if parent else name

    def _forget(self, rel: str) -> None:
        prefix = rel + "/"
        self._real_dirs -= {d for d in self._real_dirs if d == rel or d.startswith(prefix)}

    # -- directory -----------------------------------------------------------------------------

    def ensure(self) -> AppDirectory:
        """Create the app directory if missing (and its parents); refuse it being a link."""
        path = ""
        for segment in self.app_path.split("/"):
            path = f"{path}/{segment}"
            kind = self.backend.kind(path)
            self._count()
            if kind is None:
                try:
                    self.backend.mkdir(path)
                    self._count()
                except FileExistsError:
                    kind = self.backend.kind(path)
            if kind not in (None, "dir"):
                raise PathEscapeError(
                    f"app directory {path} on {self.backend.describe()} is a {kind}, "
                    "not a directory: remove it or choose another app path"
                )
        return self

    def makedirs(self, rel: str) -> None:
        """Create a directory and its missing parents inside the app directory."""
        target = self._resolve(rel, follow_last=True)
        if not target:
            return
        path = ""
        for segment in target.split("/"):
            path = f"{path}/{segment}" if path else segment
            if path in self._real_dirs:
                continue
            try:
                self.backend.mkdir(self._vol(path))
                self._count()
            except FileExistsError:
                kind = self.backend.kind(self._vol(path))
                if kind != "dir":
                    raise NotADirectoryError(
                        errno.ENOTDIR, "exists and is not a directory", self._vol(path)
                    ) from None
            self._real_dirs.add(path)

    def mkdir(self, rel: str) -> None:
        """Create one directory (its parent must exist)."""
        target = self._parent_resolved(rel)
        self.backend.mkdir(self._vol(target))
        self._count()
        self._real_dirs.add(target)

    # -- files ---------------------------------------------------------------------------------

    def write_bytes(self, rel: str, data: bytes, mode: int = 0o644) -> None:
        """Write a file (parents created): a new file, renamed over any old one atomically."""
        target = self._parent_resolved(rel)
        parent, _, name = target.rpartition("/")
        if parent and parent not in self._real_dirs:
            self.makedirs(parent)
        try:
            self.backend.create(self._vol(target), data, mode)
            self._count(files=1, data=len(data))
            return
        except FileExistsError:
            pass
        tmp = f"{parent}/{self._tmp_name(name)}" if parent else self._tmp_name(name)
        self.backend.create(self._vol(tmp), data, mode)
        self._count(files=1, data=len(data))
        try:
            self.backend.rename(self._vol(tmp), self._vol(target))
            self._count()
        except BaseException:
            self.backend.unlink(self._vol(tmp))
            raise

    def _tmp_name(self, name: str) -> str:
        unique = f"{os.getpid()}-{next(self._tmp_counter)}-{secrets.token_hex(3)}"
        return f".{name[:60]}.pysteps-tmp-{unique}"

    def read_bytes(self, rel: str) -> bytes:
        """A file's content; links on the way are followed when they stay inside."""
        target = self._resolve(rel, follow_last=True)
        data = self.backend.read(self._vol(target))
        self._count()
        return data

    def file_mode(self, rel: str) -> int:
        """Permission bits of a file (the last segment is not followed)."""
        mode = self.backend.file_mode(self._vol(self._parent_resolved(rel)))
        self._count()
        return mode

    def kind(self, rel: str) -> str | None:
        """'file', 'dir', 'symlink', 'other' or None; the last segment is not followed."""
        target = self._parent_resolved(rel) if clean_relpath(rel, allow_root=True) else ""
        kind = self.backend.kind(self._vol(target))
        self._count()
        return kind

    def exists(self, rel: str) -> bool:
        """Something (file, directory or link) is there under that name."""
        return self.kind(rel) is not None

    def delete(self, rel: str, *, recursive: bool = False) -> None:
        """Delete a file or link; a directory only if empty, or with recursive=True."""
        target = self._parent_resolved(rel)
        if not recursive:
            # Most deletes are of files: try that first, look at the type only if it fails.
            try:
                self.backend.unlink(self._vol(target))
                self._count()
                return
            except (IsADirectoryError, PermissionError):
                pass
        kind = self.backend.kind(self._vol(target))
        self._count()
        if kind is None:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", self._vol(target))
        if kind == "dir":
            if recursive:
                self._remove_tree(target)
            else:
                self.backend.rmdir(self._vol(target))
                self._count()
            self._forget(target)
        else:
            self.backend.unlink(self._vol(target))
            self._count()

    def _scan_tree(self, rel: str) -> tuple[list[str], list[str]]:
        """Directories (rel first, parents before children) and non-directories under rel."""
        dirs, stack = [rel], [rel]
        others: list[str] = []
        while stack:
            current = stack.pop()
            for name, kind in self.backend.scan(self._vol(current)):
                child = f"{current}/{name}" if current else name
                (dirs if kind == "dir" else others).append(child)
                if kind == "dir":
                    stack.append(child)
            self._count()
        return dirs, others

    def _remove_tree(self, rel: str) -> None:
        dirs, others = self._scan_tree(rel)
        # Unlinks are independent round trips: several at a time make a large tree go faster.
        with ThreadPoolExecutor(max_workers=_REMOVE_WORKERS) as pool:
            for _ in pool.map(lambda p: self.backend.unlink(self._vol(p)), others):
                self._count()
        # Deepest first, so each directory is empty when its turn comes.
        for d in sorted(dirs, key=lambda d: -(d.count("/") + 1 if d else 0)):
            self.backend.rmdir(self._vol(d))
            self._count()

    def purge(self) -> None:
        """Delete the whole app directory (no-op when it does not exist)."""
        if self.backend.kind(self.root) is None:
            return
        if self.backend.kind(self.root) != "dir":
            raise PathEscapeError(f"app directory {self.describe()} is not a directory")
        self._remove_tree("")
        self._real_dirs = {""}

    def rename(self, src: str, dst: str) -> None:
        """Rename inside the app directory; replaces a file or link at dst atomically."""
        s = self._parent_resolved(src)
        d = self._parent_resolved(dst)
        self.backend.rename(self._vol(s), self._vol(d))
        self._count()
        self._forget(s)

    def link(self, src: str, dst: str) -> None:
        """Hard link: dst becomes another name for src's file; no data is written."""
        s = self._parent_resolved(src)
        d = self._parent_resolved(dst)
        self.backend.link(self._vol(s), self._vol(d))
        self._count()

    def symlink(self, target: str, rel: str) -> None:
        """Create a symbolic link rel -> target; the target must stay inside the app directory."""
        link = self._parent_resolved(rel)
        resolve_link_target(clean_relpath(rel), target)
        self.backend.symlink(target, self._vol(link))
        self._count(data=len(target.encode()))

    def readlink(self, rel: str) -> str:
        """The target of a symbolic link, as stored."""
        target = self.backend.readlink(self._vol(self._parent_resolved(rel)))
        self._count()
        return target

    def replace_symlink(self, target: str, rel: str) -> None:
        """Point the link rel at target in one step (a new link renamed over the old one)."""
        link = self._parent_resolved(rel)
        resolve_link_target(clean_relpath(rel), target)
        parent, _, name = link.rpartition("/")
        tmp = f"{parent}/{self._tmp_name(name)}" if parent else self._tmp_name(name)
        self.backend.symlink(target, self._vol(tmp))
        self._count(data=len(target.encode()))
        try:
            self.backend.rename(self._vol(tmp), self._vol(link))
            self._count()
        except BaseException:
            self.backend.unlink(self._vol(tmp))
            raise

    def listdir(self, rel: str = "") -> list[str]:
        """Names in a directory (sorted); links on the way are followed when inside."""
        target = self._resolve(rel, follow_last=True) if rel else ""
        names = sorted(self.backend.listdir(self._vol(target)))
        self._count()
        return names

    def walk_files(self, rel: str = "") -> list[str]:
        """Every non-directory path under rel (links not followed), sorted."""
        base = self._resolve(rel, follow_last=True) if rel else ""
        _, others = self._scan_tree(base)
        return sorted(p[len(base) + 1 :] if base else p for p in others)
