"""pysteps build: build and push the app's image for a commit, without deploying it.

For promotion: the Jenkins step buildImage runs this once; promoteApp then ships the resulting
digest to each environment. The registry's copy is reused when the commit's tag is there.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pysteps.console import Console
from pysteps.environment import CommandParser
from pysteps.errors import InputError, PystepsError


@dataclass
class BuildResult:
    """What the Jenkins step reads back (--result FILE)."""

    ok: bool
    exit_code: int
    name: str
    commit: str
    image: str | None = None
    built: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="pysteps build", description=__doc__)
    p.add_argument("-f", "--file", type=Path, help="app spec (default: <repo>/deploy.yaml)")
    p.add_argument("--overrides", type=Path, help="JSON map of spec fields (the Jenkins step's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--repo", type=Path, default=Path("."), help="the app's git checkout")
    p.add_argument("--commit", help="commit to build (default: the checkout's HEAD)")
    p.add_argument("--build-url", default=os.environ.get("BUILD_URL"), help="link to the build")
    p.add_argument("--result", type=Path, help="write the JSON result here (for Jenkins)")
    p.add_argument("-v", "--verbose", action="store_true", help="details and tracebacks")
    return p


def run(argv: list[str], verbose: bool = False) -> int:
    args = build_parser().parse_args(argv)
    console = Console(verbose=verbose or args.verbose)
    from pysteps.clients.git import GitCheckout
    from pysteps.commands.deploy import write_result
    from pysteps.spec import load_spec

    result: BuildResult | None = None
    error: PystepsError | None = None
    try:
        spec = load_spec(args.file or (args.repo / "deploy.yaml"), args.overrides, args.set)
        if spec.mode != "image" or not spec.image:
            raise InputError("spec field 'mode': pysteps build needs image mode and an image")
        commit = GitCheckout(args.repo).resolve(args.commit)
        result = BuildResult(False, 0, spec.name, commit)
        from pysteps.clients.images import ImageBuilder, RegistryAuth

        console.heading(f"Building {spec.image}:{commit[:12]}")
        # From a clean export of the commit, as a deploy builds it: never the working tree.
        built = ImageBuilder(RegistryAuth.from_env(), log=console).ensure_commit_image(
            checkout=args.repo,
            context=spec.build.context,
            dockerfile=spec.build.dockerfile,
            repository=spec.image,
            commit=commit,
            extra_tags=spec.build.extra_tags,
            build_args=spec.build.args,
            source_url=args.build_url,
        )
        result.image, result.built, result.ok = built.reference, built.built, True
        console(f"image {built.reference}" + ("" if built.built else " (already in the registry)"))
    except PystepsError as exc:
        error = exc
    finally:
        if args.result:
            write_result(args.result, result, error)
    if error is not None:
        raise error
    return 0
