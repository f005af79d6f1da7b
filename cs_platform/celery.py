"""The Celery application. Tasks live in each app's ``tasks.py`` and are discovered here."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")

app = Celery("cs_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Infrastructure tasks outside an app's tasks.py: the CSV import run (its published name is
# accounts.tasks.run_import, see cs_platform.imports.tasks).
app.autodiscover_tasks(["cs_platform.imports"])
