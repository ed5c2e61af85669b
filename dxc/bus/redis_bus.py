"""The bus over Redis pub/sub (``REDIS_URL``): for deployments that already run Redis."""

from __future__ import annotations

from collections.abc import Callable

import redis

from dxc.bus.base import WAKE_SECONDS, Bus, Change

#: Pub/sub channels are shared by all Redis database numbers; payloads name their database.
CHANNEL = "dxc:changes"
#: Seconds of silence after which the listener pings Redis to find a dead connection.
HEALTH_CHECK_SECONDS = 30
#: Bounds on connecting and on one command: a Redis outage must not hang a /sync.
CONNECT_TIMEOUT_SECONDS = 2
COMMAND_TIMEOUT_SECONDS = 2


class RedisBus(Bus):
    name = "redis-bus"
    outages = (redis.ConnectionError, redis.TimeoutError, OSError)

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        # Publishing happens after a /sync committed: it may fail, never wait long.
        self._client = redis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=COMMAND_TIMEOUT_SECONDS,
        )

    def _send(self, change: Change) -> None:
        self._client.publish(CHANNEL, change.to_json())

    def _listen(self, connected: Callable[[], None]) -> None:
        # Redis sockets are gevent sockets in the workers: waiting here yields the loop.
        # A lost connection raises out of here; Bus._run reconnects with backoff and
        # the new subscription makes every socket check what it missed.
        client = redis.Redis.from_url(
            self.url,
            health_check_interval=HEALTH_CHECK_SECONDS,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        )
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(CHANNEL)
            while not self.stopping:
                message = pubsub.get_message(timeout=WAKE_SECONDS)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    connected()  # only now is every later publish sure to reach us
                elif message["type"] == "message":
                    self._received(Change.from_json(message["data"]))
        finally:
            pubsub.close()
            client.close()
