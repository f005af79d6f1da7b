"""Settings of the processes a benchmark starts (gunicorn, the Celery worker): the project's settings,
with the tasks on a queue of the benchmark's own (``BENCH_CELERY_QUEUE``), so a worker started here never
takes messages other runs left on the broker, and no other worker takes the benchmark's."""

import os

from cs_platform.settings import *  # noqa: F403

CELERY_TASK_DEFAULT_QUEUE = os.environ.get("BENCH_CELERY_QUEUE", "celery")
