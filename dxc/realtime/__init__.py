"""Live changes: the ``/changes`` WebSocket.

The bus (``dxc.bus``) carries commits between processes; ``hub`` routes them
to this process's sockets, ``session`` serves one socket, ``feed`` computes
what a client is missing, ``service`` accepts sockets. See docs/live-changes.md.
"""
