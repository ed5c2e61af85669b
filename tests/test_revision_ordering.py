"""Concurrent writers never make an incremental reader miss a change.

A pull returns rows up to the revision it reports; the next pull starts
there. If a revision could become visible before a smaller one committed,
the reader would skip the late row for good. Several threads push while one
pulls incrementally; at the end the reader's copy must equal a full snapshot.
"""

from __future__ import annotations

import threading

from app import create_app
from dxc.manage import databases
from dxc.manage.importer import import_document
from tests.protocol_client import ALICE, Device, item

WRITERS = 4
WRITES_EACH = 15


def test_incremental_pulls_miss_nothing_under_concurrent_writes(settings):
    app = create_app(settings)
    services = app.extensions["dxc"]
    databases.migrate(services)
    created = databases.create_database(services)
    import_document(services, created.db_id, {"demoUsers": {ALICE: {}}})

    def device(name: str) -> Device:
        dev = Device(app.test_client(), created.url, name)
        dev.login(ALICE)
        return dev

    failures: list[BaseException] = []

    def write(number: int) -> None:
        try:
            writer = device(f"writer-{number}")
            for i in range(WRITES_EACH):
                key = f"itm{number}-{i}"
                writer.sync([writer.op("items", "insert", [key], f"t{i}", values=[item(key)])])
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)

    reader = device("reader")
    reader.sync()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        reader.sync()
    for thread in threads:
        thread.join()
    assert not failures, failures
    reader.sync()

    snapshot = device("snapshot")
    snapshot.sync()
    assert len(snapshot.state["items"]) == WRITERS * WRITES_EACH
    assert reader.state["items"] == snapshot.state["items"]
    services.control.dispose()
