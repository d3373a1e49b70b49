"""Reading the test bed's SMTP store: the messages addressed to a test's own recipients."""

from __future__ import annotations

import email
import email.policy
import time
from email.message import EmailMessage
from pathlib import Path


def messages_to(store: str | Path, token: str) -> list[EmailMessage]:
    """Every stored message whose envelope recipients contain TOKEN, oldest first."""
    out = []
    for path in sorted(Path(store).glob("*.eml")):
        head = path.read_bytes()[:4096].decode("utf-8", "replace")
        rcpt = next((ln for ln in head.splitlines() if ln.startswith("X-Testbed-Rcpt-To:")), "")
        if token in rcpt:
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
    return out


def wait_for(store: str | Path, token: str, count: int = 1, timeout: float = 15) -> list:
    """The messages for TOKEN once COUNT have arrived (fails with what did arrive)."""
    deadline = time.monotonic() + timeout
    found: list[EmailMessage] = []
    while time.monotonic() < deadline:
        found = messages_to(store, token)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{len(found)} of {count} mails for {token} arrived in {timeout} s")


def parts(msg: EmailMessage) -> dict[str, str]:
    """The decoded text/plain and text/html parts of a multipart/alternative message."""
    out = {}
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            out[part.get_content_type()] = part.get_content().replace("\r\n", "\n")
    return out


def everything(msg: EmailMessage) -> str:
    """Headers, raw source and decoded parts: where a leaked secret would show."""
    decoded = parts(msg)
    return str(msg) + "\n".join(f"{k}: {v}" for k, v in msg.items()) + "".join(decoded.values())
