"""The bus of the embedded default (SQLite, no broker): datagrams between the
processes of one host.

Every process that listens binds a Unix datagram socket in a folder that
belongs to the database file (under the temporary directory, accessible to
this user only). Publishing sends the change to every socket in that folder,
which reaches the other workers at once; a socket whose process is gone is
removed. A datagram can still be lost (a full receive buffer), so the
revision counters are also polled, every ``SAFETY_POLL_SECONDS``, as
:class:`PollingBus` does. A folder that another user made, or that others
may enter, is not used (changes name users): the bus then only polls, once
a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import socket
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dxc.bus.base import WAKE_SECONDS, Change
from dxc.bus.polling_bus import SAFETY_POLL_SECONDS, PollingBus
from dxc.storage.router import ShardRouter

log = logging.getLogger(__name__)

#: The largest datagram sent; a change with more realms goes out without them
#: ("any realm may have changed").
MAX_DATAGRAM = 32 * 1024


def folder_for(database_path: str) -> Path:
    """The folder of the sockets of the processes serving ``database_path``."""
    digest = hashlib.sha256(os.path.abspath(database_path).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"dxc-bus-{os.getuid()}-{digest}"


class LocalBus(PollingBus):
    name = "local-bus"
    outages = (OSError,)

    def __init__(self, router: ShardRouter, folder: Path) -> None:
        super().__init__(router)
        self.folder = folder
        #: This process's socket, once it listens (a random name: pids get reused).
        self.address = str(folder / f"{os.getpid()}-{secrets.token_hex(4)}.sock")
        self._sender: socket.socket | None = None

    def _send(self, change: Change) -> None:
        super()._send(change)  # this process's own sockets learn it at once
        if not self._folder_is_private():
            return
        payload = change.to_json().encode()
        if len(payload) > MAX_DATAGRAM:
            payload = change.to_json(drop_realms=True).encode()
        for address in self._addresses():
            if address != self.address:
                self._send_to(address, payload)

    def _send_to(self, address: str, payload: bytes) -> None:
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        try:
            self._sender.sendto(payload, address)
        except (ConnectionRefusedError, FileNotFoundError):
            Path(address).unlink(missing_ok=True)  # its process is gone
        except BlockingIOError:
            pass  # that process is behind: its next poll catches up

    def _addresses(self) -> list[str]:
        try:
            return [str(path) for path in self.folder.glob("*.sock")]
        except OSError:
            return []

    def _folder_is_private(self) -> bool:
        """Whether the folder is this user's alone (made now if missing)."""
        try:
            self.folder.mkdir(mode=0o700, exist_ok=True)
            status = self.folder.lstat()
        except OSError:
            return False
        return stat.S_ISDIR(status.st_mode) and status.st_uid == os.getuid() and not (
            status.st_mode & 0o077
        )

    def _listen(self, connected: Callable[[], None]) -> None:
        if not self._folder_is_private():
            log.warning("%s is not this user's alone: live changes poll once a second", self.folder)
            super()._listen(connected)
            return
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            receiver.bind(self.address)
            receiver.settimeout(WAKE_SECONDS)
            connected()
            next_poll = time.monotonic() + SAFETY_POLL_SECONDS
            while not self.stopping:
                with contextlib.suppress(TimeoutError):  # a second without news
                    self._known(Change.from_json(receiver.recv(MAX_DATAGRAM)))
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + SAFETY_POLL_SECONDS
                    self._poll()
        finally:
            receiver.close()
            Path(self.address).unlink(missing_ok=True)
