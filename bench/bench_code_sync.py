"""Code mode: an incremental update against a full copy of the tree, on the real volume.

A repository of 5,000 files (about 4 KB each, 100 directories) in which 1 % of the files
change between commits. In one run, on the test bed's GlusterFS volume:

  full copy    the new commit's whole tree written to a fresh app directory (what a deploy
               without code sync would do; same writer, same parallelism)
  first update the first update of an app: a new release beside the current one, whose
               unchanged files are hard links (no data written, one link per file)
  update       an update once the app has `keep` releases: the oldest release (retired longer
               than the grace period) is recycled, so only the changes cost anything

Targets (issue 5): bytes written <= 1.1 x the changed bytes; time <= 0.2 x the full copy.
Exit status 1 when the steady-state update misses a target.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchlib import git, testbed_env

from pysteps import codesync
from pysteps.clients.storage import GlusterStorage

FILES = 5000
DIRS = 100
CHANGE_FRACTION = 0.01
KEEP = 2
GRACE_SECONDS = 3.0
SEED = 5


def text(rng: random.Random, size: int) -> bytes:
    """size bytes of source-like text that does not compress away (hex lines)."""
    raw = rng.randbytes((size + 1) // 2).hex()[:size]
    return "\n".join(raw[i : i + 63] for i in range(0, len(raw), 64)).encode()[:size]


def make_repo(root: Path, rng: random.Random) -> tuple[list[str], list[str]]:
    """Commit the 5,000-file tree, then three commits that each change 1 % of the files."""
    git(root, "init", "-q", "-b", "main")
    paths = [f"pkg{i % DIRS:03d}/module{i:04d}.py" for i in range(FILES)]
    for p in paths:
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        (root / p).write_bytes(text(rng, rng.randint(512, 7680)))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial tree")
    commits = [git(root, "rev-parse", "HEAD")]
    for n in range(3):
        for p in rng.sample(paths, int(FILES * CHANGE_FRACTION)):
            (root / p).write_bytes(text(rng, rng.randint(512, 7680)))
        git(root, "commit", "-q", "-am", f"change {n + 1}")
        commits.append(git(root, "rev-parse", "HEAD"))
    return paths, commits


def changed_bytes(repo: Path, old: str, new: str) -> tuple[int, int]:
    """(files, bytes) that differ between two commits, counted at their new size."""
    names = git(repo, "diff", "--name-only", "--no-renames", old, new).splitlines()
    total = 0
    for name in names:
        total += int(git(repo, "cat-file", "-s", f"{new}:{name}"))
    return len(names), total


def brick_data_since(brick: str | None, app: str, since_ns: int) -> int | None:
    """Bytes of the app's regular files on the (local) brick written since a time: a check
    of the client's count from the other side. A hard link leaves a file's mtime alone."""
    if not brick or not Path(brick, app).is_dir():
        return None
    sizes: dict[int, int] = {}
    for dirpath, _, names in os.walk(Path(brick, app)):
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_mode & 0o170000) == 0o100000 and st.st_mtime_ns >= since_ns:
                sizes[st.st_ino] = st.st_size
    return sum(sizes.values())


def main() -> int:
    env = testbed_env()
    host, volume = env.get("PYSTEPS_GLUSTER_HOST"), env.get("PYSTEPS_GLUSTER_VOLUME")
    if not host or not volume:
        sys.exit("PYSTEPS_GLUSTER_HOST/_VOLUME missing in .testbed/env: is gluster up?")
    brick = env.get("TESTBED_GLUSTER_BRICK")
    rng = random.Random(SEED)
    quiet = lambda _line: None  # noqa: E731

    with tempfile.TemporaryDirectory(prefix="bench-code-sync-") as tmp:
        repo = Path(tmp, "repo")
        repo.mkdir()
        t0 = time.monotonic()
        _, commits = make_repo(repo, rng)
        print(f"repository: {FILES} files, {len(commits)} commits ({time.monotonic() - t0:.1f}s)")
        first, second, third, fourth = commits

        tag = uuid.uuid4().hex[:8]
        with GlusterStorage(host, volume) as storage:
            full_dir = storage.app_dir(f"bench-full-{tag}")
            inc_dir = storage.app_dir(f"bench-inc-{tag}")
            try:
                full = codesync.sync_code(full_dir, repo, fourth, keep=KEEP, log=quiet)

                def update(commit: str) -> codesync.SyncResult:
                    return codesync.sync_code(
                        inc_dir, repo, commit, keep=KEEP, grace_seconds=GRACE_SECONDS, log=quiet
                    )

                update(first)
                first_update = update(second)
                update(third)  # now the app has KEEP releases
                # Deploys of one app are minutes apart in real life; wait out the grace
                # period (outside the measurement) so the oldest release may be recycled.
                time.sleep(GRACE_SECONDS + 0.5)
                # mtime has the file system's granularity: start a little earlier.
                since = time.time_ns() - 20_000_000
                steady = update(fourth)
                on_brick = brick_data_since(brick, inc_dir.app_path, since)
                ok_tree = inc_dir.walk_files("current") == full_dir.walk_files("current")
            finally:
                t = time.monotonic()
                codesync.purge(full_dir)
                codesync.purge(inc_dir)
                print(f"(cleanup {time.monotonic() - t:.1f}s)")

        changes = {
            "first update": changed_bytes(repo, first, second),
            "update": changed_bytes(repo, third, fourth),
        }

    def row(name: str, res: codesync.SyncResult, changed: tuple[int, int] | None) -> None:
        ratio_b = f"{res.bytes_written / changed[1]:.3f}" if changed else "-"
        ratio_t = f"{res.seconds / full.seconds:.3f}"
        print(
            f"{name:<13} {res.mode:<11} {res.files_written:>7} {res.files_linked:>7} "
            f"{res.bytes_written:>11} {changed[1] if changed else '-':>11} {ratio_b:>8} "
            f"{res.seconds:>7.2f} {ratio_t:>7}"
        )

    print(
        f"{'':<13} {'mode':<11} {'written':>7} {'linked':>7} {'bytes':>11} {'changed':>11} "
        f"{'bytes x':>8} {'seconds':>7} {'time x':>7}"
    )
    row("full copy", full, None)
    row("first update", first_update, changes["first update"])
    row("update", steady, changes["update"])
    if on_brick is not None:
        print(f"brick check: file data written on the brick during the update = {on_brick} bytes")
    print(f"file list after the update equals the full copy's: {ok_tree}")

    bytes_ratio = steady.bytes_written / changes["update"][1]
    time_ratio = steady.seconds / full.seconds
    print(
        f"RESULT update vs full copy: bytes ratio {bytes_ratio:.3f} (target <= 1.1), "
        f"time ratio {time_ratio:.3f} (target <= 0.2)"
    )
    print(
        f"first update (no release to recycle yet): bytes ratio "
        f"{first_update.bytes_written / changes['first update'][1]:.3f}, "
        f"time ratio {first_update.seconds / full.seconds:.3f}"
    )
    met = bytes_ratio <= 1.1 and time_ratio <= 0.2 and ok_tree and steady.mode == "incremental"
    print("targets met" if met else "TARGETS MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
