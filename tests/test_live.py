"""Live changes in-process, on SQLite and PostgreSQL: what is published after a commit,
what a socket's client is sent, and each bus carrying a change from one process's
services to another's.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import create_engine

from app import create_app
from dxc.access import ANONYMOUS, Principal
from dxc.access.index import store_objects
from dxc.auth.tokens import AccessClaims
from dxc.bus import local_bus, make_bus, polling_bus, postgres_bus
from dxc.bus.base import Bus, Change
from dxc.bus.commits import committing
from dxc.bus.local_bus import LocalBus
from dxc.bus.polling_bus import PollingBus
from dxc.bus.postgres_bus import PostgresBus
from dxc.bus.redis_bus import RedisBus
from dxc.manage import databases
from dxc.manage.importer import import_document
from dxc.protocol.live import SocketQuery, realm_set_hash
from dxc.realtime.feed import LiveFeed, RealmView
from dxc.services import Services
from dxc.storage import users
from dxc.storage.clock import utcnow
from dxc.storage.objects import ObjectStore, StoredObject
from tests.protocol_client import ALICE, BOB, Device, item

REDIS_URL = os.environ.get("DXC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def db_id(services) -> str:
    created = databases.create_database(services)
    import_document(services, created.db_id, {"demoUsers": {ALICE: {}, BOB: {}}})
    return created.db_id


@pytest.fixture
def published(services, monkeypatch) -> list[Change]:
    """What the sync service and the importer publish (after their commits)."""
    changes: list[Change] = []
    monkeypatch.setattr(services.bus, "publish", changes.append)
    return changes


@pytest.fixture
def device(app, services, db_id):
    def make(user: str | None = ALICE, identity: str = "device-1") -> Device:
        dev = Device(app.test_client(), services.settings.database_url_for(db_id), identity)
        if user:
            dev.login(user)
        return dev

    return make


def revision(answer: dict) -> str:
    return answer["serverRevision"]


# --- publishing -------------------------------------------------------------------------------


def test_a_committed_write_is_published_with_its_realms_and_client(device, db_id, published):
    alice = device()
    alice.sync()
    assert published == [], "a pull commits nothing"
    answer = alice.sync([alice.op("items", "insert", ["itm1"], "t1", values=[item("itm1")])])
    assert len(published) == 1
    change = published[0]
    assert (change.db_id, change.client_id, change.realms) == (db_id, "device-1", {ALICE})
    assert answer["serverRevision"] == f"{change.shard_id}:{change.rev}"
    assert not change.realm_sets


def test_a_new_realm_is_published_as_a_realm_set_change(device, published):
    alice = device()
    alice.sync()
    realm = {"realmId": "rlm~1", "name": "shared", "owner": ALICE}
    alice.sync([alice.op("realms", "insert", ["rlm~1"], "t1", values=[realm])])
    assert published[-1].realm_sets and published[-1].realms == {"rlm~1"}


def test_an_object_moving_out_of_a_realm_is_published_for_both_realms(device, published):
    alice = device()
    alice.sync()
    realm = {"realmId": "rlm~2", "name": "shared", "owner": ALICE}
    alice.sync(
        [
            alice.op("realms", "insert", ["rlm~2"], "t1", values=[realm]),
            alice.op("items", "insert", ["itm1"], "t2", values=[item("itm1")]),
        ]
    )
    alice.sync([alice.op("items", "update", ["itm1"], "t3", changeSpecs=[{"realmId": "rlm~2"}])])
    assert published[-1].realms == {ALICE, "rlm~2"}


def test_a_refused_write_publishes_nothing(device, published):
    anonymous = device(user=None)
    anonymous.sync()
    anonymous.sync([anonymous.op("items", "insert", ["itm1"], "t1", values=[item("itm1")])])
    assert published == []


def test_an_import_is_published(services, db_id, published):
    import_document(services, db_id, {"data": {"rlm-public": {"items": {"itmP": {"title": "p"}}}}})
    assert [(c.db_id, c.realms, c.client_id) for c in published] == [
        (db_id, {"rlm-public"}, None)
    ]


def test_a_write_is_published_once_committed_and_never_when_rolled_back(
    services, db_id, published
):
    shard = services.router.shard_for(db_id)
    row = StoredObject("items", "itmW", "rlm-public", None, 0, False, "{}")
    with pytest.raises(RuntimeError), committing(shard, db_id, services.bus) as write:
        row.rev = write.rev
        store_objects(write.store, [row])
        raise RuntimeError("refused after the write")
    assert published == []
    steps: list[str] = []
    with committing(
        shard, db_id, services.bus, before_news=lambda: steps.append(f"{len(published)} sent")
    ) as write:
        row.rev = write.rev
        store_objects(write.store, [row])
    assert steps == ["0 sent"] and [c.rev for c in published] == [row.rev]


def test_a_write_that_wrote_nothing_is_not_news(services, db_id, published):
    with committing(services.router.shard_for(db_id), db_id, services.bus) as write:
        assert write.rev > 0
    assert published == []


# --- what a client is sent (LiveFeed) ---------------------------------------------------------


@pytest.fixture
def feed(services) -> LiveFeed:
    return LiveFeed(services.control, services.router)


def test_a_changes_message_holds_exactly_what_a_pull_would_answer(device, feed, db_id):
    alice, other = device(), device(identity="device-2")
    alice.sync([alice.op("items", "insert", ["itm1"], "t1", values=[item("itm1", n=1)])])
    other.sync()
    before = revision(other.last_pull)
    view = feed.realm_view(db_id, Principal(ALICE))
    alice.sync(
        [
            alice.op("items", "insert", ["itm2"], "t2", values=[item("itm2", n=2)]),
            alice.op("items", "update", ["itm1"], "t3", changeSpecs=[{"n": 10}]),
        ]
    )
    alice.sync([alice.op("items", "delete", ["itm2"], "t4")])

    outcome = feed.catch_up(db_id, Principal(ALICE), before, view.hash)
    assert outcome.message is not None and not outcome.pull
    message = json.loads(outcome.message.text)
    pulled = other.sync()
    assert message["type"] == "changes"
    assert message["baseRev"] == before
    assert message["newRev"] == revision(pulled)
    assert message["realmSetHash"] == view.hash
    assert sorted(map(json.dumps, message["changes"])) == sorted(
        map(json.dumps, pulled["changes"])
    )
    assert {key for e in message["changes"] for m in e["muts"] for key in m["keys"]} == {
        "itm1",
        "itm2",
    }


def test_the_realm_set_hash_is_the_one_of_the_sync_answer(device, feed, db_id):
    answer = device().sync()
    view = feed.realm_view(db_id, Principal(ALICE))
    assert view.hash == realm_set_hash(answer["realms"], answer["inviteRealms"])
    anonymous = device(user=None).sync()
    assert feed.realm_view(db_id, ANONYMOUS).hash == realm_set_hash(anonymous["realms"])


def test_an_up_to_date_client_gets_nothing(device, feed, db_id):
    answer = device().sync()
    view = feed.realm_view(db_id, Principal(ALICE))
    outcome = feed.catch_up(db_id, Principal(ALICE), revision(answer), view.hash)
    assert outcome.message is None and not outcome.pull


def test_changes_the_client_cannot_see_are_not_sent(device, feed, db_id):
    bob = device(BOB, identity="bob")
    answer = bob.sync()
    alice = device()
    alice.sync([alice.op("items", "insert", ["itm1"], "t1", values=[item("itm1")])])
    view = feed.realm_view(db_id, Principal(BOB))
    outcome = feed.catch_up(db_id, Principal(BOB), revision(answer), view.hash)
    assert outcome.message is None and not outcome.pull


def test_a_client_with_another_realm_set_gets_no_changes(device, feed, db_id):
    answer = device().sync()
    outcome = feed.catch_up(db_id, Principal(ALICE), revision(answer), "an older hash")
    assert outcome.message is None
    assert outcome.view == RealmView((ALICE, "rlm-public"))


@pytest.mark.parametrize("rev", [None, "1:x", "20211015", "99:3"])
def test_a_revision_that_is_not_ours_makes_the_client_pull(device, feed, db_id, rev):
    device().sync()
    view = feed.realm_view(db_id, Principal(ALICE))
    assert feed.catch_up(db_id, Principal(ALICE), rev, view.hash).pull


def test_too_many_changes_for_one_message_make_the_client_pull(device, services, db_id):
    alice = device()
    answer = alice.sync()
    values = [item(f"itm{i}", text="x" * 100) for i in range(20)]
    alice.sync([alice.op("items", "insert", [v["id"] for v in values], "t1", values=values)])
    small = LiveFeed(services.control, services.router, max_chars=1000)
    view = small.realm_view(db_id, Principal(ALICE))
    assert small.catch_up(db_id, Principal(ALICE), revision(answer), view.hash).pull
    roomy = LiveFeed(services.control, services.router)
    assert roomy.catch_up(db_id, Principal(ALICE), revision(answer), view.hash).message


# --- the buses: a change crosses from one process's services to another's ---------------------


class Listener:
    def __init__(self, db_id: str) -> None:
        self.db_id = db_id
        self.received: list[Change] = []
        self.event = threading.Event()

    def deliver(self, change: Change) -> None:
        self.received.append(change)
        self.event.set()

    def databases(self) -> list[str]:
        return [self.db_id]

    def wait_for(self, predicate) -> Change:
        """The first change received that satisfies ``predicate`` (waits up to 10 s)."""
        for _ in range(100):
            found = [c for c in self.received if predicate(c)]
            if found:
                return found[0]
            self.event.wait(0.1)
            self.event.clear()
        raise AssertionError(f"no such change arrived; received: {self.received}")


@pytest.fixture
def other_process(settings) -> Iterator[Services]:
    """A second installation on the same databases, as another worker would have."""
    app = create_app(settings)
    yield app.extensions["dxc"]
    app.extensions["dxc"].control.dispose()


@pytest.fixture
def listening() -> Iterator:
    buses: list[Bus] = []

    def start(bus: Bus, db_id: str) -> Listener:
        listener = Listener(db_id)
        bus.start(listener)
        buses.append(bus)
        # Every listener says "anything may have changed" once subscribed.
        listener.wait_for(lambda c: c.realms is None and c.rev is None)
        return listener

    yield start
    for bus in buses:
        bus.stop()


def write(services: Services, db_id: str, key: str) -> None:
    import_document(services, db_id, {"data": {"rlm-public": {"items": {key: {"title": key}}}}})


def test_the_polling_bus_sees_commits_of_other_processes(
    services, other_process, db_id, listening, monkeypatch
):
    monkeypatch.setattr(polling_bus, "POLL_SECONDS", 0.05)
    listener = listening(PollingBus(services.router), db_id)
    write(other_process, db_id, "itmA")
    rev = head(services, db_id)
    assert rev > 0
    change = listener.wait_for(lambda c: c.rev == rev)
    assert (change.db_id, change.realms, change.origin) == (db_id, None, 0)


def test_the_polling_bus_delivers_its_own_commits_at_once_with_their_realms(
    services, db_id, listening
):
    bus = PollingBus(services.router)
    listener = listening(bus, db_id)
    bus.publish(Change.committed(db_id, 1, 99, {"rlm-public"}, {"items"}, "c"))
    assert listener.received[-1].realms == {"rlm-public"}


def test_the_local_bus_carries_a_change_to_other_processes_at_once(
    services, other_process, db_id, listening, tmp_path, monkeypatch
):
    """The embedded default: a datagram, not the next poll, wakes the other worker."""
    monkeypatch.setattr(local_bus, "SAFETY_POLL_SECONDS", 3600.0)  # no poll can help
    listener = listening(LocalBus(services.router, tmp_path), db_id)
    sent = Change.committed(db_id, 1, 7, {"rlm-public", ALICE}, {"items"}, "client-1")
    LocalBus(other_process.router, tmp_path).publish(sent)  # a process that does not listen
    assert listener.wait_for(lambda c: c.rev == 7) == sent


def test_the_local_bus_forgets_the_sockets_of_processes_that_are_gone(
    services, db_id, tmp_path
):
    gone = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    gone.bind(str(tmp_path / "1-dead.sock"))
    gone.close()  # its file stays, as after a killed worker
    LocalBus(services.router, tmp_path).publish(Change.anything(db_id, 1, 3))
    assert not (tmp_path / "1-dead.sock").exists()


def test_the_local_bus_tells_nothing_through_a_folder_others_may_enter(
    services, db_id, tmp_path, listening, monkeypatch
):
    """Changes name users: a folder another user made (or opened) is not used."""
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    eavesdropper = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    eavesdropper.bind(str(folder / "1-spy.sock"))
    eavesdropper.setblocking(False)
    LocalBus(services.router, folder).publish(Change.anything(db_id, 1, 3))
    with pytest.raises(BlockingIOError):
        eavesdropper.recv(100)
    eavesdropper.close()
    monkeypatch.setattr(polling_bus, "POLL_SECONDS", 0.05)
    listener = listening(LocalBus(services.router, folder), db_id)  # it polls instead
    write(services, db_id, "itmQ")
    listener.wait_for(lambda c: c.rev == head(services, db_id))


def test_the_embedded_default_uses_the_local_bus(services, tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/dxc.sqlite")
    bus = make_bus(services.settings, engine, services.router)
    assert isinstance(bus, LocalBus)
    assert bus.folder == local_bus.folder_for(f"{tmp_path}/dxc.sqlite")


@pytest.mark.parametrize("backend", ["postgresql"])
def test_the_postgres_bus_carries_a_change_between_processes(
    services, other_process, db_id, listening
):
    listener = listening(PostgresBus(services.control, services.router), db_id)
    sent = Change.committed(db_id, 1, 5, {"rlm-public", ALICE}, {"items"}, "client-1")
    PostgresBus(other_process.control, other_process.router).publish(sent)
    assert listener.wait_for(lambda c: c.rev == 5) == sent


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_sync_notifies_after_its_commit(
    services, other_process, db_id, listening, device, monkeypatch
):
    """The NOTIFY goes out once the write is visible (not inside the writer's
    transaction); a refused write notifies nobody."""
    bus = PostgresBus(services.control, services.router)
    monkeypatch.setattr(services.sync, "bus", bus)
    notify, seen_at_notify = postgres_bus._notify, []

    def notify_seeing_the_head(connection, changes):
        seen_at_notify.append(head(other_process, db_id))
        notify(connection, changes)

    monkeypatch.setattr(postgres_bus, "_notify", notify_seeing_the_head)
    listener = listening(PostgresBus(other_process.control, other_process.router), db_id)
    alice = device()
    refused = alice.op("items", "insert", ["itm0"], "tx0", values=[item("itm0", realm=BOB)])
    assert alice.sync([refused])["rejections"]
    assert seen_at_notify == []
    alice.sync([alice.op("items", "insert", ["itm1"], "tx1", values=[item("itm1")])])
    rev = head(services, db_id)
    change = listener.wait_for(lambda c: c.rev is not None)
    assert (change.rev, change.realms, change.client_id) == (rev, {ALICE}, "device-1")
    assert seen_at_notify == [rev]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_the_postgres_bus_polls_for_a_change_whose_notification_was_lost(
    services, other_process, db_id, listening, monkeypatch
):
    """A worker that died between its commit and its NOTIFY: the listeners' safety poll."""
    monkeypatch.setattr(postgres_bus, "SAFETY_POLL_SECONDS", 0.2)
    listener = listening(PostgresBus(services.control, services.router), db_id)
    monkeypatch.setattr(other_process.bus, "_send", lambda change: None)  # lost
    write(other_process, db_id, "itmL")
    rev = head(services, db_id)
    change = listener.wait_for(lambda c: c.rev == rev)
    assert (change.realms, change.origin) == (None, 0)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_the_postgres_bus_drops_the_realms_of_a_change_too_big_to_notify(
    services, other_process, db_id, listening
):
    listener = listening(PostgresBus(services.control, services.router), db_id)
    realms = {f"rlm~{i:05d}" for i in range(1000)}
    other = PostgresBus(other_process.control, other_process.router)
    other.publish(Change.committed(db_id, 1, 6, realms, {"items"}))
    assert listener.wait_for(lambda c: c.rev == 6).realms is None


@pytest.mark.parametrize("backend", ["sqlite"])  # Redis does not depend on the database
def test_the_redis_bus_carries_a_change_between_processes(db_id, listening):
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    listener = listening(RedisBus(REDIS_URL), db_id)
    sent = Change.committed(db_id, 1, 7, {"rlm-public"}, {"members"}, "client-1")
    RedisBus(REDIS_URL).publish(sent)
    assert listener.wait_for(lambda c: c.rev == 7) == sent


def test_a_bus_that_cannot_publish_does_not_fail_the_commit(device, services, monkeypatch):
    def broken(change):
        raise ConnectionError("broker down")

    monkeypatch.setattr(services.bus, "_send", broken)
    alice, phone = device(), device(identity="phone")
    alice.sync()
    answer = alice.sync([alice.op("items", "insert", ["itm1"], "t1", values=[item("itm1")])])
    assert answer["rejections"] == []
    phone.sync()
    assert phone.state["items"] == {"itm1": item("itm1")}


def head(services: Services, db_id: str) -> int:
    with services.router.shard_for(db_id).transaction(read_only=True) as connection:
        return ObjectStore(connection, db_id).current_revision()


# --- deactivated users ------------------------------------------------------------------------


class ClosingSocket:
    """Keeps what the server sends; the client says nothing and waits for the close."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.closed = threading.Event()

    def send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    def receive(self, timeout: float | None = None) -> None:
        if not self.closed.wait(timeout=5 if timeout is None else min(timeout, 5)):
            raise TimeoutError

    def close(self) -> None:
        self.closed.set()


def test_a_socket_of_a_deactivated_user_is_refused(services, db_id, monkeypatch):
    monkeypatch.setattr(services.bus, "start", lambda hub: None)
    with services.control.begin() as connection:
        users.update_user(connection, db_id, ALICE, deactivated=utcnow())
    token = services.signer.issue(
        db_id, AccessClaims(ALICE, frozenset({"ACCESS_DB"}), "demo")
    ).token
    socket = ClosingSocket()
    services.live.serve(socket, db_id, SocketQuery(3, None, None, None, "c1", "4.4.14", token))
    assert socket.sent == [{"type": "error", "error": "Account deactivated"}]
    assert socket.closed.is_set()
