"""``flask dxc reseal``: the stored secrets sealed again with the current ``DXC_SECRET``."""

from __future__ import annotations

import click

from dxc.cli.common import services
from dxc.manage.reseal import reseal as reseal_all


@click.command("reseal")
def reseal() -> None:
    """Seal every stored secret with DXC_SECRET, so that DXC_OLD_SECRETS can be dropped.

    Shard connection strings, OAuth client secrets, the e-mail channel's secret
    and replication credentials sealed with an old secret are resealed in one
    transaction; if one of them cannot be opened, nothing changes. Running it
    again is harmless. See docs/security.md, "Rotating DXC_SECRET".
    """
    with services().control.begin() as connection:
        report = reseal_all(connection, services().settings.keyring)
    for done in report:
        click.echo(f"{done.kind}: {done.resealed} resealed, "
                   f"{done.current} already sealed with DXC_SECRET")


COMMANDS = (reseal,)
