"""Where jobs queued by earlier versions name their function (``workers.jobs.post_webhook``).

RQ finds a queued job's function by that dotted name, so this alias lets a
worker of this version run what an older web process left in Redis. Job
functions live with their code now (:mod:`dxc.mail.webhook`).
"""

from dxc.mail.webhook import post_webhook

__all__ = ["post_webhook"]
