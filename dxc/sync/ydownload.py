"""``POST {db}/y/download``: every Y document of the realms a client has not
downloaded yet, as the length-framed binary stream of spec sync §7.5.

Realm by realm (the principal's realms now, sorted), each opened by a realm
record and followed, table and property by table and property, by the
updates of each document in (table, prop, key) order. A client that stopped
in the middle of a realm sends where (its last document); that realm starts
again just after it. A realm without documents is still named, so the client
marks it complete.
"""

from __future__ import annotations

from collections.abc import Iterator

from dxc import tson
from dxc.access import Principal, RealmAccess
from dxc.cooperative import take_turns
from dxc.protocol.ymessages import (
    ResumePoint,
    document_record,
    frames,
    parse_downloaded_realms,
    realm_record,
    table_record,
)
from dxc.storage.objects import ObjectStore
from dxc.storage.router import ShardRouter
from dxc.storage.ydocs import YDocStore


def download(router: ShardRouter, db_id: str, principal: Principal, body: bytes) -> Iterator[bytes]:
    """The frames of the answer. A bad body raises before anything is produced;
    the first item (empty) comes once the read transaction is open."""
    downloaded = parse_downloaded_realms(tson.loads(body), principal.user_id)
    shard = router.shard_for(db_id)

    def stream() -> Iterator[bytes]:
        with shard.transaction(read_only=True) as connection:
            realms = RealmAccess(ObjectStore(connection, db_id), principal).realm_set().realms
            yield b""
            wanted = [
                (realm, downloaded.get(realm))
                for realm in realms
                if realm not in downloaded or downloaded[realm] is not None
            ]
            yield from frames(_groups(YDocStore(connection, db_id), principal.user_id, wanted))

    return stream()


def _groups(
    documents: YDocStore, user_id: str | None, realms: list[tuple[str, ResumePoint | None]]
) -> Iterator[list[bytes]]:
    """Records in groups that must share a frame: a realm's, a table's, a document's."""
    for realm, resume in realms:
        yield [realm_record(realm)]
        after = None if resume is None else (resume.table, resume.prop, resume.doc_key)
        table: tuple[str, str] | None = None
        document: list[bytes] = []
        current: tuple[str, str, str] | None = None
        for count, update in enumerate(documents.of_realm(realm, after), start=1):
            if (update.tbl, update.prop, update.doc_key) != current:
                if document:
                    yield document
                document = []
                current = (update.tbl, update.prop, update.doc_key)
                if (update.tbl, update.prop) != table:
                    table = (update.tbl, update.prop)
                    yield [table_record(*table)]
            document.append(document_record(update.doc_key, user_id, update.data))
            if count % 200 == 0:
                take_turns()
        if document:
            yield document

