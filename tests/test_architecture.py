"""The layers are enforced: the contracts of pyproject.toml hold on the tree, and they fail when a lower layer
imports a higher one (proved on a copy of the packages with one import injected). The same for the cycle
check of scripts/import_cycles.py. No database: these read source files only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cs_platform", "accounts", "feedback", "health", "renewals", "value", "playbooks", "integrations")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
LAYERS = "Layers: playbooks | integrations > value > renewals > health > feedback > accounts > cs_platform"

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed (make install)")


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # COLUMNS: lint-imports wraps its report at the terminal width, which would split a contract's name.
    env = {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "200"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return _run([str(LINT_IMPORTS), "--config", str(cwd / "pyproject.toml"), "--no-cache"], cwd)


def _cycles(cwd: Path) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, str(cwd / "scripts" / "import_cycles.py")], cwd)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the eight packages, pyproject.toml and the cycle script: the repository's config, a tree to break."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "import_cycles.py", tmp_path / "scripts" / "import_cycles.py")
    return tmp_path


def _inject(tree: Path, module: str, line: str, *, in_function: bool = False) -> None:
    path = tree / module
    text = line if not in_function else f"def _injected():\n    {line}\n"
    path.write_text(path.read_text() + f"\n\n{text}\n")


def test_the_contracts_hold_on_the_tree():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{LAYERS} KEPT" in result.stdout


def test_the_tree_has_no_import_cycle():
    result = _cycles(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_copy_of_the_tree_passes_too(tree: Path):
    """The control for the tests below: the copy itself is not what breaks the contract."""
    assert _lint_imports(tree).returncode == 0


@pytest.mark.parametrize(
    ("module", "line", "in_function"),
    [
        ("accounts/services.py", "import playbooks", False),
        ("accounts/services.py", "import integrations.sync", True),
        # Siblings of one layer: playbooks and integrations never import each other.
        ("playbooks/services.py", "from integrations.models import Connection", False),
        ("integrations/sync.py", "import playbooks.services", True),
        ("accounts/views.py", "from health.views import health_summary", True),  # inside a function counts too
        ("cs_platform/pages.py", "from accounts.models import Account", False),
    ],
)
def test_a_lower_layer_importing_a_higher_one_breaks_the_layers_contract(
    tree: Path, module: str, line: str, in_function: bool
):
    _inject(tree, module, line, in_function=in_function)
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert f"{LAYERS} BROKEN" in result.stdout
    importer = module.removesuffix(".py").replace("/", ".")
    assert f"- {importer} -> " in result.stdout, result.stdout


def test_renewals_importing_feedback_breaks_the_independence_contract(tree: Path):
    _inject(tree, "renewals/services.py", "import feedback.models")
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert "Independence: renewals does not import feedback BROKEN" in result.stdout


def test_the_outbox_reaching_the_outbound_guard_breaks_the_core_independence_contract(tree: Path):
    _inject(tree, "cs_platform/events.py", "import cs_platform.outbound", in_function=True)
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert "cs_platform.events is not allowed to import cs_platform.outbound" in result.stdout, result.stdout


def test_a_cycle_inside_an_app_fails_the_cycle_check(tree: Path):
    # accounts.views imports accounts.composition; the way back closes a cycle (in a function: still one).
    _inject(tree, "accounts/composition.py", "from accounts import views", in_function=True)
    result = _cycles(tree)
    assert result.returncode == 1
    assert "cycle inside accounts: " in result.stdout
    assert "accounts.composition -> accounts.views" in result.stdout


def test_a_cycle_between_packages_fails_the_cycle_check(tree: Path):
    _inject(tree, "feedback/models.py", "import health.models", in_function=True)
    result = _cycles(tree)
    assert result.returncode == 1
    assert "cycle between packages: feedback <-> health" in result.stdout


def test_a_stale_temporary_entry_fails_the_cycle_check(tree: Path):
    """The temporary list can only shrink: an entry whose import is gone must be deleted."""
    script = tree / "scripts" / "import_cycles.py"
    script.write_text(
        script.read_text().replace(
            "TEMPORARY_INTRA_APP_EDGES: dict[str, str] = {",
            'TEMPORARY_INTRA_APP_EDGES: dict[str, str] = {\n    "feedback.models -> feedback.apps": "nobody",',
        )
    )
    result = _cycles(tree)
    assert result.returncode == 1
    assert "feedback.models -> feedback.apps: no such import any more" in result.stdout
