"""The REST API's per-request work: objects (``/all``, ``/my``, ``/public``) and users.

Called by the thin blueprints ``dxc.api.rest`` and ``dxc.api.users``; raises
the refusals of :mod:`dxc.errors`. Writes go through the sync code's own
applier, so REST and sync follow one set of rules.
"""
