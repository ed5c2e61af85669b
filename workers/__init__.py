"""Background workers: the RQ job functions and ``python -m workers``."""
