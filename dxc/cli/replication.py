"""``flask dxc start-replication|replication-progress``: copying a live database here.

Run from the target installation (its ``DEXIE_CLOUD``/``DXC_SECRET``); the
source is any dxc-server reached over HTTP. See docs/migration.md.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import requests

from dxc.cli.common import database_id, existing_database, print_rows, services
from dxc.protocol import ProtocolError
from dxc.replication import progress
from dxc.replication.job import run_replication, secret_box
from dxc.replication.settings import missing_providers
from dxc.replication.source import Source, SourceError, database_url
from dxc.storage import redirects, replications
from dxc.storage.objects import ObjectStore


@click.command("start-replication")
@click.option("--from", "source_url", required=True, help="The source database's URL.")
@click.option("--to", "target_url", required=True, help="The database here to copy into.")
@click.option("--email", help="Your e-mail address at the source (asked if not given).")
@click.option(
    "--otp-stdin", is_flag=True, help="Read the one-time password from stdin (scripts)."
)
def start_replication(
    source_url: str, target_url: str, email: str | None, otp_stdin: bool
) -> None:
    """Copy the database at --from into the empty database --to, then follow its writes.

    You log in at the source as `npx dexie-cloud connect` does (a one-time
    password mailed to you); the source must have authorised your e-mail
    (`npx dexie-cloud authorize EMAIL` there).
    """
    db_id = existing_database(target_url)
    _require_empty(db_id)
    with services().router.shard_for(db_id).transaction() as connection:
        ObjectStore(connection, db_id).freeze()  # no client writes until it takes over
    try:
        source = Source(source_url)
        email = (email or click.prompt("E-mail address at the source")).strip().lower()
        otp_id = source.request_otp(email)
        if otp_stdin:
            otp = sys.stdin.readline().strip()
        else:
            otp = click.prompt(f"The one-time password mailed to {email}").strip()
        key = source.connect(email, otp_id, otp)
        source.use_key(key)
        source.access_token()  # the key reads everything there, or we stop here
    except SourceError as error:
        raise click.ClickException(str(error)) from None
    sealed = secret_box(services()).encrypt(key.client_secret.encode()).decode()
    with services().control.begin() as connection:
        replications.create(connection, db_id, source.url, key.client_id, sealed)
    if services().settings.redis_url:  # else the web process's supervisor starts it
        services().jobs.enqueue(run_replication, db_id)
    click.echo(f"Replicating {source.url} into {db_id}.")
    click.echo("Follow it with: flask dxc replication-progress --db " + target_url)


def _require_empty(db_id: str) -> None:
    with services().control.connect() as connection:
        if replications.get(connection, db_id) is not None:
            raise click.ClickException(f"{db_id} is replicated already")
    with services().router.shard_for(db_id).transaction(read_only=True) as connection:
        store = ObjectStore(connection, db_id)
        if store.current_revision() or store.live_counts():
            raise click.ClickException(
                f"{db_id} holds data: replicate into a new, empty database (flask dxc create)"
            )


@click.command("replication-progress")
@click.option("--db", "db_url", help="Only this database's replication.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def replication_progress(db_url: str | None, as_json: bool) -> None:
    """How far each replication got: objects copied, counts on both sides, lag, in sync."""
    db_id = database_id(db_url) if db_url else None
    reports = progress.reports(services(), db_id)
    if db_id is not None and not reports:
        raise click.ClickException(f"{db_id} is not replicated")
    if as_json:
        print_rows([_json(r, _missing_providers(r)) for r in reports], True, "")
        return
    if not reports:
        click.echo("No replications.")
        return
    for report in reports:
        _print(report, _missing_providers(report))


def _missing_providers(report: progress.Report) -> list[str] | None:
    """The sign-in providers the source offers and this copy does not; None if the
    source did not say (it is asked now: providers are not copied)."""
    try:
        return missing_providers(services(), report.db_id, Source(report.source_url))
    except (SourceError, ProtocolError, requests.RequestException, ValueError):
        return None


def _json(report: progress.Report, providers: list[str] | None) -> dict[str, Any]:
    return {
        "db": report.db_id, "source": report.source_url, "state": report.state,
        "inSync": report.in_sync, "copied": report.copied, "checkpoint": report.checkpoint,
        "sourceRevision": report.source_head, "lagRevisions": report.lag_revisions,
        "lagSeconds": report.lag_seconds, "counts": report.counts,
        "blobs": report.blobs, "yDocuments": report.y_documents,
        "yCheckpoint": report.y_checkpoint, "error": report.error, "polled": report.polled,
        "fullReads": report.full_reads, "missingProviders": providers,
    }


def _print(report: progress.Report, providers: list[str] | None) -> None:
    click.echo(f"{report.db_id} <- {report.source_url}")
    state = "in sync" if report.in_sync else report.state
    click.echo(f"  state: {state}; objects copied: {report.copied}")
    if report.full_reads:
        click.echo(
            f"  the source keeps no revisions: its whole export is read every "
            f"{services().settings.replication_full_read_seconds} s; "
            f"{report.lag_seconds:.1f} s behind"
        )
    else:
        click.echo(
            f"  revision here {report.checkpoint}, at the source {report.source_head}: "
            f"{report.lag_revisions} behind, {report.lag_seconds:.1f} s"
        )
    click.echo(
        f"  blobs at the source {_known(report.blobs[0])}, here {report.blobs[1]}; "
        f"Y.js documents at the source {_known(report.y_documents[0])}, "
        f"here {report.y_documents[1]} (updates copied up to revision {report.y_checkpoint})"
    )
    if report.error:
        click.echo(f"  last error: {report.error}")
    if providers is None:
        click.echo("  the source did not say which sign-in providers it offers")
    elif providers:
        click.echo(
            f"  sign-in providers at the source that are not set up here: {', '.join(providers)}"
            f" (client secrets are not copied: `flask dxc oauth add NAME --db {report.db_id}`)"
        )
    rows = [{"table": t, "source": s, "here": h} for t, (s, h) in sorted(report.counts.items())]
    print_rows(rows, False, "  no objects yet")


def _known(count: int | None) -> str:
    return "?" if count is None else str(count)


@click.command("redirect")
@click.option("--from", "source_url", required=True, help="The database here that moves.")
@click.option("--to", "target_url", required=True, help="Its copy at the new installation.")
def redirect(source_url: str, target_url: str) -> None:
    """Stop writes to --from here and send its clients to --to, for good.

    Run on the source once `replication-progress` at the target says "in sync".
    From then on this installation forwards the database's requests and
    sockets to the target; the target's replication applies the last writes,
    takes over the logins and then serves them (docs/migration.md).
    """
    db_id = existing_database(source_url)
    try:
        target = database_url(target_url)
        answer = requests.get(target, timeout=10)
    except (SourceError, requests.RequestException) as error:
        raise click.ClickException(f"{target_url}: {error}") from None
    if answer.status_code != 200:
        raise click.ClickException(f"{target} answers {answer.status_code}: is it created?")
    with services().control.connect() as connection:
        if (known := redirects.get(connection, db_id)) is not None:
            raise click.ClickException(f"{db_id} moved to {known.target_url} already")
    with services().router.shard_for(db_id).transaction() as connection:
        final = ObjectStore(connection, db_id).freeze()  # waits for writes under way
    with services().control.begin() as connection:
        redirects.record(connection, db_id, target, final)
    click.echo(f"{db_id} takes no more writes here (last revision {final}).")
    click.echo(f"Its clients are forwarded to {target} within seconds.")


@click.command("stop-replication")
@click.option("--db", "db_url", required=True, help="The copy here.")
def stop_replication(db_url: str) -> None:
    """Stop copying into --db (its job ends within seconds).

    For a copy of a source that is not a dxc-server, once no client uses the
    source any more: the copy keeps what it has and goes on taking writes. A
    copy that was not complete (or not taken over from a dxc-server) takes no
    writes: delete it.
    """
    db_id = database_id(db_url)
    with services().control.begin() as connection:
        found = replications.get(connection, db_id)
        if found is None:
            raise click.ClickException(f"{db_id} is not replicated")
        if found.state not in replications.RUNNING:
            raise click.ClickException(f"the replication of {db_id} is {found.state} already")
        replications.stop(connection, db_id)
    if found.full_reads and found.state == replications.TAILING:
        click.echo(f"Stopped copying {found.source_url} into {db_id}; it takes writes as before.")
    else:
        click.echo(
            f"Stopped copying {found.source_url} into {db_id} before it was complete: it "
            "takes no writes. Delete it (flask dxc delete-db) or replicate into a new database."
        )


COMMANDS = (start_replication, replication_progress, redirect, stop_replication)
