"""The platform etcd answers both APIs pysteps and confd use: v3 (JSON gateway) and v2 keys."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import require
from tests.integration import etcd_v3

pytestmark = pytest.mark.integration


def test_v3_key_written_is_read_back_and_deleted(testbed):
    (url,) = require(testbed, "PYSTEPS_ETCD_URL")
    key = f"/pysteps-test/v3/{uuid.uuid4().hex}"
    value = f'{{"marker": "{uuid.uuid4().hex}"}}'
    before = etcd_v3.put(url, key, value)
    try:
        assert etcd_v3.get(url, key) == value
        after = etcd_v3.put(url, key, value + " ")
        assert after > before  # a real store: every write moves the revision
        assert etcd_v3.get(url, key) == value + " "
    finally:
        assert etcd_v3.delete(url, key) == 1
    assert etcd_v3.get(url, key) is None


def test_v2_keys_api_answers_and_is_a_separate_key_space(testbed):
    (url,) = require(testbed, "PYSTEPS_ETCD_URL")
    name = uuid.uuid4().hex
    path = f"{url}/v2/keys/pysteps-test/v2/{name}"
    written = etcd_v3.SESSION.put(path, data={"value": f"v2-{name}"}, timeout=5)
    assert written.status_code in (200, 201), written.text[:300]
    try:
        read = etcd_v3.SESSION.get(path, timeout=5)
        assert read.status_code == 200
        assert read.json()["node"]["value"] == f"v2-{name}"
        # etcd 3.4 keeps v2 and v3 data apart: confd (v3) never sees a route written through v2.
        assert etcd_v3.get(url, f"/pysteps-test/v2/{name}") is None
    finally:
        etcd_v3.SESSION.delete(path, timeout=5)
    assert etcd_v3.SESSION.get(path, timeout=5).status_code == 404
