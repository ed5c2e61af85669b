"""The frame of a text message, built once for all the sockets that send it.

When one change wakes a thousand sockets, they send one and the same ``changes``
message (one ``str``: their answer is shared, ``dxc.realtime.shared``). wsproto
would encode it to UTF-8, compress it (permessage-deflate) and frame it once per
socket, copying it several times each. A server's frame of a message is the same
bytes on every connection that compresses alike, though: servers do not mask,
and each message is compressed on its own (no context takeover,
``dxc.api.websocket``). So the frames of the last few texts sent are kept, by
the identity of the text: a text built for one socket (a ``pong``) is framed as
before, and pushes an old frame out.
"""

from __future__ import annotations

import collections
import threading

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import FrameProtocol

#: How many texts' frames are kept (those of the groups a change woke at once).
RECENT_TEXTS = 8


class FrameCache:
    def __init__(self, size: int = RECENT_TEXTS) -> None:
        self.size = size
        self._lock = threading.Lock()
        # (id of the text, window bits or None) -> (the text, its frame). Keeping the
        # text keeps its id from being reused by another while the entry exists.
        self._frames: collections.OrderedDict[tuple[int, int | None], tuple[str, bytes]] = (
            collections.OrderedDict()
        )

    def frame(self, text: str, deflate: PerMessageDeflate | None) -> bytes:
        """The frame of ``text`` from a server whose connection negotiated ``deflate``
        (None: no compression); built by wsproto, as the connection would build it."""
        key = (id(text), None if deflate is None else deflate.server_max_window_bits)
        with self._lock:
            kept = self._frames.get(key)
            if kept is not None:
                self._frames.move_to_end(key)
                return kept[1]
        framing = FrameProtocol(client=False, extensions=[] if deflate is None else [deflate])
        frame = bytes(framing.send_data(text))
        with self._lock:
            self._frames[key] = (text, frame)
            while len(self._frames) > self.size:
                self._frames.popitem(last=False)
        return frame


#: The frames of this process's sockets.
FRAMES = FrameCache()
