"""Retain project package: settings, URL root, Celery app and the shared tenancy/API machinery."""

from .celery import app as celery_app

__all__ = ["celery_app"]
