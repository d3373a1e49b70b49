"""Telling people what a deploy did. SMTP for real; in-memory and log-only stand-ins."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pysteps.errors import ServiceError
from pysteps.masking import mask


@dataclass(frozen=True)
class Mail:
    """A message; its subject and body pass through the one secret masker when it is made."""

    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    body: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject", mask(self.subject))
        object.__setattr__(self, "body", mask(self.body))


class Notifier(Protocol):
    def send(self, mail: Mail) -> None: ...


class MemoryNotifier:
    """Keeps what it was asked to send (tests)."""

    def __init__(self) -> None:
        self.sent: list[Mail] = []

    def send(self, mail: Mail) -> None:
        self.sent.append(mail)


class LogNotifier:
    """No mail server configured: say plainly what would have been sent."""

    def __init__(self, log: Callable[[str], None] = print) -> None:
        self.log = log

    def send(self, mail: Mail) -> None:
        self.log(
            f"no mail server configured (PYSTEPS_SMTP_HOST): would mail {', '.join(mail.to)}: "
            f"{mail.subject}"
        )


class SmtpNotifier:
    """Plain SMTP; credentials, when needed, come from the environment only."""

    def __init__(self, host: str, port: int, sender: str, timeout: float = 10.0) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout

    @classmethod
    def from_env(cls) -> SmtpNotifier | None:
        host = os.environ.get("PYSTEPS_SMTP_HOST")
        if not host:
            return None
        port = int(os.environ.get("PYSTEPS_SMTP_PORT", "25"))
        sender = os.environ.get("PYSTEPS_MAIL_FROM", "pysteps@localhost")
        return cls(host, port, sender)

    def send(self, mail: Mail) -> None:
        import smtplib  # lazy: most runs of pysteps send no mail
        from email.message import EmailMessage

        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = ", ".join(mail.to)
        if mail.cc:
            msg["Cc"] = ", ".join(mail.cc)
        msg["Subject"] = mail.subject
        msg.set_content(mail.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                user = os.environ.get("PYSTEPS_SMTP_USERNAME")
                if user:
                    smtp.starttls()
                    smtp.login(user, os.environ.get("PYSTEPS_SMTP_PASSWORD", ""))
                smtp.send_message(msg, to_addrs=[*mail.to, *mail.cc])
        except (OSError, smtplib.SMTPException) as exc:
            raise ServiceError(
                f"cannot send mail through {self.host}:{self.port}: {type(exc).__name__}"
            ) from None
