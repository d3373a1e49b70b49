"""Names that reach Kubernetes URLs, etcd keys, volume paths and nginx configs: their grammars.

Every grammar is written once, unanchored, and used two ways: `anchored(P)` for pydantic's
`pattern=` (published in the JSON Schema, where `$` ends the text) and `re.fullmatch(P, v)` in
Python. Never `re.match` with a `$`-anchored pattern: Python's `$` also matches before a
trailing newline, so `"app\\n"` would pass.
"""

from __future__ import annotations

import argparse
import re

DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
# A DNS-1123 subdomain (Kubernetes object names such as a claim): labels joined by dots.
DNS_SUBDOMAIN = rf"{DNS_LABEL}(\.{DNS_LABEL})*"
# A host name: DNS labels joined by dots (at most 253 characters in all, see is_domain).
DOMAIN = rf"({DNS_LABEL}\.)*{DNS_LABEL}"
# A Git commit id as a user may give it (7 to 40 hex digits); FULL_COMMIT when it must be whole.
COMMIT = r"[0-9a-f]{7,40}"
FULL_COMMIT = r"[0-9a-f]{40}"
# A C identifier: environment variable and build argument names.
ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# GlusterFS volume names: letters, digits, '-' and '_', at most 64 (glusterd's own limit).
GLUSTER_VOLUME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
# A relative path inside a checkout: plain components, no '.', '..' or empty ones.
REL_PATH = r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*"
# Docker's image reference grammar (distribution/reference), the one copy pysteps keeps.
IMAGE_HOST = r"[A-Za-z0-9.-]+(?::[0-9]+)?|\[[0-9A-Fa-f:]+\](?::[0-9]+)?"
IMAGE_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
IMAGE_DIGEST = r"sha256:[0-9a-f]{64}"
# A repository without tag: [host[:port]/]component(/component)*.
IMAGE_REPOSITORY = rf"(?:(?:{IMAGE_HOST})/)?{IMAGE_PATH_COMPONENT}(?:/{IMAGE_PATH_COMPONENT})*"
# A full reference: repository[:tag][@digest].
IMAGE_REFERENCE = rf"{IMAGE_REPOSITORY}(?::{IMAGE_TAG})?(?:@{IMAGE_DIGEST})?"
# Text that goes into a manifest as a value: anything printable, no control characters.
NO_CONTROL = r"[^\x00-\x1f\x7f]*"


def anchored(pattern: str) -> str:
    """PATTERN as a whole-string pattern for pydantic and JSON Schema (`$` ends the text there)."""
    return f"^(?:{pattern})$"


def is_dns_label(value: str) -> bool:
    return re.fullmatch(DNS_LABEL, value) is not None


def is_domain(value: str) -> bool:
    """VALUE is a lowercase host name: labels of at most 63 characters, 253 in all, no wildcard."""
    return len(value) <= 253 and re.fullmatch(DOMAIN, value) is not None


def is_commit(value: str, *, full: bool = False) -> bool:
    """VALUE is a lowercase hex Git commit id (40 digits when FULL, else 7 to 40)."""
    return re.fullmatch(FULL_COMMIT if full else COMMIT, value) is not None


def dns_label_argument(value: str) -> str:
    """argparse type: a DNS-1123 label, or a one-line error naming the fix (exit 2)."""
    if not is_dns_label(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a DNS-1123 label (lowercase letters, digits and '-', "
            "at most 63 characters)"
        )
    return value
