"""The Dexie Cloud protocol, independent of any web framework or database."""


class ProtocolError(ValueError):
    """A request that does not follow the protocol; the message says how."""
