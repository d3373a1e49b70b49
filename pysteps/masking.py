"""The one secret masker: console, result file, --output json and mail all pass through it.

It is fed by the environment (variables whose names say they are secret, as Jenkins'
withCredentials sets them) and by every value the spec marks secret (`env: {X: {secret_env:
VAR}}`), registered with `add_secrets` as soon as the value is read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|TOKEN|SECRET|API_KEY|PRIVATE_KEY)", re.IGNORECASE)
MASK = "********"
# Shorter values would mask common words; a secret that short is not worth the name.
MIN_SECRET_LENGTH = 4

_registered: set[str] = set()


def secrets_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names say they are secret."""
    env = os.environ if environ is None else environ
    return [v for k, v in env.items() if SECRET_NAME.search(k) and len(v) >= MIN_SECRET_LENGTH]


def add_secrets(values: Iterable[str]) -> None:
    """Mask these values too, from now on, in everything this process writes."""
    _registered.update(v for v in values if len(v) >= MIN_SECRET_LENGTH)


def known_secrets() -> list[str]:
    """Every value masked right now: the environment's secrets and the registered ones."""
    return [*secrets_from_env(), *_registered]


class Masker:
    """Replaces secret values with a fixed mask.

    Without SECRETS it consults the environment and the registered values on every call, so
    a value registered after the masker was made is still masked.
    """

    def __init__(self, secrets: Iterable[str] | None = None) -> None:
        self._fixed = None if secrets is None else _longest_first(secrets)

    @property
    def secrets(self) -> list[str]:
        return self._fixed if self._fixed is not None else _longest_first(known_secrets())

    def __call__(self, text: str) -> str:
        # Longest first, so a secret that contains another is masked whole.
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def deep(self, value: Any) -> Any:
        """Mask every string inside a JSON-like value (keys included)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self.deep(k): self.deep(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.deep(v) for v in value]
        return value


def public_url(url: str | None) -> str | None:
    """URL without user:password@ (a checkout or build URL may carry a token)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _longest_first(secrets: Iterable[str]) -> list[str]:
    return sorted({s for s in secrets if s}, key=len, reverse=True)


mask = Masker()
"""The process-wide masker (environment + registered values)."""
