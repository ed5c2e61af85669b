"""Wiring: the long-lived objects one process shares between requests."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from dxc.activity import Activity
from dxc.auth.grants import TokenService
from dxc.auth.otp import OtpLogin
from dxc.auth.tokens import TokenSigner
from dxc.blobs.service import BlobService
from dxc.bus import make_bus
from dxc.bus.base import Bus
from dxc.config import Settings
from dxc.jobs import Jobs, make_jobs
from dxc.mail import Mailer
from dxc.realtime.feed import LiveFeed
from dxc.realtime.service import LiveService
from dxc.replication.relocations import Relocations
from dxc.storage.engines import make_engine
from dxc.storage.router import ShardRouter
from dxc.storage.shard_urls import UrlSeal
from dxc.sync.invites import InviteMailer
from dxc.sync.service import SyncService
from dxc.sync.ycompaction import YCompaction


@dataclass
class Services:
    settings: Settings
    control: Engine
    router: ShardRouter
    signer: TokenSigner
    sync: SyncService
    tokens: TokenService
    jobs: Jobs
    mailer: Mailer
    bus: Bus
    live: LiveService
    blobs: BlobService
    #: Databases that moved away, or are arriving (docs/migration.md).
    relocations: Relocations
    #: Merges piled-up Y.js updates (docs/yjs.md).
    ycompaction: YCompaction
    #: Requests and sockets per database, for ``flask dxc stats`` (started by wsgi.py).
    activity: Activity


def build_services(settings: Settings) -> Services:
    control = make_engine(settings.database_url)
    router = ShardRouter(control, UrlSeal(settings.keyring))
    relocations = Relocations(control, settings.keyring)
    signer = TokenSigner(
        settings.keyring, settings.public_url, settings.access_token_ttl,
        relocations.foreign_issuer,
    )
    jobs = make_jobs(settings)
    mailer = Mailer(control, settings.keyring, jobs)
    bus = make_bus(settings, control, router)
    ycompaction = YCompaction(settings, router, jobs)
    live = LiveService(
        signer, LiveFeed(control, router), bus, control, y_stored=ycompaction.stored
    )
    return Services(
        settings=settings,
        control=control,
        router=router,
        signer=signer,
        sync=SyncService(
            control,
            router,
            bus,
            InviteMailer(mailer, settings.public_url),
            max_tables=settings.max_tables,
            y_stored=ycompaction.stored,
        ),
        tokens=TokenService(control, signer, settings, OtpLogin(control, settings, mailer)),
        jobs=jobs,
        mailer=mailer,
        bus=bus,
        live=live,
        blobs=BlobService(settings, router, jobs),
        relocations=relocations,
        ycompaction=ycompaction,
        activity=Activity(control, live.open_per_database, settings.stats_flush_seconds),
    )
