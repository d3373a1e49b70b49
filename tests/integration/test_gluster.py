"""The test bed's GlusterFS volume is real: what gfapi writes is listed and read back."""

from __future__ import annotations

import threading
import uuid

import pytest

from pysteps.clients.storage import GlusterStorage, _import_gfapi
from pysteps.errors import ServiceError
from tests.conftest import require

pytestmark = pytest.mark.integration


def test_file_written_through_gfapi_is_listed_and_read_back(testbed):
    host, volume = require(testbed, "PYSTEPS_GLUSTER_HOST", "PYSTEPS_GLUSTER_VOLUME")
    gfapi = _import_gfapi()
    vol = gfapi.Volume(host, volume)
    vol.mount()
    try:
        name = f"gluster-test-{uuid.uuid4().hex}"
        payload = f"hello {name}\n".encode() * 1000
        vol.makedirs(f"/{name}/sub")
        with vol.fopen(f"/{name}/sub/hello.txt", "wb") as f:
            f.write(payload)
        assert vol.listdir(f"/{name}/sub") == ["hello.txt"]
        assert name in vol.listdir("/")
        with vol.fopen(f"/{name}/sub/hello.txt", "rb") as f:
            assert f.read() == payload
        vol.rmtree(f"/{name}")
        assert name not in vol.listdir("/")
    finally:
        # glfs_fini waits 10 s on GlusterFS 10 (see GlusterStorage.close): not in the test's time.
        threading.Thread(target=vol.umount, daemon=True).start()


def test_storage_client_reads_what_it_wrote(testbed):
    host, volume = require(testbed, "PYSTEPS_GLUSTER_HOST", "PYSTEPS_GLUSTER_VOLUME")
    app = f"gluster-test-{uuid.uuid4().hex[:12]}"
    with GlusterStorage(host, volume) as storage:
        appdir = storage.app_dir(app).ensure()
        try:
            appdir.write_bytes("bin/run.sh", b"#!/bin/sh\necho hi\n", mode=0o755)
            assert appdir.listdir() == ["bin"]
            assert appdir.listdir("bin") == ["run.sh"]
            assert appdir.read_bytes("bin/run.sh") == b"#!/bin/sh\necho hi\n"
            assert appdir.file_mode("bin/run.sh") == 0o755
        finally:
            appdir.purge()
        assert not appdir.exists("bin")


def test_wrong_port_gives_one_clear_line(testbed):
    host, volume = require(testbed, "PYSTEPS_GLUSTER_HOST", "PYSTEPS_GLUSTER_VOLUME")
    with GlusterStorage(host, volume, port=1) as storage, pytest.raises(ServiceError) as err:
        storage.app_dir("anything").ensure()
    message = str(err.value)
    assert "\n" not in message
    assert f"{host}:1" in message and volume in message
    assert "gluster volume status" in message
