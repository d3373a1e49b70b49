"""Look at it: the HTML of a success mail and of a failure mail, as received by the test bed's
SMTP server, rendered with headless Chromium to PNG. The PNGs are kept as test artifacts
(``$PYSTEPS_ARTIFACTS``, default ``$TESTBED_DIR/artifacts/mail``) for a person to check.

Chromium is pointed at loopback only: a dead proxy on 127.0.0.1, every host name unresolvable,
background networking off; the mail's HTML has no external resources anyway.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, require
from tests.integration.mailstore import parts, wait_for
from tests.integration.png import count_color, read_png
from tests.integration.test_mail import Smtp, World, token

pytestmark = pytest.mark.integration

OK_GREEN = (0x1A, 0x7F, 0x37)
FAIL_RED = (0xCF, 0x22, 0x2E)


def artifacts_dir(testbed) -> Path:
    default = Path(testbed.get("TESTBED_DIR") or REPO / ".testbed") / "artifacts" / "mail"
    out = Path(os.environ.get("PYSTEPS_ARTIFACTS") or default)
    out.mkdir(parents=True, exist_ok=True)
    return out


def render(chromium: str, html: Path, png: Path, tmp: Path, height: int) -> None:
    png.unlink(missing_ok=True)
    out = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # root in CI
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size=760,{height}",
            f"--screenshot={png}",
            f"--user-data-dir={tmp / 'chromium-profile'}",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--dns-prefetch-disable",
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert png.exists(), f"chromium wrote no {png}: exit {out.returncode}\n{out.stderr[-2000:]}"


def test_success_and_failure_mails_render_to_png(testbed, tmp_path):
    (chromium,) = require(testbed, "TESTBED_CHROMIUM")
    smtp = Smtp(dict(testbed))
    world = World(tmp_path, smtp.settings("starttls", login=True))
    tok = token()
    mail = {"to": [f"{tok}@ci.test"], "cc": [f"{tok}-lead@ci.test"]}
    base = world.commit("Initial shop")
    world.deploy(base, "shop", mail, replicas=3)
    world.commit("Add the basket page", "Bob Builder <bob@ci.test>")
    world.commit("Show prices with VAT", "Carol Coder <carol@ci.test>")
    good = world.commit("Fix the basket total for 0 items", "Bob Builder <bob@ci.test>")
    world.deploy(good, "shop", mail, replicas=3)
    world.commit("Switch payments to the new provider", "Dan Dev <dan@ci.test>")
    bad = world.commit("Read the payment key from PAYMENT_KEY", "Dan Dev <dan@ci.test>")
    result = world.deploy(bad, "shop", mail, replicas=3, image="127.0.0.1:25000/team/crash")
    assert not result.ok
    success_msg, failure_msg = wait_for(smtp.store, tok, 3)[1:]
    out = artifacts_dir(testbed)
    for label, msg, color, other in (
        ("success", success_msg, OK_GREEN, FAIL_RED),
        ("failure", failure_msg, FAIL_RED, OK_GREEN),
    ):
        html = out / f"deploy-mail-{label}.html"
        html.write_text(parts(msg)["text/html"])
        png = out / f"deploy-mail-{label}.png"
        started = time.monotonic()
        render(chromium, html, png, tmp_path, 1500 if label == "failure" else 900)
        width, height, rows = read_png(png)
        print(f"{png}: {width}x{height}, rendered in {time.monotonic() - started:.1f} s")
        assert (width, height) == (760, 1500 if label == "failure" else 900)
        # the banner is drawn in the result's color (hundreds of pixels), never the other's
        assert count_color(rows[:120], color) > 5000, label
        assert count_color(rows, other) < 50, label
