"""Logging is the user interface: phase headings, one line per change, secrets masked
(by pysteps.masking, the one masker)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

from pysteps.masking import Masker, secrets_from_env

# Kept importable from here for older callers; the masker's home is pysteps.masking.
__all__ = ["Console", "Masker", "secrets_from_env"]


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
        # None: the process-wide masker (environment + every secret the spec marks).
        self.mask = Masker(secrets)
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
