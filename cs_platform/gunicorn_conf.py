"""gunicorn settings (``gunicorn -c python:cs_platform.gunicorn_conf``): the access log goes to stdout
through :class:`cs_platform.logging_filters.MaskPathTokens`, so survey (/s/<token>/) and unsubscribe
(/u/<signed>/) credentials never reach it. Bind address, workers and forwarded IPs stay on the command
line (Dockerfile, docker-compose.yml)."""

accesslog = "-"

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_tokens": {"()": "cs_platform.logging_filters.MaskPathTokens"}},
    "formatters": {
        "generic": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s"},
        "access": {"format": "%(message)s"},
    },
    "handlers": {
        "error_console": {"class": "logging.StreamHandler", "formatter": "generic", "stream": "ext://sys.stderr"},
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "access",
            "stream": "ext://sys.stdout",
            "filters": ["mask_tokens"],
        },
    },
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False, "filters": ["mask_tokens"]},
    },
}


# /metrics across gunicorn's worker processes (cs_platform/ops.py): with PROMETHEUS_MULTIPROC_DIR set, each
# worker writes its samples to files there and a scrape of any worker sums them. The directory is emptied
# when the master starts (stale files of a previous run would be counted) and a dead worker's live gauges
# are dropped.
def on_starting(server):  # noqa: ARG001 - gunicorn's hook signature
    import os
    import shutil

    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder, exist_ok=True)


def child_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    import os

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
