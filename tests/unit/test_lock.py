"""The app lock: expiry judged on the reader's own clock, conditional release, stop on loss."""

from __future__ import annotations

import pytest

from pysteps.errors import PreconditionError
from pysteps.lock import DeployLock, LockLost
from tests.unit.fakes import FakeKube


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lease_of(kube: FakeKube) -> dict:
    return kube.get("Lease", "team-a", "pysteps-deploy-hello")


def holder_with_a_skewed_clock(kube: FakeKube, renew_time: str) -> dict:
    """A lease written by another host whose wall clock is far from ours."""
    return kube.create(
        {
            "kind": "Lease",
            "metadata": {"name": "pysteps-deploy-hello", "namespace": "team-a"},
            "spec": {
                "holderIdentity": "job/other/7",
                "leaseDurationSeconds": 60,
                "acquireTime": renew_time,
                "renewTime": renew_time,
            },
        }
    )


def test_a_live_holder_whose_clock_is_behind_is_not_taken_over():
    kube, clock = FakeKube(), Clock()
    lease = holder_with_a_skewed_clock(kube, "2001-01-01T00:00:00.000000Z")
    mine = DeployLock(kube, "team-a", "hello", identity="me", clock=clock)
    for _ in range(5):
        assert mine.try_acquire() == "job/other/7"
        clock.now += 30
        lease["spec"]["renewTime"] = "2001-01-01T00:00:30.000000Z"  # the holder renews
        lease = kube.replace(lease)
    assert lease_of(kube)["spec"]["holderIdentity"] == "job/other/7"


def test_a_dead_holder_whose_clock_is_ahead_is_taken_over_after_one_duration_of_silence():
    kube, clock = FakeKube(), Clock()
    holder_with_a_skewed_clock(kube, "2199-01-01T00:00:00.000000Z")
    mine = DeployLock(kube, "team-a", "hello", identity="me", clock=clock)
    assert mine.try_acquire() == "job/other/7"
    clock.now += 59
    assert mine.try_acquire() == "job/other/7"
    clock.now += 1
    assert mine.try_acquire() is None
    assert lease_of(kube)["spec"]["holderIdentity"] == "me"


def test_release_never_deletes_a_lease_someone_else_took():
    kube, clock = FakeKube(), Clock()
    mine = DeployLock(kube, "team-a", "hello", identity="me", clock=clock)
    assert mine.try_acquire() is None
    stolen = lease_of(kube)
    stolen["spec"]["holderIdentity"] = "job/other/8"
    kube.replace(stolen)
    mine.release()
    assert lease_of(kube)["spec"]["holderIdentity"] == "job/other/8"


def test_release_is_a_delete_conditioned_on_the_lease_it_read():
    kube, clock = FakeKube(), Clock()
    mine = DeployLock(kube, "team-a", "hello", identity="me", clock=clock)
    assert mine.try_acquire() is None
    # Between release's read and its delete another command takes the lease over: the
    # delete's preconditions (uid, resourceVersion) no longer hold and nothing is deleted.
    real_get = kube.get

    def get_then_steal(kind, namespace, name):
        found = real_get(kind, namespace, name)
        if kind == "Lease" and found and found["spec"]["holderIdentity"] == "me":
            kube.objects[("Lease", "team-a", "pysteps-deploy-hello")]["metadata"][
                "resourceVersion"
            ] = "stolen"
        return found

    kube.get = get_then_steal
    mine.release()
    assert real_get("Lease", "team-a", "pysteps-deploy-hello") is not None


def test_a_holder_that_cannot_renew_stops_before_its_next_write():
    kube, clock = FakeKube(), Clock()
    mine = DeployLock(kube, "team-a", "hello", duration=60, identity="me", clock=clock)
    assert mine.try_acquire() is None
    mine.check()
    clock.now += 39
    mine.check()
    clock.now += 1  # two thirds of the lease without a successful renewal
    with pytest.raises(LockLost, match="could not be renewed"):
        mine.check()


def test_a_stolen_lock_is_noticed_at_the_next_check_and_renewal():
    kube, clock = FakeKube(), Clock()
    mine = DeployLock(kube, "team-a", "hello", identity="me", clock=clock)
    assert mine.try_acquire() is None
    stolen = lease_of(kube)
    stolen["spec"]["holderIdentity"] = "job/other/9"
    kube.replace(stolen)
    with pytest.raises(LockLost, match="taken by job/other/9"):
        mine.check()
    assert isinstance(LockLost("x"), PreconditionError)  # exit 3


def test_renewal_is_conditional_and_marks_the_loss():
    kube, clock = FakeKube(), Clock()
    mine = DeployLock(kube, "team-a", "hello", identity="me", clock=clock)
    assert mine.try_acquire() is None
    mine.renew()
    stolen = lease_of(kube)
    stolen["spec"]["holderIdentity"] = "job/other/10"
    kube.replace(stolen)
    mine.renew()  # conditioned on our resourceVersion: refused, never overwrites the thief
    assert lease_of(kube)["spec"]["holderIdentity"] == "job/other/10"
    with pytest.raises(LockLost):
        mine.check()


def test_the_guarded_client_checks_the_lock_before_every_write_only():
    from pysteps.lock import LockedKube

    kube, clock = FakeKube(), Clock()
    guard = LockedKube(kube)
    guard.create(
        {"kind": "Service", "metadata": {"name": "a", "namespace": "team-a"}, "spec": {"ports": []}}
    )
    mine = DeployLock(kube, "team-a", "hello", identity="me", clock=clock)
    assert mine.try_acquire() is None
    guard.lock = mine
    guard.patch("Service", "team-a", "a", {"metadata": {"labels": {"x": "1"}}})
    stolen = lease_of(kube)
    stolen["spec"]["holderIdentity"] = "job/other/11"
    kube.replace(stolen)
    assert guard.get("Service", "team-a", "a") is not None  # reads go on
    for write in (
        lambda: guard.patch("Service", "team-a", "a", {"metadata": {"labels": {"x": "2"}}}),
        lambda: guard.delete("Service", "team-a", "a"),
        lambda: guard.create({"kind": "Service", "metadata": {"name": "b", "namespace": "team-a"}}),
    ):
        with pytest.raises(LockLost):
            write()
    assert kube.get("Service", "team-a", "a")["metadata"]["labels"] == {"x": "1"}
