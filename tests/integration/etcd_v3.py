"""A few calls to etcd's v3 JSON gateway (keys and values base64 in JSON), for tests only.

Kept apart from pysteps' own client on purpose: tests that check the platform must not depend
on the code under test to set it up.
"""

from __future__ import annotations

import base64
from typing import Any

import requests

# Loopback only: never let an HTTP(S)_PROXY from the environment route test traffic elsewhere.
SESSION = requests.Session()
SESSION.trust_env = False


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def call(etcd_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST BODY to /v3/PATH; a non-200 answer fails with etcd's own words."""
    resp = SESSION.post(f"{etcd_url.rstrip('/')}/v3/{path}", json=body, timeout=5)
    assert resp.status_code == 200, f"etcd {path}: {resp.status_code} {resp.text[:300]}"
    return dict(resp.json())


def put(etcd_url: str, key: str, value: str) -> int:
    """Write KEY=VALUE; return the store's revision after the write."""
    return int(
        call(etcd_url, "kv/put", {"key": b64(key), "value": b64(value)})["header"]["revision"]
    )


def get(etcd_url: str, key: str) -> str | None:
    """The value of KEY, or None when it does not exist."""
    kvs = call(etcd_url, "kv/range", {"key": b64(key)}).get("kvs") or []
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


def delete(etcd_url: str, key: str) -> int:
    """Delete KEY; return how many keys went."""
    return int(call(etcd_url, "kv/deleterange", {"key": b64(key)}).get("deleted", 0))
