"""The health tasks that health's lower modules queue, by their registered Celery names.

``health/tasks.py`` is the top of the app: it imports the rollup, the triggers and the services to run
them, so none of those may import it back (an import cycle, refused by ``scripts/import_cycles.py``).
They queue a task by its published name instead: :func:`health_task` returns the task registered under
that name, the same object ``health.tasks`` defines, so ``apply_async``/``delay`` (eager mode, routes,
and a test's patch of a task's ``apply_async``) behave exactly as a direct import did.
``HealthConfig.ready`` imports ``health.tasks``, so the names are registered in every process.
"""

from __future__ import annotations

from typing import Any

from cs_platform.celery import app as celery_app

__all__ = ["RECOMPUTE_ACCOUNTS", "RECOMPUTE_HEALTH", "RESCORE_USAGE_HISTORY", "ROLLUP_USAGE", "health_task"]

#: Published names (the ``@org_task`` default ``<module>.<function>``): queued messages carry them, so
#: they never change. ``tests/test_architecture.py`` checks each is the name of the task in health.tasks.
ROLLUP_USAGE = "health.tasks.rollup_usage_task"
RECOMPUTE_ACCOUNTS = "health.tasks.recompute_accounts"
RECOMPUTE_HEALTH = "health.tasks.recompute_health_task"
RESCORE_USAGE_HISTORY = "health.tasks.rescore_usage_history_task"


def health_task(name: str) -> Any:
    """The Celery task registered as ``name`` (one of the constants above)."""
    return celery_app.tasks[name]
