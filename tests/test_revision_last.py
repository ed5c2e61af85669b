"""A sync takes its revision last (PostgreSQL), and a write overtaken is applied again.

Writers of one database overlap until their commits (``dxc.bus.commits``), so a
writer may read an object that another one changes and commits before it
stores its own version. Such a write must not be stored over the other one
(a lost update): at its commit it sees that the object changed, rolls back and
runs again on the new version. Here the other writer is run at the worst
moment, right after the first one read the object.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dxc.bus import commits
from dxc.manage import databases
from dxc.manage.importer import import_document
from dxc.storage.objects import ObjectStore
from dxc.sync import service as sync_service
from tests.protocol_client import ALICE, BOB, Device, item
from tests.test_access_http import REALM, accept, share

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])


@pytest.fixture
def devices(app) -> tuple[Device, Device]:
    """Two devices of Alice, both holding ``itm1``."""
    services = app.extensions["dxc"]
    created = databases.create_database(services)
    import_document(services, created.db_id, {"demoUsers": {ALICE: {}}})
    first, second = (Device(app.test_client(), created.url, f"device-{n}") for n in (1, 2))
    for device in (first, second):
        device.login(ALICE)
        device.sync()
    first.sync([first.op("items", "insert", ["itm1"], "tx0", values=[item("itm1")])])
    second.sync()
    return first, second


class Overtaker:
    """Counts the attempts of the syncs under test (``SyncService._apply_once``) and
    runs another device's sync inside the first ``times`` of them, at a chosen moment;
    the other device's own syncs are neither counted nor interrupted."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, times: int, overtake: Callable[[int], None]
    ) -> None:
        self.attempts = 0
        self.times = times
        self.overtake = overtake
        self._overtaken_in: int | None = None
        self._running = False
        original = sync_service.SyncService._apply_once

        def apply_once(service, *args, **kwargs):  # type: ignore[no-untyped-def]
            if not self._running:
                self.attempts += 1
            return original(service, *args, **kwargs)

        monkeypatch.setattr(sync_service.SyncService, "_apply_once", apply_once)
        self.monkeypatch = monkeypatch

    def after_reading(self, key: str) -> None:
        """Overtake right after an attempt's first read of ``key``."""
        original = ObjectStore.get_many

        def get_many(store: ObjectStore, tbl: str, keys):  # type: ignore[no-untyped-def]
            found = original(store, tbl, keys)
            if key in keys:
                self._now()
            return found

        self.monkeypatch.setattr(ObjectStore, "get_many", get_many)

    def before_commit(self) -> None:
        """Overtake when an attempt has done everything but taking its revision."""
        original = commits.Write.take_revision

        def take_revision(write: commits.Write) -> None:
            self._now()
            original(write)

        self.monkeypatch.setattr(commits.Write, "take_revision", take_revision)

    def _now(self) -> None:
        if self._running or self.attempts > self.times or self._overtaken_in == self.attempts:
            return
        self._overtaken_in, self._running = self.attempts, True
        try:
            self.overtake(self.attempts)
        finally:
            self._running = False


def test_an_update_overtaken_after_its_read_is_applied_again_on_the_new_version(
    devices, monkeypatch
):
    first, second = devices

    def other_device_writes(n: int) -> None:
        second.sync([second.op("items", "update", ["itm1"], f"o{n}", changeSpecs=[{"done": True}])])

    overtaker = Overtaker(monkeypatch, 1, other_device_writes)
    overtaker.after_reading("itm1")
    first.sync([first.op("items", "update", ["itm1"], "tx1", changeSpecs=[{"title": "mine"}])])

    assert overtaker.attempts == 2  # read, overtaken, rolled back, read again
    second.sync()
    for device in (first, second):
        assert device.state["items"]["itm1"]["title"] == "mine"
        assert device.state["items"]["itm1"]["done"] is True  # not lost


def test_a_write_overtaken_every_time_ends_holding_the_revision_lock(devices, monkeypatch):
    first, second = devices

    def other_device_writes(n: int) -> None:
        second.sync(
            [second.op("items", "update", ["itm1"], f"o{n}", changeSpecs=[{f"p{n}": n}])]
        )

    overtakes = sync_service.OVERTAKEN_RETRIES
    overtaker = Overtaker(monkeypatch, overtakes, other_device_writes)
    overtaker.after_reading("itm1")
    first.sync([first.op("items", "update", ["itm1"], "tx1", changeSpecs=[{"title": "mine"}])])

    # Every attempt with the revision taken last was overtaken; the last one, holding
    # the lock from its start, could not be (an overtaking write would wait for it).
    assert overtaker.attempts == overtakes + 1
    second.sync()
    expected = {"title": "mine", **{f"p{n}": n for n in range(1, overtakes + 1)}}
    for device in (first, second):
        stored = device.state["items"]["itm1"]
        assert {name: stored.get(name) for name in expected} == expected


def test_a_write_of_other_objects_is_not_applied_again(devices, monkeypatch):
    first, second = devices

    def other_device_inserts(n: int) -> None:
        key = f"itmother{n}"
        second.sync([second.op("items", "insert", [key], f"o{n}", values=[item(key)])])

    overtaker = Overtaker(monkeypatch, 1, other_device_inserts)
    overtaker.after_reading("itm1")
    first.sync([first.op("items", "update", ["itm1"], "tx1", changeSpecs=[{"title": "mine"}])])

    assert overtaker.attempts == 1  # what the other device wrote does not touch what it read
    assert first.state["items"]["itm1"]["title"] == "mine"
    assert "itmother1" in first.state["items"]


def test_a_write_whose_rights_were_revoked_meanwhile_is_judged_again(
    mail_app, monkeypatch, backend
):
    """What a write read without writing it (here: the member row that gives the
    right) is checked at its commit too."""
    services = mail_app.extensions["dxc"]
    created = databases.create_database(services)
    import_document(services, created.db_id, {"demoUsers": {ALICE: {}, BOB: {}}})
    alice, bob = (Device(mail_app.test_client(), created.url, user) for user in (ALICE, BOB))
    for device in (alice, bob):
        device.login(device.identity)
        device.sync()
    share(alice)
    accept(bob)
    alice.sync()

    def alice_removes_bob(n: int) -> None:
        alice.sync([alice.op("members", "delete", ["mmbBob"], f"kick{n}")])

    overtaker = Overtaker(monkeypatch, 1, alice_removes_bob)
    overtaker.before_commit()
    mine = item("itmB", BOB, REALM)
    answer = bob.sync([bob.op("items", "insert", ["itmB"], "tx1", values=[mine])])

    assert overtaker.attempts == 2  # judged again after the member row changed
    assert [r["txid"] for r in answer["rejections"]] == ["tx1"]
    alice.sync()
    assert "itmB" not in alice.state.get("items", {})
