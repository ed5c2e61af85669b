"""The /changes channel without a server: wire format, realm-set hash, hub routing, sessions."""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import threading
import time

import pytest

from dxc.access import ANONYMOUS, Principal
from dxc.bus.base import Change
from dxc.protocol import live
from dxc.protocol.live import Ping, Ready, SocketQuery, parse_client_message, realm_set_hash
from dxc.realtime.feed import CatchUp, LiveFeed, RealmView
from dxc.realtime.hub import Hub
from dxc.realtime.session import LiveSession, SocketClosed, realm_messages

# --- the realm-set hash (auth-and-websocket.md §5.6, sync.md §6.5) ----------------------------


@pytest.mark.parametrize(
    ("realms", "invites", "expected"),
    [
        ([], [], "l9Fw4VUO7kr8CvBlt4zaMCqXZ0w="),
        (["rlm-public"], [], "sg27byWFLg+G3UZX+t2nAA6YHjs="),
        (["rlm-public", "foo@demo.local"], [], "B2YSUeaIJa57otsVYmObTxq5lWA="),
        (
            ["rlm-public", "foo@demo.local", "rlm~01abc"],
            ["rlm~02xyz"],
            "RlccyNzxsKjHw6zp9t0pdbeX6ps=",
        ),
        (["rlm-public", "usr1"], [], "OgGuCH3QZwwG77+fwQkkE3WMlkU="),
    ],
)
def test_realm_set_hash_matches_the_spec_vectors(realms, invites, expected):
    assert realm_set_hash(realms, invites) == expected


def test_realm_set_hash_ignores_the_order_of_the_lists():
    assert realm_set_hash(["b", "a"], ["c"]) == realm_set_hash(["a", "b"], ["c"])


def test_realm_set_hash_sorts_like_javascript():
    # U+1F600 is above U+FF5E in code points (Python's order) but below it in UTF-16
    # code units (0xD83D 0xDE00), which is how JavaScript compares strings.
    js_order = ["\U0001f600", "\uff5e"]
    text = json.dumps(
        [{"realmId": r, "accepted": True} for r in js_order],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    expected = base64.b64encode(hashlib.sha1(text.encode()).digest()).decode()
    assert sorted(js_order) != js_order
    assert realm_set_hash(sorted(js_order)) == expected


def test_realm_set_hash_escapes_lone_surrogates_as_json_stringify_does():
    text = '[{"realmId":"a\\ud800","accepted":true}]'
    assert realm_set_hash(["a\ud800"]) == base64.b64encode(
        hashlib.sha1(text.encode()).digest()
    ).decode()


# --- the query and the messages ---------------------------------------------------------------


def test_the_query_of_the_real_client_is_read():
    query = SocketQuery.parse(
        {
            "v": "3",
            "rev": "1:5",
            "yrev": "1:4",
            "realmsHash": "sg27byWFLg+G3UZX+t2nAA6YHjs=",
            "clientId": "XiZJpBDyzLDsRaAhdj69cg==",
            "dxcv": "4.4.14",
            "token": "eyJ",
        }
    )
    assert query == SocketQuery(
        3, "1:5", "1:4", "sg27byWFLg+G3UZX+t2nAA6YHjs=", "XiZJpBDyzLDsRaAhdj69cg==", "4.4.14", "eyJ"
    )


def test_an_anonymous_old_client_has_no_token_and_version_1():
    query = SocketQuery.parse({"realmsHash": "x", "clientId": "c", "dxcv": "1.0"})
    assert (query.version, query.token, query.rev) == (1, None, None)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ('{"type":"ping"}', Ping()),
        ('{"type":"ready","rev":"1:3","realmSetHash":"h"}', Ready("1:3", "h")),
        ('{"type":"ready","rev":{"$t":"bigint","v":"3"},"realmSetHash":"h"}', Ready(None, "h")),
        ('{"type":"ready"}', Ready(None, None)),
        ('{"type":"rev","rev":"1"}', None),
        ("not json", None),
        ("[1]", None),
        (b"\x03u-c", None),
    ],
)
def test_client_messages(frame, expected):
    assert parse_client_message(frame) == expected


def test_server_messages_are_the_shapes_the_client_dispatches_on():
    assert json.loads(live.pong().text) == {"type": "pong"}
    assert json.loads(live.error("Bad").text) == {"type": "error", "error": "Bad"}
    assert json.loads(live.token_expired().text) == {"type": "token-expired"}
    assert json.loads(live.realms_changed("h").text) == {
        "type": "realms-changed",
        "realmsHash": "h",
    }
    for build, kind in [
        (live.realm_added, "realm-added"),
        (live.realm_accepted, "realm-accepted"),
        (live.realm_removed, "realm-removed"),
    ]:
        message = build("rlm~1")
        assert message.kind == kind
        assert json.loads(message.text) == {"type": kind, "realm": "rlm~1"}


def test_a_changes_message_carries_the_entries_verbatim():
    entry = '{"table":"items","muts":[{"type":"upsert","keys":["k"],"values":[{"$$a":1}]}]}'
    message = live.changes("1:4", "1:6", "h", [entry, entry])
    assert message.kind == "changes"
    assert message.text == (
        '{"type":"changes","baseRev":"1:4","newRev":"1:6","realmSetHash":"h","changes":['
        + entry + "," + entry + "]}"
    )
    assert json.loads(live.changes("1:4", "1:6", "h", []).text)["changes"] == []


# --- change notifications and the hub ---------------------------------------------------------


def test_a_change_survives_its_trip_through_a_broker():
    change = Change.committed("db1", 1, 7, {"rlm-public", "u@x"}, {"items", "realms"}, "client")
    assert change.realm_sets
    assert Change.from_json(change.to_json()) == change
    dropped = Change.from_json(change.to_json(drop_realms=True))
    assert dropped.realms is None and dropped.rev == 7
    assert not Change.committed("db1", 1, 8, {"r"}, {"items"}).realm_sets


@pytest.mark.parametrize("text", ["", "{}", '{"db":"x"}', "[]", '{"db":"x","realms":[],"rev":"z"}'])
def test_a_malformed_notification_is_ignored(text):
    assert Change.from_json(text) is None


class Recorder:
    def __init__(self) -> None:
        self.changes: list[Change] = []

    def notify(self, change: Change) -> None:
        self.changes.append(change)


def test_the_hub_wakes_only_the_sockets_that_see_a_realm():
    hub = Hub()
    alice, bob, anonymous, elsewhere = Recorder(), Recorder(), Recorder(), Recorder()
    hub.subscribe(alice, "db1", ["rlm-public", "alice"])
    hub.subscribe(bob, "db1", ["rlm-public", "bob"])
    hub.subscribe(anonymous, "db1", ["rlm-public"])
    hub.subscribe(elsewhere, "db2", ["rlm-public", "alice"])

    assert hub.deliver(Change.committed("db1", 1, 2, {"alice"}, {"items"})) == 1
    assert hub.deliver(Change.committed("db1", 1, 3, {"rlm-public"}, {"items"})) == 3
    assert hub.deliver(Change.committed("db1", 1, 4, {"carol"}, {"items"})) == 0
    assert [c.rev for c in alice.changes] == [2, 3]
    assert [c.rev for c in bob.changes] == [3]
    assert [c.rev for c in anonymous.changes] == [3]
    assert elsewhere.changes == []


def test_realm_set_changes_and_unknown_realms_wake_every_socket_of_the_database():
    hub = Hub()
    alice, bob, elsewhere = Recorder(), Recorder(), Recorder()
    hub.subscribe(alice, "db1", ["alice"])
    hub.subscribe(bob, "db1", ["bob"])
    hub.subscribe(elsewhere, "db2", ["alice"])
    assert hub.deliver(Change.committed("db1", 1, 2, {"rlm~new"}, {"realms"})) == 2
    assert hub.deliver(Change.anything("db1")) == 2
    assert elsewhere.changes == []


def test_resubscribing_replaces_the_realms_and_unsubscribing_forgets_the_socket():
    hub = Hub()
    alice = Recorder()
    hub.subscribe(alice, "db1", ["alice", "rlm~old"])
    hub.subscribe(alice, "db1", ["alice", "rlm~new"])
    assert hub.deliver(Change.committed("db1", 1, 2, {"rlm~old"}, {"items"})) == 0
    assert hub.deliver(Change.committed("db1", 1, 3, {"rlm~new"}, {"items"})) == 1
    assert hub.databases() == ["db1"] and len(hub) == 1
    hub.unsubscribe(alice)
    assert hub.deliver(Change.anything("db1")) == 0
    assert hub.databases() == [] and len(hub) == 0


# --- naming realm-set differences -------------------------------------------------------------


def test_realm_differences_are_named_when_the_client_holds_the_last_known_set():
    known = RealmView(("alice", "rlm-public", "rlm~gone"), ("rlm~invited", "rlm~declined"))
    current = RealmView(("alice", "rlm-public", "rlm~invited", "rlm~mine"), ("rlm~new-invite",))
    messages = realm_messages(known, current, known.hash)
    assert [(m.kind, json.loads(m.text)["realm"]) for m in messages] == [
        ("realm-accepted", "rlm~invited"),
        ("realm-added", "rlm~mine"),
        ("realm-added", "rlm~new-invite"),
        ("realm-removed", "rlm~declined"),
        ("realm-removed", "rlm~gone"),
    ]


def test_an_unknown_realm_set_is_answered_with_realms_changed():
    known = RealmView(("alice", "rlm-public"))
    current = RealmView(("alice", "rlm-public", "rlm~mine"))
    for hint in (None, "someone else's hash"):
        messages = realm_messages(known, current, hint)
        assert [json.loads(m.text) for m in messages] == [
            {"type": "realms-changed", "realmsHash": current.hash}
        ]
    assert realm_messages(None, current, known.hash)[0].kind == "realms-changed"


# --- sessions, with a fake socket and a fake feed ---------------------------------------------

PUBLIC = RealmView(("rlm-public",))
ALICE = RealmView(("alice", "rlm-public"))


class FakeSocket:
    def __init__(self) -> None:
        self.incoming: queue.Queue[str | bytes | None] = queue.Queue()
        self.sent: queue.Queue[dict] = queue.Queue()
        self.closed = False

    def send(self, text: str) -> None:
        if self.closed:
            raise SocketClosed
        self.sent.put(json.loads(text))

    def receive(self, timeout: float | None = None) -> str | bytes | None:
        try:
            return self.incoming.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None

    def close(self) -> None:
        self.closed = True
        self.incoming.put(None)

    def next(self) -> dict:
        return self.sent.get(timeout=5)

    def nothing_more(self) -> bool:
        return self.sent.empty()


class FakeFeed:
    """Answers like LiveFeed from a scripted head revision, realm view and pending change."""

    def __init__(self, view: RealmView) -> None:
        self.view = view
        self.head = "1:1"
        self.calls: list[tuple[str | None, str | None]] = []
        self.checked = threading.Event()

    def realm_view(self, db_id: str, principal: Principal) -> RealmView:
        return self.view

    def catch_up(self, db_id, principal, client_rev, client_hash, heard=None) -> CatchUp:
        self.calls.append((client_rev, client_hash))
        self.checked.set()
        if client_hash != self.view.hash:
            return CatchUp(self.view)
        if client_rev is None or not client_rev.startswith("1:"):
            return CatchUp(self.view, pull=True)
        if client_rev == self.head:
            return CatchUp(self.view)
        return CatchUp(self.view, live.changes(client_rev, self.head, self.view.hash, []))


class Running:
    """A session served in a thread, as a gevent worker serves it in a greenlet."""

    def __init__(
        self, feed: FakeFeed, principal=ANONYMOUS, client_id="me", hub=None, **options
    ) -> None:
        """``hub``: the sessions of one process share theirs (default: a hub of its own)."""
        self.socket = FakeSocket()
        self.feed = feed
        self.hub = Hub() if hub is None else hub
        self.session = LiveSession(
            self.socket,
            feed,
            self.hub,
            "db1",
            principal,
            SocketQuery(3, "1:0", None, "stale", client_id, "4.4.14", None),
            **options,
        )
        self.unexpected: list[dict] = []
        self.thread = threading.Thread(target=self.session.run, daemon=True)
        self.thread.start()

    def say(self, message: dict | bytes) -> None:
        self.socket.incoming.put(message if isinstance(message, bytes) else json.dumps(message))

    def ready(self, rev: str, realms_hash: str) -> None:
        self.say({"type": "ready", "rev": rev, "realmSetHash": realms_hash})

    def settle(self) -> None:
        """Wait until the session has handled everything said so far (a ping round trip)."""
        self.say({"type": "ping"})
        while (message := self.socket.next())["type"] != "pong":
            self.unexpected.append(message)

    def close(self) -> None:
        self.socket.close()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()


@pytest.fixture
def running():
    sessions: list[Running] = []

    def start(feed: FakeFeed, **options) -> Running:
        session = Running(feed, **options)
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.close()
    for session in sessions:  # once all closed: some share a hub
        assert len(session.hub) == 0, "a closed session must leave the hub"


def test_ping_is_answered_with_pong(running):
    session = running(FakeFeed(PUBLIC))
    session.say({"type": "ping"})
    assert session.socket.next() == {"type": "pong"}


def test_a_stale_realm_set_makes_the_client_pull(running):
    session = running(FakeFeed(PUBLIC))
    session.ready("1:0", "not the hash")
    assert session.socket.next() == {"type": "realms-changed", "realmsHash": PUBLIC.hash}


def test_a_realm_added_while_connected_is_named(running):
    feed = FakeFeed(ALICE)
    session = running(feed, principal=Principal("alice"))
    session.ready("1:1", ALICE.hash)
    session.settle()
    feed.view = RealmView(("alice", "rlm-public", "rlm~shared"))
    session.session.notify(Change.committed("db1", 1, 2, {"rlm~shared"}, {"realms"}))
    assert session.socket.next() == {"type": "realm-added", "realm": "rlm~shared"}


def test_a_ready_client_gets_the_changes_after_its_revision(running):
    feed = FakeFeed(PUBLIC)
    feed.head = "1:3"
    session = running(feed)
    session.ready("1:1", PUBLIC.hash)
    message = session.socket.next()
    assert (message["type"], message["baseRev"], message["newRev"]) == ("changes", "1:1", "1:3")
    assert message["realmSetHash"] == PUBLIC.hash


def test_a_revision_of_another_server_makes_the_client_pull(running):
    session = running(FakeFeed(PUBLIC))
    session.ready("20211015-abc", PUBLIC.hash)
    assert session.socket.next()["type"] == "realms-changed"


def test_an_up_to_date_client_is_told_about_a_change_and_nothing_before(running):
    feed = FakeFeed(PUBLIC)
    session = running(feed)
    session.ready("1:1", PUBLIC.hash)
    session.settle()
    assert session.unexpected == []
    feed.head = "1:2"
    session.session.notify(Change.committed("db1", 1, 2, {"rlm-public"}, {"items"}))
    assert session.socket.next()["newRev"] == "1:2"


def test_changes_wait_for_the_next_ready(running):
    feed = FakeFeed(PUBLIC)
    feed.head = "1:2"
    session = running(feed)
    session.ready("1:1", PUBLIC.hash)
    assert session.socket.next()["newRev"] == "1:2"
    feed.head = "1:3"  # committed while the client applies the first message
    session.session.notify(Change.committed("db1", 1, 3, {"rlm-public"}, {"items"}))
    session.settle()
    assert session.unexpected == [], "nothing may be sent before the client is ready again"
    session.ready("1:2", PUBLIC.hash)
    message = session.socket.next()
    assert (message["baseRev"], message["newRev"]) == ("1:2", "1:3")


def test_the_clients_own_sync_advances_its_revision_instead_of_echoing_it(running):
    feed = FakeFeed(PUBLIC)
    session = running(feed, client_id="me")
    session.ready("1:1", PUBLIC.hash)
    session.settle()
    feed.head = "1:2"
    session.session.notify(Change.committed("db1", 1, 2, {"rlm-public"}, {"items"}, "me"))
    session.settle()
    assert session.unexpected == [], "the client's /sync answer already brought it to 1:2"
    feed.head = "1:3"
    session.session.notify(Change.committed("db1", 1, 3, {"rlm-public"}, {"items"}, "other"))
    message = session.socket.next()
    assert (message["baseRev"], message["newRev"]) == ("1:2", "1:3")


class SharingFeed(LiveFeed):
    """LiveFeed's sharing of answers, over FakeFeed's scripted database; counts the reads."""

    def __init__(self, view: RealmView) -> None:
        super().__init__(control=None, router=None)
        self.database = FakeFeed(view)
        self.reads = 0

    def realm_view(self, db_id: str, principal: Principal) -> RealmView:
        return self.database.view

    def _catch_up(self, db_id, principal, client_rev, client_hash) -> CatchUp:
        self.reads += 1
        return self.database.catch_up(db_id, principal, client_rev, client_hash)


def test_a_fan_out_costs_one_read_for_the_changes_and_one_for_the_readies_after(running):
    feed = SharingFeed(PUBLIC)
    feed.database.head = "1:2"
    hub = Hub()
    sessions = [running(feed, hub=hub, client_id=f"reader{i}") for i in range(3)]
    for session in sessions:
        session.ready("1:2", PUBLIC.hash)
        session.settle()
    assert feed.reads == 1, "up-to-date clients asking the same share one read"
    feed.database.head = "1:3"
    hub.deliver(Change.committed("db1", 1, 3, {"rlm-public"}, {"items"}))
    for session in sessions:
        assert session.socket.next()["newRev"] == "1:3"
    assert feed.reads == 2
    for session in sessions:
        session.ready("1:3", PUBLIC.hash)  # each client applied the changes
        session.settle()
    assert feed.reads == 3, "their readies share one read too"
    assert all(session.unexpected == [] for session in sessions)


def test_a_change_delivered_between_two_readies_is_read_anew(running):
    feed = SharingFeed(PUBLIC)
    feed.database.head = "1:2"
    hub = Hub()
    first, second = (running(feed, hub=hub, client_id=f"reader{i}") for i in range(2))
    first.ready("1:2", PUBLIC.hash)
    first.settle()
    feed.database.head = "1:3"  # a change the hub delivered (to the sockets of another realm)
    hub.deliver(Change.committed("db1", 1, 3, {"rlm-other"}, {"items"}))
    second.ready("1:2", PUBLIC.hash)
    assert second.socket.next()["newRev"] == "1:3", "not the answer from before the change"
    assert feed.reads == 2


def test_binary_frames_and_unknown_messages_are_ignored(running):
    session = running(FakeFeed(PUBLIC))
    session.say(b"\x03u-c\x04docs")
    session.say({"type": "doc-open"})
    session.settle()
    assert session.unexpected == []


def test_an_idle_socket_gets_keep_alive_pongs(running):
    session = running(FakeFeed(PUBLIC), keepalive=0.05)
    assert session.socket.next() == {"type": "pong"}
    assert session.socket.next() == {"type": "pong"}


def test_an_expiring_token_is_announced_once_and_the_socket_stays_open(running):
    feed = FakeFeed(ALICE)
    feed.head = "1:2"
    session = running(feed, principal=Principal("alice"), expires_at=time.time() + 0.2)
    session.ready("1:2", ALICE.hash)
    assert session.socket.next() == {"type": "token-expired"}
    calls = len(feed.calls)
    session.ready("1:1", ALICE.hash)
    session.session.notify(Change.committed("db1", 1, 3, {"alice"}, {"items"}))
    session.settle()
    assert session.unexpected == [], "no data after token-expired"
    assert len(feed.calls) == calls
    assert not session.socket.closed


def test_a_token_expired_on_arrival_is_announced_at_once(running):
    feed = FakeFeed(ALICE)
    session = running(feed, principal=ANONYMOUS, expires_at=0.0)
    assert session.socket.next() == {"type": "token-expired"}
    session.ready("1:0", ALICE.hash)
    session.settle()
    assert session.unexpected == [] and feed.calls == []


def test_a_failing_database_ends_the_socket_with_an_error_message(running):
    class BrokenFeed(FakeFeed):
        def catch_up(self, *args):
            raise RuntimeError("database down")

    session = running(BrokenFeed(PUBLIC))
    session.ready("1:0", PUBLIC.hash)
    assert session.socket.next() == {"type": "error", "error": "Internal server error"}
    session.thread.join(timeout=5)
    assert session.socket.closed


def test_a_deactivated_user_is_refused_at_once(running):
    feed = FakeFeed(ALICE)
    session = running(feed, principal=Principal("alice"), deactivated=lambda: True)
    assert session.socket.next() == {"type": "error", "error": "Account deactivated"}
    session.thread.join(timeout=5)
    assert session.socket.closed and feed.calls == [] and len(session.hub) == 0


def test_an_open_socket_of_a_user_deactivated_later_closes_at_its_next_check(running):
    feed = FakeFeed(ALICE)
    deactivated = threading.Event()
    session = running(
        feed, principal=Principal("alice"), deactivated=deactivated.is_set, account_check=0.05
    )
    session.ready("1:1", ALICE.hash)
    session.settle()
    assert session.unexpected == [] and not session.socket.closed
    deactivated.set()
    while (message := session.socket.next())["type"] == "pong":
        pass
    assert message == {"type": "error", "error": "Account deactivated"}
    session.thread.join(timeout=5)
    assert session.socket.closed and len(session.hub) == 0


def test_a_change_handled_while_the_socket_closes_leaves_nothing_in_the_hub(running):
    class HeldFeed(FakeFeed):
        """Holds one check until released (the database is slow)."""

        def __init__(self, view: RealmView) -> None:
            super().__init__(view)
            self.holding = False
            self.held = threading.Event()
            self.release = threading.Event()

        def catch_up(self, *args, **kwargs) -> CatchUp:
            if self.holding:
                self.holding = False
                self.held.set()
                self.release.wait(timeout=5)
            return super().catch_up(*args, **kwargs)

    feed = HeldFeed(ALICE)
    session = running(feed, principal=Principal("alice"))
    session.ready("1:1", ALICE.hash)
    session.settle()
    feed.view = RealmView(("alice", "rlm-public", "rlm~shared"))  # the check subscribes anew
    feed.holding = True
    session.session.notify(Change.committed("db1", 1, 2, {"rlm~shared"}, {"realms"}))
    assert feed.held.wait(timeout=5)
    session.socket.close()  # the client leaves while its change is being checked
    session.thread.join(timeout=0.5)  # the session ends, or waits for the check
    feed.release.set()
    session.thread.join(timeout=5)
    deadline = time.monotonic() + 5
    while session.session._handling_changes and time.monotonic() < deadline:
        time.sleep(0.01)  # the change's check finishes
    assert not session.thread.is_alive() and not session.session._handling_changes
    assert len(session.hub) == 0, "a closed session must leave the hub"
