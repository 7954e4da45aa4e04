"""gunicorn's settings for `make run` (`gunicorn -c python:patrol.gunicorn_conf`).

Command-line flags still win. When ready, the master warns if several workers would each
count rate limits in their own memory (neither PATROL_RATELIMIT_STORAGE_URI nor
PATROL_REDIS_URL set). The job worker is not gunicorn's: `make run` starts `patrol
worker` beside it (docs/jobs.md).
"""
from __future__ import annotations

import logging

workers = 2
threads = 4


def when_ready(server) -> None:
    from patrol import settings
    uri = settings.load().flask_config()["RATELIMIT_STORAGE_URI"]
    count = server.cfg.workers
    if count > 1 and str(uri).startswith("memory://"):
        server.log.warning(
            "rate limits are counted in memory in each of %s workers: a client gets %s times "
            "its limit. Set PATROL_REDIS_URL (or PATROL_RATELIMIT_STORAGE_URI) to share them.",
            count, count)
    logging.getLogger(__name__).debug("gunicorn ready with %s workers", count)
