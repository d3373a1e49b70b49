"""Rebuild after a one-line code change: how much of the image is reused, and how fast.

A generated app on the test bed's base image, laid out the way apps usually are (runtime,
dependency manifests and installs first, code last), goes through `ImageBuilder.ensure_image`
twice against the test bed's engine and registry: commit A (cold: its dependency content is
new), then commit B with one line of code changed. Printed:
  - filesystem layers of B reused from A, by count (target >= 90 %) and by bytes;
  - build steps served from the cache;
  - time of B vs A (build alone, and build + push).
The engine (legacy builder) appends one LABEL step per OCI label, never cached (the revision
changes with each commit); on the test bed's vfs storage driver every step copies the whole
root file system, so those steps weigh more here than on overlay2.
Exit status 1 when the layer target is missed.

Usage: make testbed-up && .venv/bin/python bench/bench_image_rebuild.py
"""

from __future__ import annotations

import re
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import testbed_env

from pysteps.clients.images import BuiltImage, ImageBuilder, RegistryAuth

TARGET_REUSE = 0.90
DEPS_MB = 8  # per dependency install layer: big enough that reusing it matters

DOCKERFILE = """\
FROM {base}
# runtime: the interpreter and system libraries an app needs
RUN mkdir -p /opt/runtime \\
 && dd if=/dev/urandom of=/opt/runtime/libruntime.so bs=1M count={mb} 2>/dev/null
RUN echo 'app:x:1000:1000::/app:/bin/sh' >>/etc/passwd && echo 'app:x:1000:' >>/etc/group
# dependencies: manifests first, so a code change never reinstalls them
COPY requirements/base.txt /app/requirements/base.txt
RUN mkdir -p /app/deps/base && for p in $(cat /app/requirements/base.txt); do \\
    dd if=/dev/urandom of=/app/deps/base/$p bs=1M count={mb} 2>/dev/null; done
COPY requirements/app.txt /app/requirements/app.txt
RUN mkdir -p /app/deps/app && for p in $(cat /app/requirements/app.txt); do \\
    dd if=/dev/urandom of=/app/deps/app/$p bs=1M count={mb} 2>/dev/null; done
COPY assets/ /app/assets/
COPY config/ /app/config/
WORKDIR /app
USER app
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/app/assets"]
# code last: a code change rebuilds this step and the engine's label steps only
COPY src/ /app/src/
"""


@dataclass(frozen=True)
class Run:
    image: BuiltImage
    total_s: float
    build_s: float
    steps: int
    cached: int


def generate_app(root: Path, base: str, seed: str) -> Path:
    """The app: unique dependency names per run, so the first build is truly cold."""
    app = root / "app"
    for d in ("requirements", "assets", "config", "src"):
        (app / d).mkdir(parents=True, exist_ok=True)
    (app / "Dockerfile").write_text(DOCKERFILE.format(base=base, mb=DEPS_MB))
    (app / "requirements" / "base.txt").write_text(f"core-{seed}\nhttp-{seed}\n")
    (app / "requirements" / "app.txt").write_text(f"orm-{seed}\ntemplates-{seed}\n")
    (app / "assets" / "index.html").write_text("<h1>bench</h1>\n")
    (app / "config" / "app.conf").write_text("port=8080\n")
    (app / "src" / "app.sh").write_text(
        "#!/bin/sh\n" + "".join(f"echo line {i}\n" for i in range(50)) + 'echo "version 1"\n'
    )
    return app


def one_line_change(app: Path) -> None:
    src = app / "src" / "app.sh"
    src.write_text(src.read_text().replace('echo "version 1"', 'echo "version 2"'))


def build(builder: ImageBuilder, app: Path, repository: str, commit: str, lines: list[str]) -> Run:
    lines.clear()
    t0 = time.monotonic()
    image = builder.ensure_image(
        context=app, dockerfile="Dockerfile", repository=repository, commit=commit
    )
    total = time.monotonic() - t0
    built = next((m for m in map(re.compile(r"^built .* in ([0-9.]+)s$").match, lines) if m), None)
    steps = sum(1 for line in lines if re.match(r"^Step \d+/\d+ : ", line))
    cached = sum(1 for line in lines if line.strip() == "---> Using cache")
    return Run(image, total, float(built.group(1)) if built else total, steps, cached)


def main() -> int:
    env = testbed_env()
    auth = RegistryAuth.from_env(env)
    base = env["TESTBED_BASE_IMAGE"]
    lines: list[str] = []
    builder = ImageBuilder(auth, docker_host=env["DOCKER_HOST"], log=lines.append)
    api = builder._docker()
    seed = secrets.token_hex(4)
    repository = f"{auth.host}/bench/rebuild-{seed}"

    with tempfile.TemporaryDirectory() as tmp:
        app = generate_app(Path(tmp), base, seed)
        first = build(builder, app, repository, secrets.token_hex(20), lines)
        one_line_change(app)
        second = build(builder, app, repository, secrets.token_hex(20), lines)

    layers_a = api.inspect_image(f"{repository}:{first.image.tag}")["RootFS"]["Layers"]
    layers_b = api.inspect_image(f"{repository}:{second.image.tag}")["RootFS"]["Layers"]
    reused = 0
    for a, b in zip(layers_a, layers_b):
        if a != b:
            break
        reused += 1
    # Bytes per layer from the registry's manifest of B (compressed sizes, as pushed).
    sizes = [layer["size"] for layer in _manifest(builder, repository, second.image.digest)]
    bytes_reused = sum(sizes[:reused]) / sum(sizes) if sum(sizes) else 0.0
    share = reused / len(layers_b)

    print(f"image: {repository} ({len(layers_b)} filesystem layers, {sum(sizes) / 1e6:.1f} MB)")
    print(
        f"first build:  build {first.build_s:6.1f} s, build+push {first.total_s:6.1f} s, "
        f"{first.cached}/{first.steps} steps from cache"
    )
    print(
        f"rebuild:      build {second.build_s:6.1f} s, build+push {second.total_s:6.1f} s, "
        f"{second.cached}/{second.steps} steps from cache"
    )
    print(
        f"layers reused: {reused}/{len(layers_b)} ({share:.0%}, target >= {TARGET_REUSE:.0%}); "
        f"bytes reused: {bytes_reused:.2%}"
    )
    print(
        f"rebuild/first time: build {second.build_s / first.build_s:.0%}, "
        f"build+push {second.total_s / first.total_s:.0%}"
    )
    for tag in (first.image.tag, second.image.tag):
        api.remove_image(f"{repository}:{tag}", force=True)
    if share < TARGET_REUSE:
        print(f"FAIL: {share:.0%} of the layers reused, target {TARGET_REUSE:.0%}")
        return 1
    return 0


def _manifest(builder: ImageBuilder, repository: str, digest: str) -> list[dict[str, int]]:
    import json

    from pysteps.clients.registry import split_repository

    host, path = split_repository(repository)
    got = builder._registry(host).manifest(path, digest)
    if got is None:
        raise SystemExit(f"registry lost {repository}@{digest}")
    layers: list[dict[str, int]] = json.loads(got[0])["layers"]
    return layers


if __name__ == "__main__":
    sys.exit(main())
