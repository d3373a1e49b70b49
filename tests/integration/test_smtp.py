"""The test bed's SMTP server is real: a message sent over SMTP is found in its store."""

from __future__ import annotations

import email
import smtplib
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import require

pytestmark = pytest.mark.integration


def test_mail_sent_over_smtp_is_found_in_store(testbed):
    host, port, store = require(
        testbed, "PYSTEPS_SMTP_HOST", "PYSTEPS_SMTP_PORT", "TESTBED_SMTP_STORE"
    )
    marker = uuid.uuid4().hex
    with smtplib.SMTP(host, int(port), timeout=10) as smtp:
        smtp.sendmail(
            "pysteps@ci.test",
            ["oncall@ci.test"],
            f"Subject: deploy {marker}\r\nTo: oncall@ci.test\r\n\r\nhello {marker}\r\n",
        )
    deadline = time.monotonic() + 10
    found = []
    while time.monotonic() < deadline and not found:
        found = [p for p in Path(store).glob("*.eml") if marker in p.read_text()]
        time.sleep(0.1)
    assert len(found) == 1
    msg = email.message_from_string(found[0].read_text())
    assert msg["Subject"] == f"deploy {marker}"
    assert msg["X-Testbed-Rcpt-To"] == "oncall@ci.test"
