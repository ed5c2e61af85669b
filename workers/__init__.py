"""The background worker process: ``python -m workers`` runs an RQ worker for ``dxc.jobs``."""
