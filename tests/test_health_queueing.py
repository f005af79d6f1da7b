"""Health's lower modules queue health's tasks by name (health.queueing): the names must stay the tasks'
published names, resolve to the very task objects of health.tasks, and no module of health but the app
config imports health.tasks (tasks.py is the top of the app)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from health import queueing, tasks

HEALTH = Path(__file__).resolve().parent.parent / "health"


@pytest.mark.parametrize(
    ("name", "task"),
    [
        (queueing.ROLLUP_USAGE, tasks.rollup_usage_task),
        (queueing.RECOMPUTE_ACCOUNTS, tasks.recompute_accounts),
        (queueing.RECOMPUTE_HEALTH, tasks.recompute_health_task),
        (queueing.RESCORE_USAGE_HISTORY, tasks.rescore_usage_history_task),
    ],
)
def test_a_task_queued_by_name_is_the_task_of_health_tasks(name, task):
    assert task.name == name  # the published name, unchanged: messages already queued carry it
    assert queueing.health_task(name) is task._get_current_object()


def _imports_health_tasks(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and (
                node.module == "tasks" or (node.module is None and "tasks" in {a.name for a in node.names})
            ):
                return True
            if node.module == "health.tasks" or (node.module == "health" and "tasks" in {a.name for a in node.names}):
                return True
        if isinstance(node, ast.Import) and any(a.name == "health.tasks" for a in node.names):
            return True
    return False


def test_only_the_app_config_imports_health_tasks():
    importers = sorted(
        str(path.relative_to(HEALTH))
        for path in HEALTH.rglob("*.py")
        if "migrations" not in path.parts and path.name != "tasks.py" and _imports_health_tasks(path)
    )
    assert importers == ["apps.py"]
