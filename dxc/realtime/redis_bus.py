"""The bus over Redis pub/sub (``REDIS_URL``): for deployments that already run Redis."""

from __future__ import annotations

from collections.abc import Callable

import redis

from dxc.realtime.bus import WAKE_SECONDS, Bus, Change

#: Pub/sub channels are shared by all Redis database numbers; payloads name their database.
CHANNEL = "dxc:changes"
#: Seconds of silence after which the listener pings Redis to find a dead connection.
HEALTH_CHECK_SECONDS = 30


class RedisBus(Bus):
    name = "redis-bus"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._client = redis.Redis.from_url(url)

    def _send(self, change: Change) -> None:
        self._client.publish(CHANNEL, change.to_json())

    def _listen(self, connected: Callable[[], None]) -> None:
        # Redis sockets are gevent sockets in the workers: waiting here yields the loop.
        client = redis.Redis.from_url(self.url, health_check_interval=HEALTH_CHECK_SECONDS)
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
