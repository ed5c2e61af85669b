"""``python -m workers``: an RQ worker for the jobs of ``dxc.jobs`` (needs ``REDIS_URL``).

The same as ``rq worker dxc --with-scheduler --url $REDIS_URL``, except that
it reads the server's configuration and never logs job arguments.
"""

from __future__ import annotations

import sys

from redis import Redis
from rq import Queue, Worker

from dxc.config import settings_or_exit
from dxc.jobs import QUEUE
from dxc.logs import configure_logging


def main() -> int:
    settings = settings_or_exit()
    configure_logging(settings.log_format)  # JSON in production, like the web processes
    if not settings.redis_url:
        print(
            "REDIS_URL is not set: jobs run inside the web process and no worker is needed.",
            file=sys.stderr,
        )
        return 2
    connection = Redis.from_url(settings.redis_url)
    worker = Worker([Queue(QUEUE, connection=connection)], connection=connection,
                    log_job_description=False)
    worker.work(with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
