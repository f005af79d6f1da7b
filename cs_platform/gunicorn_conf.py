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
