"""Sending mail: SMTP through yagmail for real; in-memory and log-only stand-ins.

Configuration comes from the environment only (the Jenkins step hands credentials in through
``withCredentials``):

  PYSTEPS_SMTP_HOST, PYSTEPS_SMTP_PORT   the server (unset: mails are only logged)
  PYSTEPS_SMTP_TLS                       none (default) | starttls | ssl (SMTPS)
  PYSTEPS_SMTP_USERNAME, _PASSWORD       login; without a username no login is tried
  PYSTEPS_SMTP_CA_FILE                   CA bundle that signs the server's certificate
  PYSTEPS_SMTP_TIMEOUT                   seconds the whole send may take (default 30)
  PYSTEPS_MAIL_FROM                      the sender (default pysteps@localhost)

yagmail looks a missing password up in a keyring and then prompts on standard input; CI has
neither. Here the login is skipped when no username is set, and a username without a password
is an error before any connection: yagmail's password lookup is never reached.
"""

from __future__ import annotations

import email.policy
import os
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

from pysteps.errors import InputError, ServiceError

TLS_MODES = ("none", "starttls", "ssl")


@dataclass(frozen=True)
class MailMessage:
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    body: str  # the plain-text part
    html: str | None = None  # the HTML part, when there is one

    def to_email(self, sender: str) -> EmailMessage:
        """A multipart/alternative message: text first, HTML last (the preferred part)."""
        # Headers up to 200 characters stay on one line (RFC 5322 allows 998): a subject
        # folded right after "Subject:" shows with a leading blank in some readers.
        msg = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=200))
        msg["From"] = sender
        msg["To"] = ", ".join(self.to)
        if self.cc:
            msg["Cc"] = ", ".join(self.cc)
        msg["Subject"] = self.subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
        msg.set_content(self.body)
        if self.html is not None:
            msg.add_alternative(self.html, subtype="html")
        return msg


class Notifier(Protocol):
    def send(self, mail: MailMessage) -> None: ...


class MemoryNotifier:
    """Keeps what it was asked to send (tests)."""

    def __init__(self) -> None:
        self.sent: list[MailMessage] = []

    def send(self, mail: MailMessage) -> None:
        self.sent.append(mail)


class LogNotifier:
    """No mail server configured: say plainly what would have been sent."""

    def __init__(self, log: Callable[[str], None] = print) -> None:
        self.log = log

    def send(self, mail: MailMessage) -> None:
        self.log(
            f"no mail server configured (PYSTEPS_SMTP_HOST): would mail {', '.join(mail.to)}: "
            f"{mail.subject}"
        )


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: str = "none"
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    timeout: float = 30.0
    sender: str = "pysteps@localhost"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SmtpSettings | None:
        """The settings from PYSTEPS_SMTP_*; None when no host is set. InputError on a bad value."""
        env = os.environ if env is None else env
        host = env.get("PYSTEPS_SMTP_HOST")
        if not host:
            return None
        tls = env.get("PYSTEPS_SMTP_TLS", "none") or "none"
        if tls not in TLS_MODES:
            raise InputError(f"PYSTEPS_SMTP_TLS={tls!r}: use one of {', '.join(TLS_MODES)}")
        default_port = {"none": "25", "starttls": "587", "ssl": "465"}[tls]
        try:
            port = int(env.get("PYSTEPS_SMTP_PORT") or default_port)
            timeout = float(env.get("PYSTEPS_SMTP_TIMEOUT") or "30")
        except ValueError:
            raise InputError("PYSTEPS_SMTP_PORT and PYSTEPS_SMTP_TIMEOUT must be numbers") from None
        if not 1 <= port <= 65535 or not 0 < timeout <= 600:
            raise InputError("PYSTEPS_SMTP_PORT must be 1-65535, PYSTEPS_SMTP_TIMEOUT 0-600 s")
        return cls(
            host=host,
            port=port,
            tls=tls,
            username=env.get("PYSTEPS_SMTP_USERNAME") or None,
            password=env.get("PYSTEPS_SMTP_PASSWORD") or None,
            ca_file=env.get("PYSTEPS_SMTP_CA_FILE") or None,
            timeout=timeout,
            sender=env.get("PYSTEPS_MAIL_FROM") or "pysteps@localhost",
        )


class YagmailNotifier:
    """SMTP through yagmail: plain, STARTTLS or SMTPS; login only when a username is set."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    @classmethod
    def from_env(cls) -> YagmailNotifier | None:
        settings = SmtpSettings.from_env()
        return cls(settings) if settings else None

    @property
    def where(self) -> str:
        s = self.settings
        return f"{s.host}:{s.port} ({s.tls})"

    def send(self, mail: MailMessage) -> None:
        """Send MAIL; ServiceError when it cannot be sent within the timeout."""
        s = self.settings
        if s.username and not s.password:
            # yagmail would look the password up in a keyring and then prompt: never.
            raise ServiceError(
                "PYSTEPS_SMTP_USERNAME is set but PYSTEPS_SMTP_PASSWORD is not; "
                "set both, or neither to send without login"
            )
        outcome: list[BaseException | None] = []

        def attempt() -> None:
            try:
                self._send(mail)
                outcome.append(None)
            except BaseException as exc:  # reported by the caller's thread
                outcome.append(exc)

        # The socket timeout bounds each step; the thread bounds the whole conversation.
        worker = threading.Thread(target=attempt, name="pysteps-mail", daemon=True)
        worker.start()
        worker.join(s.timeout)
        if worker.is_alive():
            raise ServiceError(
                f"cannot send mail through {self.where}: no answer within {s.timeout:g} s"
            )
        error = outcome[0] if outcome else None
        if error is not None:
            raise ServiceError(
                f"cannot send mail through {self.where}: {type(error).__name__}: "
                f"{_first_line(error)}"
            )

    def _send(self, mail: MailMessage) -> None:
        import yagmail  # lazy: most runs of pysteps send no mail

        s = self.settings
        kwargs: dict[str, Any] = {"timeout": s.timeout}
        starttls: bool | dict[str, Any] = False
        if s.tls == "ssl":
            kwargs["context"] = self._tls_context()
        elif s.tls == "starttls":
            starttls = {"context": self._tls_context()}
        # A one-entry mapping keeps yagmail from adding "@gmail.com" to a bare login name;
        # its own e-mail check is off because a login name need not be an address.
        client = _without_keyring(yagmail.SMTP)(
            user={s.username or s.sender: s.sender},
            password=s.password,
            host=s.host,
            port=s.port,
            smtp_ssl=s.tls == "ssl",
            smtp_starttls=starttls,
            smtp_skip_login=not s.username,
            soft_email_validation=False,
            **kwargs,
        )
        client.set_logging(None)
        try:
            client.login()  # connect, STARTTLS, login: yagmail's part
            # The message is ours: yagmail's builder puts the same content in both parts.
            msg = mail.to_email(s.sender)
            client.smtp.send_message(msg, from_addr=s.sender, to_addrs=[*mail.to, *mail.cc])
        finally:
            client.close()

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.ca_file)


def _without_keyring(base: Any) -> Any:
    """yagmail's client with its password lookup (keyring, then a prompt) replaced."""

    class NoKeyringSMTP(base):  # type: ignore[misc]
        @staticmethod
        def handle_password(user: str, password: str | None) -> str:
            if password is None:
                raise ServiceError("no SMTP password in the environment (PYSTEPS_SMTP_PASSWORD)")
            return password

    return NoKeyringSMTP


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no detail"
