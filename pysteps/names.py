"""Names that reach Kubernetes URLs, etcd keys and volume paths: checked before any use."""

from __future__ import annotations

import argparse
import re

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_LABEL_RE = re.compile(DNS1123_LABEL)


def is_dns_label(value: str) -> bool:
    return bool(_LABEL_RE.match(value))


def dns_label_argument(value: str) -> str:
    """argparse type: a DNS-1123 label, or a one-line error naming the fix (exit 2)."""
    if not is_dns_label(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a DNS-1123 label (lowercase letters, digits and '-', "
            "at most 63 characters)"
        )
    return value
