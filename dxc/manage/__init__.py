"""Administration: the tasks behind ``flask dxc`` and the ``dexie-cloud`` CLI's endpoints.

Each raises the refusals of :mod:`dxc.errors`, so the CLI and HTTP share it.
"""
