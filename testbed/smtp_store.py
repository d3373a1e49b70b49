"""An SMTP server for the test bed that keeps each message it receives as a file.

Each message is written atomically as ``<store>/<timestamp>-<n>.eml`` with the envelope
in ``X-Testbed-Mail-From`` / ``X-Testbed-Rcpt-To`` headers, the listener it came through in
``X-Testbed-Transport`` (plain | starttls | ssl) and the login, if any, in
``X-Testbed-Auth-User``, so tests and the demo can read it.

Listeners: ``--port`` (plain SMTP), ``--starttls-port`` (STARTTLS offered, not required) and
``--ssl-port`` (SMTPS: TLS from the first byte); the TLS ones need ``--cert`` and ``--key``.
With ``--credentials FILE`` (one ``user:password`` line) AUTH PLAIN/LOGIN is offered after TLS
and a wrong login is refused; a client may also send without logging in.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import itertools
import os
import signal
import ssl
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

_counter = itertools.count()


class StoreHandler:
    def __init__(self, store: Path, transport: str) -> None:
        self.store = store
        self.transport = transport

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        user = session.auth_data if session.authenticated else None
        head = (
            f"X-Testbed-Mail-From: {envelope.mail_from}\r\n"
            f"X-Testbed-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
            f"X-Testbed-Transport: {self.transport}\r\n"
            + (f"X-Testbed-Auth-User: {user}\r\n" if user else "")
        ).encode()
        body = envelope.original_content or envelope.content
        if isinstance(body, str):
            body = body.encode()
        name = f"{time.time_ns()}-{next(_counter)}.eml"
        tmp = self.store / f".{name}.tmp"
        tmp.write_bytes(head + body)
        os.replace(tmp, self.store / name)
        return "250 Message accepted for delivery"


class Authenticator:
    """Accepts exactly the one user:password of the credentials file."""

    def __init__(self, path: Path) -> None:
        user, _, password = path.read_text().strip().partition(":")
        self.user, self.password = user.encode(), password.encode()

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = hmac.compare_digest(auth_data.login, self.user) and hmac.compare_digest(
            auth_data.password, self.password
        )
        if not ok:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=auth_data.login.decode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="plain SMTP")
    parser.add_argument("--starttls-port", type=int, help="SMTP with STARTTLS")
    parser.add_argument("--ssl-port", type=int, help="SMTPS (implicit TLS)")
    parser.add_argument("--cert", type=Path, help="server certificate (PEM) for TLS")
    parser.add_argument("--key", type=Path, help="its private key (PEM)")
    parser.add_argument("--credentials", type=Path, help="file with one user:password line")
    parser.add_argument("--store", type=Path, required=True)
    args = parser.parse_args()
    if not (args.port or args.starttls_port or args.ssl_port):
        parser.error("give at least one of --port, --starttls-port, --ssl-port")
    if (args.starttls_port or args.ssl_port) and not (args.cert and args.key):
        parser.error("the TLS listeners need --cert and --key")
    args.store.mkdir(parents=True, exist_ok=True)

    tls: ssl.SSLContext | None = None
    if args.cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)
    auth: dict[str, Any] = {}
    if args.credentials:
        auth = {"authenticator": Authenticator(args.credentials), "auth_required": False}

    controllers = []
    if args.port:
        controllers.append(
            Controller(StoreHandler(args.store, "plain"), hostname=args.host, port=args.port)
        )
    if args.starttls_port:
        controllers.append(
            Controller(
                StoreHandler(args.store, "starttls"),
                hostname=args.host,
                port=args.starttls_port,
                tls_context=tls,
                require_starttls=False,
                **auth,
            )
        )
    if args.ssl_port:
        controllers.append(
            Controller(
                StoreHandler(args.store, "ssl"),
                hostname=args.host,
                port=args.ssl_port,
                ssl_context=tls,
                server_hostname="localhost",
                # TLS from the first byte: AUTH is as safe here as after STARTTLS.
                **{**auth, "auth_require_tls": False},
            )
        )
    for controller in controllers:
        controller.start()
    ports = [p for p in (args.port, args.starttls_port, args.ssl_port) if p]
    print(f"smtp store listening on {args.host} ports {ports}, keeping messages in {args.store}")
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    for controller in controllers:
        controller.stop()


if __name__ == "__main__":
    main()
