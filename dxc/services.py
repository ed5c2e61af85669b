"""Wiring: the long-lived objects one process shares between requests."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from dxc.auth.grants import TokenService
from dxc.auth.tokens import TokenSigner
from dxc.config import Settings
from dxc.storage.engines import make_engine
from dxc.storage.router import ShardRouter
from dxc.sync.service import SyncService


@dataclass
class Services:
    settings: Settings
    control: Engine
    router: ShardRouter
    signer: TokenSigner
    sync: SyncService
    tokens: TokenService


def build_services(settings: Settings) -> Services:
    control = make_engine(settings.database_url)
    router = ShardRouter(control)
    signer = TokenSigner(settings.secret, settings.public_url, settings.access_token_ttl)
    return Services(
        settings=settings,
        control=control,
        router=router,
        signer=signer,
        sync=SyncService(control, router),
        tokens=TokenService(
            control, signer, settings.refresh_token_ttl, settings.refresh_clock_skew
        ),
    )
