"""Replication between two installations of dxc-server (two gunicorn servers, two databases).

The source gets writes over /sync (private and shared realms, members, a
deletion, an object moving between realms), blob uploads and Y.js updates;
the target, started with ``flask dxc start-replication`` (the CLI's e-mail
login at the source), copies them through the source's export endpoints and
keeps following them.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from dxc import tson
from dxc.auth.scopes import ADMIN_SCOPES
from dxc.manage import databases, templates, whitelist
from dxc.manage.importer import import_document
from dxc.storage import credentials
from dxc.storage import oauth as oauth_store
from dxc.storage.objects import ObjectStore
from dxc.tson import PropModification
from tests import yjs_node
from tests.conftest import (
    ROOT,
    RunningServer,
    postgres_database,
    running_server,
    server_environment,
)
from tests.mailbox import Mailbox
from tests.protocol_client import ALICE, BOB, SCHEMA, Device, item
from tests.test_yjs_http import UPDATE, u_c

ADMIN = "admin@example.com"
#: No Y.js compaction: the copy's updates are compared one by one with the source's.
FAST = {"DXC_REPLICATION_POLL_MS": "100", "DXC_Y_COMPACT_AFTER": "1000000"}
Y_SCHEMA = {**SCHEMA, "items": {**SCHEMA["items"], "yProps": ["content"]}}


class HttpClient:
    """What :class:`Device` needs of a Flask test client, over real HTTP."""

    def __init__(self, base: str) -> None:
        self.base = base

    def post(self, path: str, json: Any = None, data: bytes | None = None, headers=None):
        response = requests.post(
            self.base + path, json=json, data=data, headers=headers, timeout=30
        )
        response.get_json = response.json  # type: ignore[attr-defined]
        response.get_data = (  # type: ignore[attr-defined]
            lambda as_text=False: response.text if as_text else response.content
        )
        return response


@pytest.fixture
def server_env() -> dict[str, str]:
    return FAST


@pytest.fixture
def target(backend: str, tmp_path: Path) -> Iterator[RunningServer]:
    """A second installation, on its own database of the same kind."""
    with second_installation(backend, tmp_path, FAST) as server:
        yield server


@contextlib.contextmanager
def second_installation(
    backend: str, tmp_path: Path, env: dict[str, str]
) -> Iterator[RunningServer]:
    """A server of its own, on a database of ``backend``, with ``env``."""
    folder = tmp_path / "target"
    folder.mkdir()
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{folder / 'dxc.sqlite'}"
        else:
            url = stack.enter_context(postgres_database())
        yield stack.enter_context(running_server(url, folder, env))


@pytest.fixture
def source_db(server: RunningServer, mailbox: Mailbox) -> str:
    """A database at the source with demo users, a global role, and ADMIN authorised."""
    created = databases.create_database(server.services)
    import_document(server.services, created.db_id, {
        "demoUsers": {ALICE: {}, BOB: {}},
        "roles": {"reader": {"permissions": {"add": ["items"]}}},
    })
    with server.services.control.begin() as connection:
        credentials.authorize_api_client(connection, created.db_id, ADMIN_SCOPES, ADMIN)
    server.services.mailer.configure(mailbox.url, mailbox.secret)
    return created.url


def write_shared_world(source_url: str) -> Device:
    alice = Device(HttpClient(source_url.rsplit("/", 1)[0]), source_url, "alice-device")
    alice.login(ALICE)
    alice.sync()
    alice.sync([
        alice.op("items", "insert", ["itm1", "itm2", "itm3"], "t1", values=[
            item("itm1", title="one"), item("itm2", title="two"), item("itm3", title="three"),
        ]),
        alice.op("realms", "insert", ["rlmShared"], "t1", values=[
            {"realmId": "rlmShared", "owner": ALICE, "name": "shared"},
        ]),
        alice.op("members", "insert", ["mmbBob"], "t1", values=[{
            "id": "mmbBob", "realmId": "rlmShared", "owner": ALICE, "email": BOB,
            "roles": ["reader"], "invite": False,
        }]),
    ])
    alice.sync([alice.op("items", "delete", ["itm2"], "t2")])
    alice.sync([alice.op("items", "update", ["itm3"], "t3",
                         changeSpecs=[{"realmId": "rlmShared", "title": "moved"}])])
    return alice


def start_replication(
    target: RunningServer, mailbox: Mailbox, source_url: str, env: dict[str, str] | None = None,
    into: str | None = None,
) -> str:
    """``flask dxc start-replication`` in the target's environment (into a new database,
    or ``into``); the target db URL."""
    target_url = into or databases.create_database(target.services).url
    env = env or target_env(target)
    cli = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "dxc", "start-replication",
         "--from", source_url, "--to", target_url, "--email", ADMIN, "--otp-stdin"],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )
    code = mailbox.code(ADMIN)
    output, _ = cli.communicate(code + "\n", timeout=60)
    assert cli.returncode == 0, output
    assert "Replicating" in output
    return target_url


def target_env(target: RunningServer) -> dict[str, str]:
    """The environment of the running ``target`` (for its CLI)."""
    env = server_environment(
        target.services.settings.database_url.render_as_string(hide_password=False),
        Path(target.log_path).parent,
        int(target.url.rsplit(":", 1)[1]),
    )
    return {**env, "DXC_SECRET": target.services.settings.secret}


def progress(target: RunningServer, target_url: str) -> dict[str, Any]:
    from dxc.replication.progress import reports

    (report,) = reports(target.services, target_url.rsplit("/", 1)[1])
    return report


def wait_in_sync(target: RunningServer, target_url: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = progress(target, target_url)
        if report.in_sync:
            return report
        time.sleep(0.2)
    raise AssertionError(f"not in sync after {timeout} s: {report}\n{target.log()[-3000:]}")


def rows(server: RunningServer, db_url: str) -> dict[tuple[str, str], tuple]:
    db_id = db_url.rsplit("/", 1)[1]
    with server.services.router.shard_for(db_id).transaction(read_only=True) as connection:
        store = ObjectStore(connection, db_id)
        return {
            (r.tbl, r.key): (r.realm_id, r.owner, r.rev, r.deleted, tson.loads(r.value or "null"))
            for r in store.changed_rows(0, store.current_revision())
        }


def revision(server: RunningServer, db_url: str) -> int:
    db_id = db_url.rsplit("/", 1)[1]
    with server.services.router.shard_for(db_id).transaction(read_only=True) as connection:
        return ObjectStore(connection, db_id).current_revision()


def test_a_replica_copies_everything_with_its_revisions_and_follows_new_writes(
    server, target, mailbox, source_db
):
    alice = write_shared_world(source_db)
    target_url = start_replication(target, mailbox, source_db)

    report = wait_in_sync(target, target_url)
    assert rows(target, target_url) == rows(server, source_db)
    assert revision(target, target_url) == revision(server, source_db)
    assert report.counts["items"] == (2, 2)  # itm2 was deleted
    assert report.lag_revisions == 0 and report.copied > 0

    # New writes keep flowing: an update, a deletion, a new object, a member leaving.
    alice.sync([
        alice.op("items", "update", ["itm1"], "t4", changeSpecs=[{"title": "one!"}]),
        alice.op("items", "delete", ["itm3"], "t4"),
        alice.op("items", "insert", ["itm4"], "t4", values=[item("itm4", title="four")]),
        alice.op("members", "delete", ["mmbBob"], "t4"),
    ])
    deadline = time.monotonic() + 30
    while revision(target, target_url) < revision(server, source_db):
        assert time.monotonic() < deadline, target.log()[-3000:]
        time.sleep(0.1)
    assert rows(target, target_url) == rows(server, source_db)
    here = rows(target, target_url)
    assert here[("items", "itm3")][3] is True and here[("members", "mmbBob")][3] is True
    assert here[("items", "itm1")][4]["title"] == "one!"

    # The replication-progress command says so too.
    env = target_env(target)
    out = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "dxc", "replication-progress",
         "--db", target_url, "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    (shown,) = json.loads(out)
    assert shown["inSync"] is True and shown["counts"]["items"] == [2, 2]


def dxc_command(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    """``flask dxc ARGS`` run for the installation of ``server``."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "dxc", *args], cwd=ROOT,
        env=target_env(server), capture_output=True, text=True, timeout=60,
    )


def redirect(source: RunningServer, source_url: str, target: RunningServer,
             target_url: str) -> None:
    """``flask dxc redirect`` at the source, then wait for the copy to take over."""
    moved = dxc_command(source, "redirect", "--from", source_url, "--to", target_url)
    assert moved.returncode == 0, moved.stderr
    deadline = time.monotonic() + 60
    while progress(target, target_url).state != "switched":
        assert time.monotonic() < deadline, target.log()[-3000:]
        time.sleep(0.2)


def test_a_txid_applied_at_the_source_is_skipped_when_resent_to_the_copy(
    server, target, mailbox, source_db
):
    alice = Device(HttpClient(server.url), source_db, "alice-device")
    alice.login(ALICE)
    alice.sync([alice.op("items", "insert", ["itm1"], "t1", values=[item("itm1", n=1)])])
    # Applied at the source, but the answer is lost: the device will send it again.
    lost = [
        alice.op("items", "insert", ["itm2"], "tLost", values=[item("itm2", n=10)]),
        alice.op("items", "update", ["itm1"], "tLost",
                 changeSpecs=[{"n": PropModification("add", 1)}]),
    ]
    assert alice.post_sync(lost).status_code == 200
    target_url = start_replication(target, mailbox, source_db)
    wait_in_sync(target, target_url)
    redirect(server, source_db, target, target_url)

    again = Device(HttpClient(target.url), target_url, alice.identity)
    again.login(ALICE)
    again.last_pull = alice.last_pull
    before = rows(target, target_url)
    response = again.post_sync(lost)
    assert response.status_code == 200, response.text
    assert tson.loads(response.content)["rejections"] == []
    # Nothing written: every row keeps its value and revision (the push takes a
    # revision of its own, with no row in it, at the source as here).
    assert rows(target, target_url) == before == rows(server, source_db)
    assert before[("items", "itm1")][4]["n"] == 2 and before[("items", "itm2")][4]["n"] == 10

    # A new txid is still applied.
    again.sync([again.op("items", "update", ["itm1"], "tNew",
                         changeSpecs=[{"n": PropModification("add", 1)}])])
    assert rows(target, target_url)[("items", "itm1")][4]["n"] == 3


OTP_SUBJECT = "email-templates/otp-subject.handlebars"
INVITE_HTML = "email-templates/invite-body-html.handlebars"


def settings(server: RunningServer, db_url: str) -> tuple[list[str], dict[str, str], bool]:
    """The database's whitelist, its templates (customised or default) and whether
    it offers login by e-mail."""
    db_id = db_url.rsplit("/", 1)[1]
    with server.services.control.connect() as connection:
        otp = oauth_store.otp_enabled(connection, db_id)
    return (whitelist.list_origins(server.services, db_id),
            templates.current_templates(server.services, db_id), otp)


def missing_providers(target: RunningServer, target_url: str) -> list[str] | None:
    """What ``replication-progress --json`` says the source offers and the copy lacks."""
    shown = dxc_command(target, "replication-progress", "--db", target_url, "--json")
    assert shown.returncode == 0, shown.stderr
    (report,) = json.loads(shown.stdout)
    return report["missingProviders"]


def test_the_whitelist_and_the_templates_are_copied_and_copied_again_at_the_take_over(
    server, target, mailbox, source_db
):
    source_id = source_db.rsplit("/", 1)[1]
    for origin in ("https://app.example.com", "http://localhost:5173"):
        whitelist.add_origin(server.services, source_id, origin)
    templates.push(server.services, source_id, [
        {"path": OTP_SUBJECT, "content": "Log in to {{{originName}}} with {{{otp}}}"},
        {"path": INVITE_HTML, "content": "<p>{{invitor.name}} invites you</p>"},
    ])
    for provider in ("github", "google"):
        added = dxc_command(server, "oauth", "add", provider, "--client-id", "app",
                            "--client-secret", "s3cret", "--db", source_db)
        assert added.returncode == 0, added.stderr
    into = databases.create_database(target.services)
    whitelist.add_origin(target.services, into.db_id, "https://only-here.example.com")
    target_url = start_replication(target, mailbox, source_db, into=into.url)

    wait_in_sync(target, target_url)
    copied = settings(target, target_url)
    assert copied == settings(server, source_db)
    assert copied[0] == ["http://localhost:5173", "https://app.example.com"]
    assert copied[1][OTP_SUBJECT] == "Log in to {{{originName}}} with {{{otp}}}"
    # Providers are not copied (their secrets stay at the source): progress names them.
    assert missing_providers(target, target_url) == ["github", "google"]
    added = dxc_command(target, "oauth", "add", "github", "--client-id", "app",
                        "--client-secret", "new", "--db", target_url)
    assert added.returncode == 0, added.stderr
    assert missing_providers(target, target_url) == ["google"]
    assert copied[2] is True

    # Changed at the source before the switch-over: the take-over copies them again.
    whitelist.delete_origin(server.services, source_id, "http://localhost:5173")
    whitelist.add_origin(server.services, source_id, "https://new.example.com")
    templates.reset(server.services, source_id)
    templates.push(server.services, source_id, [
        {"path": OTP_SUBJECT, "content": "Sign in to {{{originName}}}: {{{otp}}}"},
    ])
    assert dxc_command(server, "oauth", "otp", "off", "--db", source_db).returncode == 0
    redirect(server, source_db, target, target_url)
    copied = settings(target, target_url)
    assert copied == settings(server, source_db)
    assert copied[0] == ["https://app.example.com", "https://new.example.com"]
    assert copied[1][OTP_SUBJECT] == "Sign in to {{{originName}}}: {{{otp}}}"
    assert copied[1][INVITE_HTML] != "<p>{{invitor.name}} invites you</p>"  # reset there
    assert copied[2] is False  # e-mail login turned off at the source


def test_a_replication_job_killed_mid_copy_resumes_from_its_checkpoint(
    server, backend, tmp_path, mailbox, source_db
):
    """The job runs in its own process (as under an RQ worker) and is killed with SIGKILL
    three times: after its first checkpoint of rows, in the middle of a blob, and after
    committing Y.js updates before their checkpoint. A new job ends with identical data:
    rows, blob bytes, and every Y.js update once."""
    source_id = source_db.rsplit("/", 1)[1]
    for chunk in range(40):  # 40 revisions of 1000 objects
        import_document(server.services, source_id, {"data": {
            ALICE: {"items": {f"itm{chunk}-{n}": {"n": n, "owner": ALICE} for n in range(1000)}},
        }})
    write_shared_world(source_db)
    alice = y_device(source_db, "alice-y")
    pictures = {  # two chunks each (dxc.storage.blobs.CHUNK)
        f"itmPicture{n}": put_blob(
            source_db, alice.token, f"blobPicture{n:013d}", bytes([n]) * 300_000
        ) for n in range(12)
    }
    alice.sync([alice.op("items", "insert", list(pictures), "pics", values=[
        item(key, picture=ref) for key, ref in pictures.items()
    ])])
    send_y(alice, "itm1", yjs_node.v2_updates(yjs_node.generate(5)))  # 12 revisions
    folder = tmp_path / "replica"
    folder.mkdir()
    with contextlib.ExitStack() as stack:
        url = (f"sqlite:///{folder / 'dxc.sqlite'}" if backend == "sqlite"
               else stack.enter_context(postgres_database()))
        env = {**server_environment(url, folder, 1), **FAST}
        target = stack.enter_context(installation(env))
        target_url = start_replication(target, mailbox, source_db, env)
        target_id = target_url.rsplit("/", 1)[1]

        def killed_job(die: str, batch_rows: int | None = None) -> Any:
            while replications_unclaimed(target) != [target_id]:  # a dead job's lease ran out
                time.sleep(0.5)
            job = stack.enter_context(job_process(env, target_id, batch_rows, die=die))
            assert job.wait(timeout=120) == -signal.SIGKILL
            return progress(target, target_url)

        # A checkpoint per source revision (1000 objects); the job kills itself with
        # SIGKILL right after storing its first one, wherever the copy is.
        killed = killed_job("checkpoint", batch_rows=1)
        assert 0 < killed.checkpoint < revision(server, source_db), "not killed mid-copy"
        assert killed.state == "copying" and killed.blobs[1] == 0

        # The next one copies the rest of the rows, two blobs, and dies inside the third.
        killed = killed_job("blob")
        assert killed.checkpoint == revision(server, source_db)
        assert set(blobs(target, target_url)) == {"blobPicture0000000000000",
                                                  "blobPicture0000000000001"}
        assert killed.y_checkpoint == 0 and not y_documents(target, target_url)

        # The next one copies the other blobs, commits the first revision of Y updates
        # and dies before its checkpoint.
        killed = killed_job("y")
        assert killed.y_checkpoint == 0 and killed.blobs == (12, 12)
        assert sum(map(len, y_documents(target, target_url).values())) == 10

        while replications_unclaimed(target) != [target_id]:
            time.sleep(0.5)
        stack.enter_context(job_process(env, target_id))
        report = wait_in_sync(target, target_url, timeout=120)
        assert rows(target, target_url) == rows(server, source_db)
        assert revision(target, target_url) == revision(server, source_db)
        assert report.counts["items"][0] == report.counts["items"][1] == 40014
        assert_same_files(server, source_db, target, target_url)
        assert report.y_documents == (1, 1)


@contextlib.contextmanager
def installation(env: dict[str, str]) -> Iterator[RunningServer]:
    """An installation used in-process only (no server: nothing else runs its jobs)."""
    from app import create_app
    from dxc.config import load_settings

    app = create_app(load_settings(env))
    services = app.extensions["dxc"]
    databases.migrate(services)
    folder = Path(env["DXC_INSTANCE_PATH"]).parent
    try:
        yield RunningServer(env["DXC_URL"], services, None, folder / "none.log")  # type: ignore[arg-type]
    finally:
        services.control.dispose()


#: Prefixes of a job process's code that make it die as if killed (SIGKILL): after the
#: job's progress callback has stored a checkpoint (its transaction committed); after
#: the first chunk of the third blob it stores (inside that blob's transaction); after
#: the commit of the first revision of Y.js updates, before their checkpoint. Each takes
#: a lease of 2 s, so that the next job may start soon after.
DIE = {
    "checkpoint": """
import os, signal
import dxc.replication.job as job
def _dying(services, db_id, lines, progress, shard=None):
    def progress_then_die(*args):
        progress(*args)
        os.kill(os.getpid(), signal.SIGKILL)
    return apply(services, db_id, lines, progress_then_die, shard)
apply, job.apply_stream = job.apply_stream, _dying
""",
    "blob": """
import os, signal
import dxc.storage.blobs as blobs
def _dying(index, blob_id, source):
    stored.append(blob_id)
    if len(stored) == 3:
        index.connection.execute(blobs.chunks.insert().values(
            db_id=index.db_id, blob_id=blob_id, seq=0, data=source.read(blobs.CHUNK)))
        os.kill(os.getpid(), signal.SIGKILL)
    return write(index, blob_id, source)
stored, write, blobs.BlobIndex.write_chunks = [], blobs.BlobIndex.write_chunks, _dying
""",
    "y": """
import os, signal
import dxc.replication.y_copy as y_copy
def _dying(*args):
    store(*args)
    os.kill(os.getpid(), signal.SIGKILL)
store, y_copy._store, y_copy.BATCH = y_copy._store, _dying, 1
""",
}


@contextlib.contextmanager
def job_process(
    env: dict[str, str], db_id: str, batch_rows: int | None = None, die: str | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """``run_replication(db_id)`` in a process of its own, killed at the end; with
    ``batch_rows``, committing (and checkpointing) that often; with ``die``, killing
    itself (SIGKILL) where :data:`DIE` says."""
    code = f"from dxc.replication.job import run_replication; run_replication({db_id!r})"
    if die is not None:
        code = DIE[die] + "job.LEASE_SECONDS = 2\n" + code
        code = "import dxc.replication.job as job\n" + code
    if batch_rows is not None:
        code = f"import dxc.replication.apply as a; a.BATCH_ROWS = {batch_rows}; {code}"
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, text=True)
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def replications_unclaimed(target: RunningServer) -> list[str]:
    from dxc.storage import replications

    with target.services.control.connect() as connection:
        return replications.unclaimed(connection)


# --- blobs and Y.js documents ---------------------------------------------------------


def put_blob(db_url: str, token: str, blob_id: str, data: bytes) -> dict[str, Any]:
    """Upload ``data`` as the client offloads a blob; the BlobRef an object holds."""
    response = requests.put(f"{db_url}/blob/{blob_id}", data=data, timeout=30, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "image/png",
    })
    assert response.status_code == 200, response.text
    return {"_bt": "Blob", "ref": response.json()["ref"], "size": len(data), "ct": "image/png"}


def y_device(source_url: str, identity: str) -> Device:
    device = Device(HttpClient(source_url.rsplit("/", 1)[0]), source_url, identity)
    device.schema = Y_SCHEMA
    device.login(ALICE)
    device.sync()
    return device


def send_y(device: Device, key: str, updates: list[bytes], per_sync: int = 10) -> None:
    """``updates`` of ``key``'s document, ``per_sync`` per /sync (a revision each)."""
    for start in range(0, len(updates), per_sync):
        chunk = updates[start:start + per_sync]
        answer = device.sync(y=[u_c(key, start + n, u) for n, u in enumerate(chunk)])
        assert [m["type"] for m in answer["yMessages"]].count("u-ack") == len(chunk)


def blobs(server: RunningServer, db_url: str) -> dict[str, tuple[str, str, int, bytes]]:
    """Every blob of the database: uploader, content type, size and bytes."""
    from dxc.storage.blobs import BlobIndex

    db_id = db_url.rsplit("/", 1)[1]
    with server.services.router.shard_for(db_id).transaction(read_only=True) as connection:
        infos = BlobIndex(connection, db_id).page("", 10_000)
    return {
        info.blob_id: (info.uploader, info.content_type, info.size,
                       b"".join(server.services.blobs.content(db_id, info)))
        for info in infos
    }


def y_documents(server: RunningServer, db_url: str) -> dict[tuple[str, str, str], Counter]:
    """Every document's stored updates (a multiset: a doubled update shows)."""
    from dxc.storage.ydocs import YDocStore

    db_id = db_url.rsplit("/", 1)[1]
    documents: dict[tuple[str, str, str], Counter] = {}
    with server.services.router.shard_for(db_id).transaction(read_only=True) as connection:
        for update in YDocStore(connection, db_id).of_live_objects(None, None):
            key = (update.tbl, update.prop, update.doc_key)
            documents.setdefault(key, Counter())[(update.rev, update.data)] += 1
    return documents


def assert_same_files(source: RunningServer, source_url: str, copy: RunningServer,
                      copy_url: str) -> None:
    assert blobs(copy, copy_url) == blobs(source, source_url)
    assert y_documents(copy, copy_url) == y_documents(source, source_url)


def test_blobs_and_y_documents_are_copied_followed_and_guarded_as_at_the_source(
    server, target, mailbox, source_db
):
    made = yjs_node.generate(5)
    updates = yjs_node.v2_updates(made)
    alice = y_device(source_db, "alice-y")
    private = put_blob(source_db, alice.token, "blobPrivate0000000000001", b"\x89PNG" * 70_000)
    shared = put_blob(source_db, alice.token, "blobShared00000000000001", b"shared bytes")
    put_blob(source_db, alice.token, "blobOrphan00000000000001", b"no object holds me")
    alice.sync([
        alice.op("items", "insert", ["itm1"], "t1", values=[item("itm1", picture=private)]),
        alice.op("realms", "insert", ["rlmShared"], "t1", values=[
            {"realmId": "rlmShared", "owner": ALICE, "name": "shared"},
        ]),
        alice.op("members", "insert", ["mmbBob"], "t1", values=[{
            "id": "mmbBob", "realmId": "rlmShared", "owner": ALICE, "email": BOB,
            "roles": ["reader"], "invite": False,
        }]),
        alice.op("items", "insert", ["itm2"], "t1",
                 values=[item("itm2", realm="rlmShared", picture=shared)]),
    ])
    bob = Device(HttpClient(server.url), source_db, "bob-device")
    bob.login(BOB)
    bob.sync()
    bob.sync([bob.op("members", "update", ["mmbBob"], "accept",
                     changeSpecs=[{"accepted": tson.Date("2001-01-01T00:00:00.000Z")}])])
    send_y(alice, "itm1", updates[:60])
    send_y(alice, "itm2", [UPDATE])

    target_url = start_replication(target, mailbox, source_db)
    report = wait_in_sync(target, target_url)
    assert report.blobs == (3, 2), "the blob no object refers to stays behind"
    assert report.y_documents == (2, 2)
    copied = blobs(target, target_url)
    assert set(copied) == {"blobPrivate0000000000001", "blobShared00000000000001"}
    assert y_documents(target, target_url) == y_documents(server, source_db)

    # While it tails: a new blob in a new object, more edits of a document.
    later = put_blob(source_db, alice.token, "blobLater000000000000001", bytes(range(256)) * 4)
    alice.sync([alice.op("items", "insert", ["itm3"], "t2", values=[item("itm3", pic=later)])])
    send_y(alice, "itm1", updates[60:])
    deadline = time.monotonic() + 30
    while (report := progress(target, target_url)).blobs[1] < 3 or (
        report.y_checkpoint < revision(server, source_db)
    ):
        assert time.monotonic() < deadline, target.log()[-3000:]
        time.sleep(0.1)
    assert y_documents(target, target_url) == y_documents(server, source_db)
    assert blobs(target, target_url)["blobLater000000000000001"] == (
        blobs(server, source_db)["blobLater000000000000001"]
    )

    # The switch-over: the copy takes over only with every blob and update.
    redirect(server, source_db, target, target_url)
    at_source = blobs(server, source_db)
    at_source.pop("blobOrphan00000000000001")
    assert blobs(target, target_url) == at_source
    documents = y_documents(target, target_url)
    assert documents == y_documents(server, source_db)
    itm1 = sorted(documents[("items", "content", "itm1")].elements())
    assert yjs_node.content_of([data for _, data in itm1]) == made["content"]

    # At the target, the blobs are guarded as at the source.
    def get(user: str, blob: dict[str, Any]) -> requests.Response:
        device = Device(HttpClient(target.url), target_url, f"{user}-at-target")
        device.login(user)
        return requests.get(f"{target_url}/blob/{blob['ref']}", timeout=30,
                            headers={"Authorization": f"Bearer {device.token}"})

    for user, blob, expected in ((ALICE, private, b"\x89PNG" * 70_000),
                                 (ALICE, shared, b"shared bytes"), (BOB, shared, b"shared bytes")):
        answer = get(user, blob)
        assert answer.status_code == 200, answer.text
        assert answer.content == expected and answer.headers["Content-Type"] == "image/png"
    refused = get(BOB, private)
    assert refused.status_code == 403 and refused.json()["error"]
