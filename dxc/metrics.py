"""Prometheus metrics of this process (each gunicorn worker counts for itself).

Nothing serves them yet: the operations issue adds ``GET /metrics``, which
must either say which worker answered or aggregate the workers with
prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, with
``multiprocess_mode="livesum"`` for the gauge and ``mark_process_dead`` in
gunicorn's ``child_exit``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

LIVE_SOCKETS = Gauge("dxc_live_sockets", "Open /changes WebSockets.")
LIVE_MESSAGES_SENT = Counter(
    "dxc_live_messages_sent",
    "Messages sent on /changes WebSockets, by type.",
    ["type"],
)
LIVE_MESSAGES_RECEIVED = Counter(
    "dxc_live_messages_received",
    "Messages received on /changes WebSockets, by type (other: ignored frames).",
    ["type"],
)
BUS_CHANGES = Counter(
    "dxc_bus_changes",
    "Change notifications published to or received from the bus.",
    ["direction"],
)
