"""Live changes: the ``/changes`` WebSocket, and the bus that tells every worker about commits.

``bus`` carries changes between processes, ``hub`` routes them to this
process's sockets, ``session`` serves one socket, ``feed`` computes what a
client is missing, ``service`` accepts sockets. See docs/live-changes.md.
"""
