"""Mutation testing of the modules that carry the product's formulas and its tenancy (``make mutation``).

A thin wrapper around mutmut (pinned in the ``dev`` extra). mutmut changes one operator or constant of
a module at a time and runs the tests that execute the changed function; a change no test notices is a
*surviving mutant*, i.e. a way the code can be wrong without the suite failing.

For each module in :data:`MODULES` the wrapper:

1. copies the working tree (tracked and untracked, not ignored files) to ``var/mutation/<name>/``, so
   the worktree is never modified and modules can be measured independently;
2. writes mutmut's configuration there: only that module is mutated, and only the test files listed
   for it are run (mutmut narrows further to the tests that call the mutated function);
3. runs ``mutmut run`` under a wall-clock budget (``--budget`` seconds per module; mutmut keeps every
   verdict on disk, so ``--resume`` continues an interrupted run where it stopped);
4. prints the score: killed / (all mutants − the equivalent ones listed in
   ``tests/mutation_equivalents.txt``), and every surviving mutant's diff.

Usage::

    python scripts/mutation.py                      # every module, default budget
    python scripts/mutation.py scoring tenancy      # some modules
    python scripts/mutation.py analytics --budget 3600 --resume
    python scripts/mutation.py scoring --list       # print the survivors of the last run, no run
    python scripts/mutation.py segments --sqlite    # the same module on SQLite (its SQLite-only branches)
    python scripts/mutation.py segments --only '*_leaf*'   # only the mutants whose names match
    python scripts/mutation.py segments --retest    # new tests against the last run's survivors only

Tests run on whatever ``DATABASE_URL`` / ``REDIS_URL`` say (Postgres + Redis in CI and for the
figures in ``docs/testing.md``; SQLite + locmem without them). Workers are forked one at a time by
default (``--children``): they share one test database, which pytest-django keeps between mutants
(``--reuse-db``) so that each mutant does not migrate a new one.

Modules with a branch per database (segments, analytics) are measured twice, as CI tests them twice:
on Postgres, then with ``--sqlite`` (no ``DATABASE_URL`` / ``REDIS_URL``, in ``var/mutation/<name>-sqlite/``).
The score of the module then counts a mutant killed when either run killed it: a mutant of the SQLite
branch is only executed, hence only killable, on SQLite, and one of the Postgres branch on Postgres.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "mutation"
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.txt"
PACKAGES = ["cs_platform", "accounts", "health", "renewals", "playbooks", "feedback", "value"]


@dataclass(frozen=True)
class Module:
    """One module under mutation and the test files that exercise it."""

    path: str
    tests: tuple[str, ...]


MODULES: dict[str, Module] = {
    "scoring": Module(
        "health/scoring.py",
        ("tests/test_health_scoring.py", "tests/test_scoring_oracle.py"),
    ),
    "analytics": Module(
        "renewals/analytics.py",
        (
            "tests/test_retention_analytics.py",
            "tests/test_retention_golden.py",
            "tests/test_retention_oracle.py",
        ),
    ),
    "rollups": Module("health/rollups.py", ("tests/test_rollups*.py", "tests/test_usage_end_to_end.py")),
    "segments": Module("accounts/segments.py", ("tests/test_*segment*.py", "tests/test_retention_oracle.py")),
    "tenancy": Module("cs_platform/tenancy.py", ("tests/test_tenancy.py",)),
}

#: ``var/mutation/<name><suffix>`` holds the SQLite run of a module (``--sqlite``).
SQLITE_SUFFIX = "-sqlite"

#: mutmut's exit-code vocabulary → the buckets of the score.
KILLED = {"killed", "timeout", "segfault", "caught by type check"}


def copy_tree(destination: Path) -> None:
    """The working tree as git sees it (tracked + untracked, minus ignored files) into ``destination``."""
    if destination.exists():
        shutil.rmtree(destination)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        relative = Path(raw.decode())
        source = ROOT / relative
        if not source.is_file():
            continue  # deleted in the working tree
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def configure(destination: Path, module: Module) -> list[str]:
    """Append mutmut's settings for ``module`` to the copy's pyproject.toml; returns the test files used
    (glob patterns are expanded, so test files added later for the module are picked up)."""
    tests = sorted({str(p.relative_to(destination)) for t in module.tests for p in destination.glob(t) if p.is_file()})
    settings = {
        "source_paths": PACKAGES,
        "only_mutate": [module.path],
        "also_copy": ["templates", "static", "manage.py", "scripts", "docs"],
        # -p no:randomly etc. are not installed; --reuse-db keeps one test database between mutants.
        "pytest_add_cli_args": ["-q", "-p", "no:cacheprovider", "--reuse-db", "-x"],
        "pytest_add_cli_args_test_selection": tests,
        "timeout_multiplier": 10.0,
    }
    lines = ["", "[tool.mutmut]"] + [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    with (destination / "pyproject.toml").open("a") as handle:
        handle.write("\n".join(lines) + "\n")
    return tests


def load_equivalents() -> dict[str, str]:
    """``mutant name → reason`` from tests/mutation_equivalents.txt (``name  # reason`` per line)."""
    if not EQUIVALENTS.exists():
        return {}
    out: dict[str, str] = {}
    for line in EQUIVALENTS.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition("#")
        out[name.strip()] = reason.strip()
    return out


def verdicts(destination: Path, module: Module) -> dict[str, str]:
    """mutant name → status, from the ``.meta`` file mutmut keeps beside the mutated module."""
    sys.path.insert(0, str(destination))
    from mutmut.stats import status_by_exit_code

    meta = destination / "mutants" / (module.path + ".meta")
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text()).get("exit_code_by_key", {})
    return {name: status_by_exit_code[code] for name, code in codes.items()}


def show(destination: Path, name: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", name], cwd=destination, capture_output=True, text=True
    )
    return result.stdout.strip()


def merged_verdicts(destination: Path, module: Module) -> tuple[dict[str, str], int]:
    """The Postgres run's verdicts, where a mutant the SQLite run (``<destination>-sqlite``, if any) killed
    counts as killed; returns them and how many only SQLite killed."""
    statuses = verdicts(destination, module)
    other = verdicts(destination.with_name(destination.name + SQLITE_SUFFIX), module)
    rescued = 0
    for name, status in other.items():
        if status in KILLED and statuses.get(name) not in KILLED:
            statuses[name] = status
            rescued += 1
    return statuses, rescued


def report(key: str, module: Module, destination: Path, *, diffs: bool) -> dict[str, object]:
    statuses, on_sqlite = merged_verdicts(destination, module)
    equivalents = load_equivalents()
    counts = Counter(statuses.values())
    equivalent = sorted(name for name in statuses if name in equivalents)
    checked = {n: s for n, s in statuses.items() if s != "not checked" and n not in equivalents}
    killed = sum(1 for s in checked.values() if s in KILLED)
    survivors = sorted(n for n, s in checked.items() if s not in KILLED)
    score = 100.0 * killed / len(checked) if checked else 0.0
    print(f"\n== {key}: {module.path}")
    print(f"   mutants {len(statuses)}; " + ", ".join(f"{status} {n}" for status, n in sorted(counts.items())))
    if on_sqlite:
        print(f"   killed only by the SQLite run ({destination.name}{SQLITE_SUFFIX}): {on_sqlite}")
    print(f"   equivalent (tests/mutation_equivalents.txt): {len(equivalent)}")
    print(f"   score: {killed}/{len(checked)} non-equivalent mutants killed = {score:.1f} %")
    if counts.get("not checked"):
        print(f"   {counts['not checked']} mutants not run (outside the sample, or out of budget: --resume goes on)")
    for name in survivors:
        print(f"   survived: {name} ({checked[name]})")
        if diffs:
            print("      " + show(destination, name).replace("\n", "\n      "))
    survived = sum(1 for s in checked.values() if s not in KILLED)
    return {"module": module.path, "mutants": len(statuses), "killed": killed, "checked": len(checked),
            "equivalent": len(equivalent), "survived": survived, "killed_on_sqlite": on_sqlite,
            "score": round(score, 1), "survivors": survivors}  # fmt: skip


GENERATE = (
    "import os, mutmut.__main__ as m; m.set_mutant_under_test('mutant_generation'); "
    "os.makedirs('mutants', exist_ok=True); m.copy_src_dir(); m.copy_also_copy_files(); m.setup_source_paths(); "
    "m.create_mutants(1)"
)


def sample_names(
    destination: Path, module: Module, size: int | None, seed: int, *, resume: bool, only: list[str]
) -> list[str]:
    """A reproducible random sample of ``size`` mutants of the module (all if ``None``), restricted to the
    names matching one of the ``only`` patterns if any (generated first, without running)."""
    subprocess.run([sys.executable, "-c", GENERATE], cwd=destination, check=True, capture_output=True)
    names = sorted(verdicts(destination, module))
    if only:
        names = [n for n in names if any(fnmatch.fnmatchcase(n, pattern) for pattern in only)]
    chosen = sorted(random.Random(seed).sample(names, min(size, len(names)))) if size else names
    if resume:
        done = {n for n, s in verdicts(destination, module).items() if s != "not checked"}
        chosen = [n for n in chosen if n not in done]
    return chosen


def refresh_tests(destination: Path) -> None:
    """The worktree's ``tests/`` into the copy and into mutmut's own copy of it (``mutants/tests``):
    mutmut collects the coverage of new tests on its next run and keeps that of the others."""
    for target in (destination / "tests", destination / "mutants" / "tests"):
        if target.parent.exists():
            shutil.copytree(ROOT / "tests", target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))


def run(
    key: str,
    module: Module,
    *,
    budget: int,
    children: int,
    resume: bool,
    sample: int | None,
    seed: int,
    sqlite: bool = False,
    only: list[str] | None = None,
    retest: bool = False,
) -> None:
    destination = WORK / (key + (SQLITE_SUFFIX if sqlite else ""))
    if retest:
        # Tests were only added since the last run: a mutant killed then is still killed, so only the
        # survivors run again, against the refreshed tests (mutmut reruns the mutants it is named).
        if not (destination / "mutants").exists():
            print(f"\n== {key}: nothing to retest in {destination} (run it first)", flush=True)
            return
        refresh_tests(destination)
        shutil.copy2(ROOT / "pyproject.toml", destination / "pyproject.toml")
        tests = configure(destination, module)  # test files added since match the module's patterns
        equivalents = load_equivalents()
        names = sorted(
            n
            for n, s in verdicts(destination, module).items()
            if s not in KILLED and s != "not checked" and n not in equivalents
        )
        print(f"\n== {key}: {len(names)} survivors of the last run against {', '.join(tests)}", flush=True)
        if names:
            # A changed test selection makes mutmut forget every verdict: keep the last run's, where the
            # retest gives none (only tests were added, so they stand).
            meta = destination / "mutants" / (module.path + ".meta")
            before = json.loads(meta.read_text()).get("exit_code_by_key", {})
            mutmut(destination, names, budget=budget, children=children, sqlite=sqlite, key=key)
            data = json.loads(meta.read_text())
            codes = data.setdefault("exit_code_by_key", {})
            for name, code in before.items():
                if codes.get(name) is None and code is not None:
                    codes[name] = code
            meta.write_text(json.dumps(data, indent=4))
        return
    if not (resume and (destination / "mutants").exists()):
        copy_tree(destination)
        tests = configure(destination, module)
    else:
        tests = list(module.tests)
    only = only or []
    names = sample_names(destination, module, sample, seed, resume=resume, only=only) if sample or only else []
    if only and not names:
        print(f"\n== {key}: no mutant matches {' '.join(only)}", flush=True)
        return
    what = f"a sample of {sample} mutants (seed {seed})" if sample else "every mutant"
    if only:
        what = f"{len(names)} mutants matching {' '.join(only)} ({what})"
    where = "SQLite" if sqlite else os.environ.get("DATABASE_URL", "SQLite").split("@")[-1]
    print(f"\n== {key}: {what} of {module.path} against {', '.join(tests)} on {where} (budget {budget} s)", flush=True)
    mutmut(destination, names, budget=budget, children=children, sqlite=sqlite, key=key)


def mutmut(destination: Path, names: list[str], *, budget: int, children: int, sqlite: bool, key: str) -> None:
    """``mutmut run`` in the copy (all mutants without a verdict, or exactly ``names``), under the budget."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    if sqlite:  # the suite's own default: SQLite and the in-process cache
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(children), *names],
        cwd=destination,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + budget
    try:
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        if process.poll() is None:
            print(f"\n== {key}: budget of {budget} s spent, stopping (verdicts so far are kept)", flush=True)
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"some of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--budget", type=int, default=int(os.environ.get("MUTATION_BUDGET", "1800")),
                        help="wall-clock seconds per module (default 1800, env MUTATION_BUDGET)")  # fmt: skip
    parser.add_argument("--children", type=int, default=int(os.environ.get("MUTATION_CHILDREN", "1")))
    parser.add_argument("--resume", action="store_true", help="keep var/mutation/<module> and its verdicts")
    parser.add_argument("--list", action="store_true", help="report the last run only")
    parser.add_argument(
        "--sample",
        type=int,
        default=None,
        help="run a reproducible random sample of this many mutants per module (default: all)",
    )
    parser.add_argument("--seed", type=int, default=20)  # fmt: skip
    parser.add_argument("--sqlite", action="store_true",
                        help="run on SQLite (into var/mutation/<module>-sqlite); reports merge both runs")  # fmt: skip
    parser.add_argument("--only", nargs="+", default=[], metavar="PATTERN",
                        help="only the mutants whose names match one of these globs, e.g. '*_leaf*'")  # fmt: skip
    parser.add_argument("--retest", action="store_true",
                        help="rerun the last run's survivors against the worktree's tests")  # fmt: skip
    parser.add_argument("--no-diffs", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the scores to this file")
    args = parser.parse_args(argv)
    keys = args.modules or list(MODULES)
    unknown = [key for key in keys if key not in MODULES]
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}: choose from {', '.join(MODULES)}")
    results = []
    for key in keys:
        if not args.list:
            run(key, MODULES[key], budget=args.budget, children=args.children, resume=args.resume,
                sample=args.sample, seed=args.seed, sqlite=args.sqlite, only=args.only, retest=args.retest)  # fmt: skip
        results.append(report(key, MODULES[key], WORK / key, diffs=not args.no_diffs))
    print("\n== summary")
    for row in results:
        print(f"   {row['module']:<26} {row['killed']:>4}/{row['checked']:<4} {row['score']:5.1f} %"
              f"  ({row['mutants']} mutants, {row['equivalent']} equivalent)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
