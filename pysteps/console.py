"""Logging is the user interface: phase headings, one line per change, secrets masked."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|TOKEN|SECRET|API_KEY|PRIVATE_KEY)", re.IGNORECASE)
MASK = "********"


def secrets_from_env(environ: dict[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names say they are secret."""
    env = os.environ if environ is None else environ
    return [v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= 4]


class Masker:
    """Replaces every known secret value with a fixed mask."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def deep(self, value: Any) -> Any:
        """Mask every string inside a JSON-like value."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.deep(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.deep(v) for v in value]
        return value


class Console:
    """Writes the human-readable story of a command to stderr."""

    def __init__(
        self,
        verbose: bool = False,
        stream: TextIO | None = None,
        secrets: Iterable[str] | None = None,
    ) -> None:
        self.verbose = verbose
        self.stream = stream or sys.stderr
        self.mask = Masker(secrets_from_env() if secrets is None else secrets)
        self.lines: list[str] = []

    def _write(self, text: str) -> None:
        text = self.mask(text)
        self.lines.append(text)
        print(text, file=self.stream, flush=True)

    def heading(self, title: str) -> None:
        self._write(f"\n---- {title} ----")

    def __call__(self, text: str) -> None:
        self._write(text)

    def detail(self, text: str) -> None:
        if self.verbose:
            self._write(f"  {text}")

    def warn(self, text: str) -> None:
        self._write(f"warning: {text}")

    def error(self, text: str) -> None:
        self._write(f"error: {text}")
