"""``flask --app app dxc …``: administering the installation from a shell.

Each module here holds the commands of one concern and lists them in its
``COMMANDS``; :data:`dxc_cli` adds them all. A refusal, an unknown database
or an unreachable database ends a command with one line on stderr, never a
traceback (a bad setting already stops ``create_app``).
"""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.exc import OperationalError

from dxc.cli import (
    admin,
    auth,
    blobs,
    databases,
    oauth,
    replication,
    reseal,
    retire,
    shards,
    transfer,
    whitelist,
    ydocs,
)
from dxc.errors import Refused
from dxc.storage.router import NotOnShard, UnknownDatabase


class DxcGroup(click.Group):
    """Turns the errors an operator can act on into one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Refused as refused:
            raise click.ClickException(str(refused)) from None
        except UnknownDatabase as unknown:
            raise click.ClickException(f"there is no database {unknown.args[0]!r}") from None
        except NotOnShard as moving:
            raise click.ClickException(
                f"database {moving.db_id} is being moved to another shard; run this again shortly"
            ) from None
        except OperationalError as error:  # DEXIE_CLOUD names a server that does not answer
            reason = (str(error.orig).strip().splitlines() or ["no reason given"])[0]
            raise click.ClickException(f"cannot use the database (DEXIE_CLOUD): {reason}") from None


@click.group("dxc", cls=DxcGroup)
def dxc_cli() -> None:
    """Administer this dxc-server installation."""


for _module in (
    databases, transfer, admin, whitelist, auth, oauth, shards, replication, retire, blobs,
    ydocs, reseal,
):
    for _command in _module.COMMANDS:
        dxc_cli.add_command(_command)
