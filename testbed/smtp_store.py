"""An SMTP server for the test bed that keeps each message it receives as a file.

Each message is written atomically as ``<store>/<timestamp>-<n>.eml`` with the envelope
in ``X-Testbed-Mail-From`` / ``X-Testbed-Rcpt-To`` headers, so tests and the demo can read it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

_counter = itertools.count()


class StoreHandler:
    def __init__(self, store: Path) -> None:
        self.store = store

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        head = (
            f"X-Testbed-Mail-From: {envelope.mail_from}\r\n"
            f"X-Testbed-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        body = envelope.original_content or envelope.content
        if isinstance(body, str):
            body = body.encode()
        name = f"{time.time_ns()}-{next(_counter)}.eml"
        tmp = self.store / f".{name}.tmp"
        tmp.write_bytes(head + body)
        os.replace(tmp, self.store / name)
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", type=Path, required=True)
    args = parser.parse_args()
    args.store.mkdir(parents=True, exist_ok=True)
    controller = Controller(StoreHandler(args.store), hostname=args.host, port=args.port)
    controller.start()
    print(f"smtp store listening on {args.host}:{args.port}, keeping messages in {args.store}")
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
